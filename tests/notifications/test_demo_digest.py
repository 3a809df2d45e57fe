"""The demo's digests through a real SMTP server: MIME structure, inline charts, content."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from config import load_settings
from monitor.store import db
from notifications.outbox import send_due
from tests.conftest import DEMO_DAY
from tests.notifications.conftest import AS_OF


@pytest.fixture(scope="module")
def demo(demo_build) -> tuple:
    assert AS_OF == DEMO_DAY
    return demo_build.directory, demo_build.database_url


def test_demo_writes_eml_and_html_previews_to_its_outbox(demo):
    directory, _ = demo
    names = sorted(p.name for p in (directory / "outbox").iterdir())
    assert names == [f"digest-{i}-2026-W47.{ext}" for i in (1, 2) for ext in ("eml", "html")]
    html = (directory / "outbox" / "digest-1-2026-W47.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "cid:" not in html  # a browser shows the charts


def test_demo_digests_arrive_well_formed_once(demo, smtp):
    _, url = demo
    settings = load_settings(environ={}, overrides={
        "database_url": url, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_sender": "mspmon@example.com",
    })
    engine = db.make_engine(url)
    now = dt.datetime.combine(AS_OF, dt.time(12), dt.UTC)
    try:
        report = send_due(engine, settings, now)
        assert report.sent == 2 and len(smtp.received) == 2
        assert send_due(engine, settings, now + dt.timedelta(hours=1)).sent == 0
    finally:
        engine.dispose()
    assert len(smtp.received) == 2
    team = smtp.to("transition.manager@example.com")[0]
    assert team["Subject"].startswith("[mspmon] Transition team, week 47:") and "new finding" in team["Subject"]
    assert team["From"] == "mspmon@example.com" and team["Message-ID"].endswith("@example.com>")
    assert team.get_content_type() == "multipart/alternative"
    plain, related = team.get_payload()
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html" and images
    html = html_part.get_content()
    sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert sources and {f"cid:{i['Content-ID'].strip('<>')}" for i in images} == set(sources)
    assert all(i.get_content_type() == "image/png" and i.get_content()[:4] == b"\x89PNG" for i in images)
    assert "<script" not in html and "<link" not in html and "url(" not in html  # nothing to fetch or run
    assert all(link.startswith("http://127.0.0.1:8000/") or link == "http://127.0.0.1:8000"
               for link in re.findall(r'href="([^"]+)"', html))
    text = plain.get_content()
    for expected in ("Service desk to MSP", "country Finland x service SAP", "Lack of business knowledge",
                     "Course correction", "Drill down: http://127.0.0.1:8000/findings/F"):
        assert expected in text, expected
    account = smtp.to("msp.account.manager@example.com")[0]
    body = account.get_body(("plain",)).get_content()
    # The one scope rule: only findings inside the team's slice (the Finland x SAP root that
    # a viewer scoped to MSP-SAP-L2 gets 404 for is not in their digest either).
    assert "assignment group MSP-SAP-L2" in body and "service SAP" not in body
    wheres = re.findall(r" in (assignment group [^\r\n]*|country [^\r\n]*|service [^\r\n]*|everyone)\r?\n", body)
    assert wheres and all(w.startswith("assignment group MSP-SAP-L2") for w in wheres), wheres
