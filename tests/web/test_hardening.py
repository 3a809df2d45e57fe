"""Issue 13: attacks on the web view and API that answered with a redirect off-site or a 500.

Each test reproduces one attack as reported and checks the answer is now a 4xx
(or a same-site redirect) with a message.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.web.test_api import bearer, record

HUGE = "99999999999999999999999"


# -- 1. open redirect -------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example",  # the report: a tab the browser drops, leaving //evil.example
        "/%0d/x",  # a CR: was a 500 after the password was accepted
        "/%0a/evil.example",
        "//evil.example",
        "/%5Cevil.example",  # /\evil.example
        "%5C%5Cevil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%00/x",
    ],
)
def test_login_never_redirects_off_site(app, people, csrf, target):
    client = app.test_client()
    token = csrf(client.get("/login").text)
    answer = client.post(f"/login?next={target}", data={"email": people.admin, "password": people.password, "csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    again = client.get(f"/login?next={target}")  # signed in: GET redirects straight away
    assert again.status_code == 302 and again.headers["Location"] == "/"


def test_login_still_returns_to_a_local_page(app, people, csrf):
    client = app.test_client()
    token = csrf(client.get("/login").text)
    answer = client.post("/login?next=/findings?state=new", data={"email": people.admin, "password": people.password, "csrf_token": token})
    assert answer.headers["Location"] == "/findings?state=new"


# -- 4. a 4xx, not a 500 ----------------------------------------------------------


def _int_routes(app) -> list[str]:
    """Every route with an <int:...> part, that part replaced by a number past 64 bits."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule:
            continue
        paths.append(re.sub(r"<int:[^>]+>", HUGE, re.sub(r"<(?!int:)[^>]+>", "x", rule.rule)))
    return paths


def test_every_int_route_answers_a_huge_id_with_404(seeded, people, login):
    client = login(people.admin)
    paths = _int_routes(seeded)
    assert "/transitions/" + HUGE in paths and f"/subscriptions/{HUGE}/preview" in paths
    for path in paths:
        headers = bearer(people.admin_token) if path.startswith("/api/") else {}
        answer = client.get(path, headers=headers)
        assert answer.status_code in (404, 405), (path, answer.status_code)
    assert client.get("/subscriptions/99999999999999999999/preview").status_code == 404
    for number in (2**63, 2**63 - 1, 2**31, 2**31 - 1):  # past 64 bits, past the 32-bit PostgreSQL column, the largest id
        assert client.get(f"/transitions/{number}").status_code == 404, number
        assert client.get(f"/api/transitions/{number}", headers=bearer(people.admin_token)).status_code == 404, number


def test_put_on_pages_is_405(seeded, people, login):
    client = login(people.admin)
    for path in ("/", "/findings", "/transitions/1", "/subscriptions", "/login"):
        assert client.put(path).status_code == 405, path
        assert client.delete(path).status_code == 405, path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ("[" * 30 + "]" * 30, "nested deeper"),
        (json.dumps([record(1, rating=0)]).replace('"rating": 0', '"rating": ' + "9" * 5000), "a number of 5000 characters"),
        (json.dumps([record(1, rating=0)]).replace('"rating": 0', '"rating": 1.' + "5" * 5000), "a number of 5002 characters"),
        ('[{"response_id": "\\ud800"}]', "lone surrogate"),
        ('[{"\\udfff": "x"}]', "lone surrogate"),
        ('[{"rating": NaN}]', "not a JSON number"),
    ],
)
@pytest.mark.parametrize("mimetype", ["application/json", "application/x-ndjson"])
def test_hostile_json_is_a_400_with_a_message(app, people, body, message, mimetype):
    if mimetype != "application/json":
        body = body[1:-1] if body.startswith("[{") else body  # one record per line
    answer = app.test_client().post(
        "/api/responses", data=body.encode("utf-8", "surrogatepass"), headers={**bearer(people.admin_token), "Content-Type": mimetype}
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json["error"]["message"]


def test_a_million_character_label_note_is_a_form_error(seeded, people, login, csrf):
    client = login(people.admin)
    from sqlalchemy import select

    from monitor.store import db
    from monitor.store.models import Finding

    with db.session_scope(seeded.extensions["mspmon"].engine) as session:
        finding_id = session.scalars(select(Finding.id).order_by(Finding.id)).first()
    token = csrf(client.get(f"/findings/{finding_id}").text)
    for size in (2_001, 1_000_000):
        answer = client.post(
            f"/findings/{finding_id}/label", data={"label": "confirmed", "note": "x" * size, "csrf_token": token}
        )
        assert answer.status_code in (400, 413), answer.status_code
        if answer.status_code == 400:
            assert "Keep the note to 2,000 characters" in answer.text
    ok = client.post(f"/findings/{finding_id}/label", data={"label": "confirmed", "note": "x" * 2000, "csrf_token": token})
    assert ok.status_code == 302


@pytest.mark.parametrize("name", ["Weekly\r\nBcc: victim@example.com", "tab\there", "line\u2028sep"])
def test_a_subscription_name_with_control_characters_is_refused(seeded, people, login, csrf, name):
    client = login(people.admin)
    token = csrf(client.get("/subscriptions").text)
    answer = client.post(
        "/subscriptions",
        data={"name": name, "recipients": "lead@example.com", "weekday": "mon", "hour": "7", "timezone": "UTC", "csrf_token": token},
    )
    assert answer.status_code == 400 and "without control characters" in answer.text
    assert "lead@example.com" not in client.get("/subscriptions").text
