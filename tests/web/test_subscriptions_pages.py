"""Admin pages for digest subscriptions and the preview of the next digest."""

from __future__ import annotations


def test_only_admins_reach_the_subscription_pages(seeded, people, login):
    assert seeded.test_client().get("/subscriptions").status_code == 302
    viewer = login(people.viewer)
    assert viewer.get("/subscriptions").status_code == 403
    assert viewer.get("/subscriptions/1/preview").status_code == 403
    assert "Subscriptions</a>" not in viewer.get("/").text
    assert "Subscriptions</a>" in login(people.admin).get("/").text


def test_an_admin_adds_previews_and_removes_a_subscription(seeded, people, login, csrf):
    client = login(people.admin)
    token = csrf(client.get("/subscriptions").text)
    form = {
        "name": "Finland service review",
        "recipients": "lead@example.com\nmsp@example.com",
        "segments": "country=Finland",
        "transitions": "Service desk to MSP",
        "metrics": ["happiness", "lost_time"],
        "min_severity": "low",
        "weekday": "mon",
        "hour": "7",
        "timezone": "Europe/Helsinki",
        "csrf_token": token,
    }
    assert client.post("/subscriptions", data=form).status_code == 302
    page = client.get("/subscriptions").text
    assert "Finland service review" in page and "lead@example.com, msp@example.com" in page
    assert "country in Finland" in page and "Europe/Helsinki" in page
    landing = client.get("/subscriptions/1")  # where a digest's "manage" link goes
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/subscriptions#s1")
    preview = client.get("/subscriptions/1/preview")
    assert preview.status_code == 200 and preview.mimetype == "text/html"
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    assert "<html" in preview.text.lower() and "Finland" in preview.text
    assert client.post("/subscriptions/1/delete", data={"csrf_token": token}).status_code == 302
    assert "No subscriptions yet." in client.get("/subscriptions").text


def test_bad_subscriptions_are_refused_with_the_reason(seeded, people, login, csrf):
    client = login(people.admin)
    token = csrf(client.get("/subscriptions").text)
    base = {"name": "x", "recipients": "a@example.com", "csrf_token": token}
    cases = [
        ({"recipients": "not-an-address"}, "recipient"),
        ({"hour": "25"}, "hour"),
        ({"hour": "seven"}, "whole number"),
        ({"segments": "Finland"}, "dimension=value"),
        ({"timezone": "Mars/Olympus"}, "zone"),
        ({"transitions": "No such"}, "no transition"),
        ({"name": " "}, "name"),
    ]
    for change, text in cases:
        answer = client.post("/subscriptions", data={**base, **change})
        assert answer.status_code == 400, change
        assert text in answer.text, (change, answer.text[answer.text.find("error-box"):][:200])
    assert client.post("/subscriptions", data={**base, "csrf_token": "forged"}).status_code == 400
    assert client.post("/subscriptions/99/delete", data={"csrf_token": token}).status_code == 404
    assert client.get("/subscriptions/99/preview").status_code == 404
    assert client.get("/subscriptions/99").status_code == 404
