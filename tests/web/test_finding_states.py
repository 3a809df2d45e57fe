"""The ``ended`` state: a finding whose segment stopped answering is closed, never open."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from monitor.store import db
from monitor.store.models import Finding, FindingState
from tests.web.test_api import bearer


def _end_the_largest_root(app) -> str:
    with db.session_scope(app.extensions["mspmon"].engine) as session:
        finding = session.scalars(
            select(Finding).where(Finding.root.is_(True), Finding.recovered_on.is_(None)).order_by(Finding.impact.desc())
        ).first()
        assert finding is not None
        finding.state, finding.ended_on, finding.ended_reason = "ended", dt.date(2026, 11, 2), "no responses for 4 weeks"
        return finding.id


def test_ended_is_a_state_of_the_list_the_api_and_its_contract(seeded, people):
    ended = _end_the_largest_root(seeded)
    client = seeded.test_client()
    headers = bearer(people.viewer_token)
    listed = client.get("/api/findings?state=ended", headers=headers)
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json["findings"]] == [ended]
    assert listed.json["findings"][0]["ended_on"] == "2026-11-02"
    spec = client.get("/api/openapi.json").json
    states = next(
        p["schema"]["enum"] for p in spec["paths"]["/findings"]["get"]["parameters"] if p["name"] == "state"
    )
    assert states == [str(s) for s in FindingState] and "ended" in states


def test_an_ended_finding_is_not_open(seeded, people, login):
    ended = _end_the_largest_root(seeded)
    client = seeded.test_client()
    headers = bearer(people.viewer_token)
    summary = client.get("/api/transitions", headers=headers).json["transitions"][0]
    roots = client.get("/api/findings", headers=headers).json["findings"]
    still_open = [
        f for f in roots
        if f["transition"] == summary["name"] and not f["recovered_on"] and f["state"] not in ("recovered", "ended")
        and not f["silenced"]
    ]
    assert summary["open_findings"] == len(still_open)
    assert summary["top_finding"] is None or summary["top_finding"]["id"] != ended
    # Closed ones come after every open one.
    order = [f["id"] for f in roots]
    assert all(order.index(ended) > order.index(f["id"]) for f in still_open)
    page = login(people.viewer).get("/findings?state=ended")
    assert page.status_code == 200 and "Ended 2026-11-02" in page.text
