"""Fixtures for digests: a real SMTP server on loopback, and findings made to order.

The SMTP server is aiosmtpd's ``Controller`` on 127.0.0.1 and a free port; tests
read what it received. ``SMTPServer.replies`` makes it answer RCPT for an address
with a scripted reply (``451 ...`` temporary, ``550 ...`` permanent), once per
listed reply, to exercise retries and per-recipient failures.
"""

from __future__ import annotations

import datetime as dt
import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from config import Settings, load_settings
from monitor import store
from monitor.analysis.aggregate import Segment
from monitor.store import db
from monitor.store.models import AnalysisRun, Finding, Transition

NOW = dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.UTC)  # a Monday, after a 07:00 UTC slot
AS_OF = dt.date(2026, 11, 22)
GO_LIVE = dt.date(2025, 9, 22)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SMTPServer:
    port: int
    received: list[EmailMessage] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=dict)  # recipient -> scripted RCPT replies

    def to(self, recipient: str) -> list[EmailMessage]:
        return [m for m in self.received if m["To"] == recipient]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        scripted = self.replies.get(address)
        reply = (scripted.pop(0) if len(scripted) > 1 else scripted[0]) if scripted else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.original_content, policy=default_policy))
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer(port=free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def mail_settings(database_url: str, smtp: SMTPServer) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "database_url": database_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_sender": "mspmon@example.com",
            "smtp_timeout_seconds": 5,
            "digest_retry_seconds": 60,
            "digest_max_attempts": 3,
            "digest_lease_seconds": 600,
            "base_url": "https://mspmon.example.com",
        },
    )


@pytest.fixture
def mail_engine(mail_settings: Settings) -> Iterator[Any]:
    engine = db.make_engine(mail_settings.database_url)
    yield engine
    engine.dispose()


def add_finding(session: Any, finding_id: str, metric: str, segment: dict[str, str], **fields: Any) -> Finding:
    """A stored finding as the analysis would leave it (root, new, open unless told)."""
    values = dict(
        change_date=dt.date(2026, 10, 26), direction="worse", before=50.0, after=20.0, delta=-30.0,
        ci_low=-36.0, ci_high=-24.0, n_before=400, n_after=380, p_value=0.0, transition="MSP",
        first_reported=AS_OF, last_reported=AS_OF, state="new", root=True,
    )
    values.update(fields)
    finding = Finding(id=finding_id, metric=metric, segment_key=Segment.of(segment).key(), segment=segment, **values)
    session.add(finding)
    session.flush()
    # The latest run reports it, as the analysis does with every finding it keeps.
    run = store.latest_run(session)
    if run is not None and run.report is not None:
        run.report = {**run.report, "findings": [*run.report["findings"], {"id": finding_id}]}
    return finding


def add_run(session: Any, as_of: dt.date = AS_OF) -> None:
    """A successful analysis run whose report names the transition."""
    report = {"as_of": as_of.isoformat(), "findings": [], "transitions": [
        {"name": "MSP", "go_live": GO_LIVE.isoformat(), "scope": {}, "weeks_since_go_live": 61, "metrics": {}, "targets": []}
    ]}
    now = dt.datetime.combine(as_of, dt.time(6), dt.UTC)
    session.add(AnalysisRun(as_of=as_of, status="succeeded", findings=0, series=0, message="", started_at=now,
                            finished_at=now, report=report))


def add_transition(session: Any) -> None:
    session.add(Transition(name="MSP", go_live=GO_LIVE, scope={}, created_at=NOW))


@pytest.fixture
def survey(mail_engine: Any, mail_settings: Settings, tmp_path: Any) -> None:
    """A few thousand synthetic responses (so dimensions exist), the transition and a run."""
    from monitor.dev.synthetic import write_csv
    from monitor.ingest.importer import ingest_files
    from web.demo import demo_scenario

    path = write_csv(tmp_path / "responses.csv", 3000, seed=7, scenario=demo_scenario(AS_OF + dt.timedelta(days=1)))
    assert ingest_files(mail_engine, [path], mail_settings, source="test").committed
    with db.session_scope(mail_engine) as session:
        add_transition(session)
        add_run(session)
