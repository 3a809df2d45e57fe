"""Fault injection for digests: real SMTP servers on loopback that fail at every stage.

Each server drops the connection, stalls, or answers 4xx or 5xx at one stage of
the conversation (connect, EHLO, MAIL, RCPT, DATA). What must hold, on both
backends:

* before the message data was transmitted, no reply means "try again later"
  (temporary), 4xx is temporary and 5xx is permanent: a retry cannot duplicate;
* once the data was transmitted, an explicit reply still decides (250 sent,
  4xx retry, 5xx failed), but a lost reply (drop, stall) is *uncertain*: the
  server may hold the message, so it is never sent again, and it is reported
  (counted, and ``digest send`` exits non-zero).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select

from monitor.store import db
from monitor.store.app_models import DeliveryAttempt, DeliveryState, DigestDelivery
from notifications.channels import EmailChannel
from notifications.outbox import send_due
from notifications.subscriptions import add_subscription
from tests.notifications.conftest import NOW, add_finding, free_port

pytestmark = pytest.mark.usefixtures("survey")

ALICE, BOB = "alice@example.com", "bob@example.com"
STAGES = ("connect", "ehlo", "mail", "rcpt", "data")
KINDS = ("drop", "stall", "4xx", "5xx")
# Seconds the client waits for a reply. Short where the server stalls (every such
# test waits it out), generous where it answers: on a loaded machine the server's
# thread can take longer than half a second to reply, which must not read as a stall.
STALL_TIMEOUT = 1.5
ANSWER_TIMEOUT = 15.0
SERVER_CATCH_UP = 10.0  # seconds the test waits for the server thread to store what it was sent


@dataclass
class FaultyServer:
    """An SMTP server that fails once per connection at ``stage`` in the way ``kind`` says.

    At the DATA stage the fault comes after the message was received and stored
    (``received``), before the server's reply to it: the case that must not
    lead to a second copy.
    """

    stage: str
    kind: str
    port: int = 0
    received: list[EmailMessage] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    async def _fault(self, server: Any) -> str | None:
        if self.kind == "drop":
            server.transport.abort()  # at once, without sending anything buffered
            return None
        if self.kind == "stall":
            while not self.release.is_set():  # until the test ends; the client gave up long ago
                await asyncio.sleep(0.05)
            server.transport.abort()
            return None
        return "451 4.3.0 try again later" if self.kind == "4xx" else "554 5.3.0 refused"

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        if self.stage != "ehlo":
            session.host_name = hostname  # what aiosmtpd does itself when there is no hook
            return responses
        reply = await self._fault(server)
        return [reply] if reply else []

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        # smtplib falls back to HELO when EHLO is refused: refuse that too.
        if self.stage != "ehlo":
            session.host_name = hostname
            return f"250 {server.hostname}"
        return await self._fault(server) or ""

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.stage == "mail":
            return await self._fault(server) or ""
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.stage == "rcpt":
            return await self._fault(server) or ""
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stage != "data":
            self.received.append(email.message_from_bytes(envelope.original_content, policy=default_policy))
            return "250 Message accepted"
        if self.kind in ("drop", "stall"):  # stored, then the answer is lost
            self.received.append(email.message_from_bytes(envelope.original_content, policy=default_policy))
        return await self._fault(server) or ""


class _ConnectFaults(threading.Thread):
    """A bare TCP server that fails at the greeting: closes, stays silent, or says 421/554."""

    def __init__(self, kind: str) -> None:
        super().__init__(daemon=True)
        self.kind = kind
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.held: list[socket.socket] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self.kind == "stall":
                self.held.append(connection)
                continue
            if self.kind in ("4xx", "5xx"):
                connection.sendall(b"421 4.3.2 busy\r\n" if self.kind == "4xx" else b"554 5.3.2 go away\r\n")
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        for connection in self.held:
            connection.close()
        self.listener.close()


@pytest.fixture
def faulty(request: pytest.FixtureRequest) -> Iterator[Any]:
    stage, kind = request.param
    if stage == "connect":
        server = _ConnectFaults(kind)
        server.start()
        try:
            yield server
        finally:
            server.stop()
        return
    handler = FaultyServer(stage, kind, port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        handler.release.set()
        controller.stop()


@pytest.fixture
def subscribed(mail_engine: Any) -> int:
    with db.session_scope(mail_engine) as session:
        add_finding(session, "Fsap", "happiness", {"service": "SAP"})
        return add_subscription(session, name="Transition team", recipients=[ALICE, BOB]).id


def _channel(settings: Any, port: int, *, stalls: bool = False) -> EmailChannel:
    channel = EmailChannel.from_settings(settings)
    timeout = STALL_TIMEOUT if stalls else ANSWER_TIMEOUT
    return type(channel)(**{**channel.__dict__, "port": port, "timeout": timeout})


def _deliveries(engine: Any) -> dict[str, tuple[str, int, list[str]]]:
    with db.session_scope(engine) as session:
        return {
            d.recipient: (d.state, d.attempts, [a.outcome for a in d.attempt_log])
            for d in session.scalars(select(DigestDelivery))
        }


def _errors(engine: Any) -> list[str]:
    with db.session_scope(engine) as session:
        return list(session.scalars(select(DeliveryAttempt.error)))


def _expected(stage: str, kind: str) -> str:
    if stage == "data" and kind in ("drop", "stall"):
        return DeliveryState.UNCERTAIN
    return DeliveryState.FAILED if kind == "5xx" else DeliveryState.RETRY


@pytest.mark.parametrize("faulty", [(s, k) for s in STAGES for k in KINDS], indirect=True, ids=lambda p: "-".join(p))
def test_each_fault_is_classified_and_nothing_arrives_twice(mail_engine, mail_settings, subscribed, faulty):
    stage, kind = (faulty.stage, faulty.kind) if isinstance(faulty, FaultyServer) else ("connect", faulty.kind)
    channels = {"email": _channel(mail_settings, faulty.port, stalls=kind == "stall")}
    report = send_due(mail_engine, mail_settings, NOW, channels=channels)
    expected = _expected(stage, kind)
    deliveries = _deliveries(mail_engine)
    assert {state for state, _, _ in deliveries.values()} == {expected}, _errors(mail_engine)
    assert (report.sent, report.retrying, report.failed, report.uncertain) == (
        0,
        2 * (expected == DeliveryState.RETRY),
        2 * (expected == DeliveryState.FAILED),
        2 * (expected == DeliveryState.UNCERTAIN),
    )
    assert report.ok is (expected == DeliveryState.RETRY)
    # Later, with the retry due, the same server: an uncertain delivery is never tried again.
    later = send_due(mail_engine, mail_settings, NOW + dt.timedelta(hours=2), channels=channels)
    attempts = {recipient: n for recipient, (_, n, _) in _deliveries(mail_engine).items()}
    if expected == DeliveryState.RETRY:
        assert attempts == {ALICE: 2, BOB: 2}
    else:
        assert attempts == {ALICE: 1, BOB: 1} and later.sent == later.retrying == 0
    if isinstance(faulty, FaultyServer):
        wanted = [ALICE, BOB] if expected == DeliveryState.UNCERTAIN else []
        # The server stores in its own thread: on a loaded machine the client's
        # timeout can end the attempt before the server got to the message.
        deadline = time.monotonic() + SERVER_CATCH_UP
        while len(faulty.received) < len(wanted) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(m["To"] for m in faulty.received) == wanted


def test_stored_then_dropped_before_the_reply_is_uncertain_and_reported(mail_engine, mail_settings, subscribed):
    """The reported bug: the server keeps the message and hangs up before its reply to DATA."""
    handler = FaultyServer("data", "drop", port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        channels = {"email": _channel(mail_settings, handler.port)}
        report = send_due(mail_engine, mail_settings, NOW, channels=channels)
        for hours in (1, 3, 24):
            send_due(mail_engine, mail_settings, NOW + dt.timedelta(hours=hours), channels=channels)
    finally:
        controller.stop()
    assert report.uncertain == 2 and not report.ok
    assert sorted(m["To"] for m in handler.received) == [ALICE, BOB]  # once each, never twice
    assert len({m["Message-ID"] for m in handler.received}) == 2
    with db.session_scope(mail_engine) as session:
        errors = list(session.scalars(select(DeliveryAttempt.error)))
    assert len(errors) == 2 and all("may have arrived" in e for e in errors)
    assert "2 uncertain" in "\n".join(report.lines())


def test_digest_send_counts_uncertain_deliveries_and_exits_non_zero(mail_settings, subscribed):
    handler = FaultyServer("data", "drop", port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    from monitor.cli.commands import main

    env = {"MSPMON_DATABASE_URL": mail_settings.database_url, "MSPMON_CONFIG": None,
           "MSPMON_SMTP_HOST": "127.0.0.1", "MSPMON_SMTP_PORT": str(handler.port),
           "MSPMON_SMTP_TIMEOUT_SECONDS": str(ANSWER_TIMEOUT)}
    try:
        result = CliRunner(env=env).invoke(main, ["digest", "send"])
    finally:
        controller.stop()
    assert result.exit_code == 1, result.output
    assert "0 sent, 0 to retry, 0 failed, 2 uncertain" in result.output
    assert "2 uncertain" in result.output.splitlines()[-1]
