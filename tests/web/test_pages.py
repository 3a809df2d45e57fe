"""Every page, for each role, on the analysed demo data; labels and silences through the forms."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from monitor.store import db
from monitor.store.models import Finding, FindingLabel, Silence


def a_finding(app, **where) -> Finding:
    with db.session_scope(app.extensions["mspmon"].engine) as session:
        rows = session.query(Finding).filter_by(**where).order_by(Finding.id).all()
        return next(f for f in rows if f.segment.get("country") == "Finland")


@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_every_page_renders_for_signed_in_users(seeded, people, login, who):
    client = login(getattr(people, who))
    finding = a_finding(seeded)
    pages = {
        "/": ["Service desk to MSP", "Happiness", "Lost time", "open root finding"],
        "/transitions/1": ["per week", "go-live", "Before and after go-live", "Where Happiness changed", "Findings"],
        "/transitions/1?metric=lost_time": ["Lost time per week", "Lost time per answer"],
        "/transitions/1/segments": ["All segments", "Share of change"],
        "/transitions/1/segments?by=country&by2=service": ["country × service", "heat-"],
        "/transitions/1/segments?f=country=Finland": ["country = Finland", "Feedback factors"],
        "/transitions/1/segments?f=country=Finland&f=service=SAP": ["Lack of business knowledge", "as deep as"],
        "/findings": ["Findings", "Happiness"],
        f"/findings/{finding.id}": [finding.id, "Factor shifts"],
    }
    for path, texts in pages.items():
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        for text in texts:
            assert text in answer.text, (path, text)
        assert "<svg" in answer.text or path.startswith("/findings")


def test_three_clicks_lead_from_the_transition_to_the_localized_segment_and_its_factor(seeded, people, login):
    client = login(people.viewer)
    overview = client.get("/")
    transition = re.search(r'href="(/transitions/1)"', overview.text).group(1)
    page = client.get(transition).text  # click 1
    first = re.search(r'class="rowlink" href="([^"]+segments[^"]+)">Finland<', page).group(1)
    page = client.get(first.replace("&amp;", "&")).text  # click 2: country = Finland, split by its best dimension
    share = re.search(r"(\d+)% of the change in the whole transition", page)
    assert share and 30 < int(share.group(1)) < 100
    second = re.search(r'class="rowlink" href="([^"]+segments[^"]+)">SAP<', page).group(1)
    leaf = client.get(second.replace("&amp;", "&")).text  # click 3
    assert "country = Finland × service = SAP" in leaf
    assert "of the change in country = Finland" in leaf
    factors = leaf[leaf.index('id="factors"') :]
    assert factors.index("Lack of business knowledge") < factors.index("Long waiting time")


def test_pages_never_name_a_segment_under_the_threshold(strict, people, login):
    client = login(people.viewer, strict)
    for path in ("/transitions/1", "/transitions/1/segments?by=country", "/transitions/1/segments?by=country&by2=service"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert "Iceland" not in answer.text, path
    assert client.get("/transitions/1/segments?f=country=Iceland").status_code == 404


def test_a_scoped_viewer_sees_only_their_scope(seeded, people, login):
    client = login(people.scoped)
    listing = client.get("/findings").text
    assert "country = Finland" in listing
    assert "country = Germany" not in listing
    page = client.get("/transitions/1").text
    assert "Lost time per answer" not in page  # whole-transition figures from raw answers stay hidden
    assert client.get("/transitions/1/segments?f=country=Sweden").status_code == 404


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/transitions/999", 404),
        ("/transitions/x", 404),
        ("/findings/nope", 404),
        ("/transitions/1?metric=<script>", 400),
        ("/transitions/1/segments?by=nope", 400),
        ("/transitions/1/segments?f=bad", 400),
        ("/findings?since=yesterday", 400),
        ("/no/such/page", 404),
    ],
)
def test_bad_input_on_pages_gets_a_clear_error_page(seeded, people, login, path, status):
    answer = login(people.viewer).get(path)
    assert answer.status_code == status
    assert "Traceback" not in answer.text and "<script>" not in answer.text
    assert f"Error {status}" in answer.text


def test_viewers_cannot_label_or_silence(seeded, people, login, csrf):
    client = login(people.viewer)
    finding = a_finding(seeded)
    page = client.get(f"/findings/{finding.id}").text
    assert "Save label" not in page
    token = csrf(page)
    assert client.post(f"/findings/{finding.id}/label", data={"label": "confirmed", "csrf_token": token}).status_code == 403
    assert client.post(f"/findings/{finding.id}/silence", data={"reason": "x", "csrf_token": token}).status_code == 403


def test_an_admin_labels_a_finding(seeded, people, login, csrf):
    client = login(people.admin)
    finding = a_finding(seeded)
    page = client.get(f"/findings/{finding.id}").text
    answer = client.post(
        f"/findings/{finding.id}/label",
        data={"label": "confirmed", "note": "SAP key users <b>confirm</b>", "csrf_token": csrf(page)},
    )
    assert answer.status_code == 302
    shown = client.get(f"/findings/{finding.id}").text
    assert "Confirmed" in shown and "&lt;b&gt;confirm&lt;/b&gt;" in shown  # autoescaped
    with db.session_scope(seeded.extensions["mspmon"].engine) as session:
        (label,) = session.query(FindingLabel).all()
        assert (label.label, label.author) == ("confirmed", people.admin)
    bad = client.post(f"/findings/{finding.id}/label", data={"label": "maybe", "csrf_token": csrf(page)})
    assert bad.status_code == 400 and "unknown label" in bad.text


def test_an_admin_silences_a_segment_and_bad_dates_are_explained(seeded, people, login, csrf):
    client = login(people.admin)
    finding = a_finding(seeded)
    token = csrf(client.get(f"/findings/{finding.id}").text)
    url = f"/findings/{finding.id}/silence"
    past = client.post(url, data={"until": "2020-01-01", "reason": "known", "csrf_token": token})
    assert past.status_code == 400 and "must end after today" in past.text
    garbled = client.post(url, data={"until": "soon", "reason": "known", "csrf_token": token})
    assert garbled.status_code == 400 and "YYYY-MM-DD" in garbled.text
    no_reason = client.post(url, data={"until": "2099-01-01", "reason": " ", "csrf_token": token})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.text
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    done = client.post(url, data={"until": until, "reason": "SAP rollout", "target": "segment", "csrf_token": token})
    assert done.status_code == 302
    assert f"Silenced until {until}" in client.get(f"/findings/{finding.id}").text
    with db.session_scope(seeded.extensions["mspmon"].engine) as session:
        (silence,) = session.query(Silence).all()
        assert silence.segment == finding.segment and silence.finding_id is None


def test_pages_before_any_analysis_explain_what_to_do(app, people, login):
    client = login(people.viewer)
    overview = client.get("/").text
    assert "No transitions yet" in overview and "mspmon analyze" in overview
    answer = client.get("/transitions/1/segments")
    assert answer.status_code == 404 and "no transition with id 1" in answer.text


def test_every_finding_page_renders_and_hides_small_tree_nodes(strict, people, login):
    """Roots, echoes and recovered findings alike; with k = 300 no tree node under 300 is named,
    and a finding with fewer than 300 responses on a side is not shown at all (404, as if absent)."""
    client = login(people.viewer, strict)
    with db.session_scope(strict.extensions["mspmon"].engine) as session:
        sizes = {f.id: min(f.n_before, f.n_after) for f in session.query(Finding).all()}
    assert len(sizes) > 5 and any(n < 300 for n in sizes.values()) and any(n >= 300 for n in sizes.values())
    api = strict.test_client()
    for finding_id, size in sizes.items():
        page = client.get(f"/findings/{finding_id}")
        answer = api.get(f"/api/findings/{finding_id}", headers={"Authorization": f"Bearer {people.viewer_token}"})
        if size < 300:
            assert page.status_code == answer.status_code == 404, finding_id
            assert answer.json["error"]["message"] == f"no finding with id {finding_id!r}"
            continue
        assert page.status_code == 200, (finding_id, page.text[:300])
        detail = answer.json
        nodes = [detail["tree"]] if isinstance(detail["tree"], dict) else []
        while nodes:
            node = nodes.pop()
            for child in node.get("children") or []:
                assert min(child.get("n_before", 300), child.get("n_after", 300)) >= 300
                nodes.append(child)
        assert all(min(s["n_before"], s["n_after"]) >= 300 for s in detail["segments"])


def test_a_kept_page_changes_as_soon_as_what_it_shows_changes(seeded, people, login):
    """Pages are served from memory between changes; a label made elsewhere shows at once."""
    from monitor.analysis.lifecycle import label_finding

    client = login(people.viewer)
    finding = a_finding(seeded)
    first = client.get(f"/findings/{finding.id}").text
    assert client.get(f"/findings/{finding.id}").text == first
    assert "Not labelled yet." in first
    with db.session_scope(seeded.extensions["mspmon"].engine) as session:
        label_finding(session, finding.id, "expected", author="cli@example.com")
    assert "Expected" in client.get(f"/findings/{finding.id}").text
    other = login(people.admin).get(f"/findings/{finding.id}").text
    assert "Save label" in other  # another user's page is their own, forms and all


def test_kept_pages_carry_each_sessions_own_csrf_token(seeded, people, login, csrf):
    """Two sessions of one user share a kept page, each with its own working form token."""
    first, second = login(people.admin), login(people.admin)
    finding = a_finding(seeded)
    token_one = csrf(first.get(f"/findings/{finding.id}").text)
    token_two = csrf(second.get(f"/findings/{finding.id}").text)
    assert token_one != token_two and "csrf-" not in token_one
    answer = second.post(f"/findings/{finding.id}/label", data={"label": "expected", "csrf_token": token_two})
    assert answer.status_code == 302
    error_page = second.get("/transitions/999").text
    assert csrf(error_page) == token_two
    # Signing out ends every session of the user on the server (issue 13), the other one too.
    assert first.post("/logout", data={"csrf_token": token_one}).status_code == 302
    assert second.get(f"/findings/{finding.id}").status_code == 302
