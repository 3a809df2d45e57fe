"""Digest previews: the web view's preview page and ``mspmon digest preview`` files.

Nothing here claims a period or sends: a preview is the digest as it would go out
now, for looking at.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config import Settings
from monitor.store.app_models import Subscription
from monitor.store.db import session_scope
from notifications.channels.email import build_email
from notifications.outbox import preview
from notifications.render import data_uri_source, render_html, render_message
from notifications.subscriptions import add_subscription


def preview_html(session: Session, settings: Settings, subscription_id: int, now: dt.datetime | None = None) -> str:
    """The HTML of a subscription's next digest, charts inlined as data: URIs for a browser.

    Raises LookupError for an unknown subscription id.
    """
    if session.get(Subscription, subscription_id) is None:
        raise LookupError(f"no subscription with id {subscription_id}")
    ((_, content),) = preview(session, settings, now or dt.datetime.now(dt.UTC), [subscription_id])
    return render_html(content, data_uri_source)


def write_previews(
    session: Session, settings: Settings, directory: Path, now: dt.datetime, subscription_ids: list[int] | None = None
) -> list[Path]:
    """Write each digest as NAME.eml (what the first recipient would receive) and NAME.html."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for subscription, content in preview(session, settings, now, subscription_ids):
        stem = directory / f"digest-{subscription.id}-{content.period}"
        email = build_email(render_message(content), subscription.recipients[0], settings.smtp_sender)
        stem.with_suffix(".eml").write_bytes(bytes(email))
        stem.with_suffix(".html").write_text(render_html(content, data_uri_source), encoding="utf-8")
        written += [stem.with_suffix(".eml"), stem.with_suffix(".html")]
    return written


DEMO_SUBSCRIPTIONS = (
    {"name": "Transition team", "recipients": ["transition.manager@example.com"]},
    {
        "name": "MSP SAP L2 account",
        "recipients": ["msp.account.manager@example.com"],
        "segments": {"assignment_group": ["MSP-SAP-L2"]},
        "send_when_quiet": True,
    },
)


def demo_outbox(engine: Engine, settings: Settings, directory: Path, now: dt.datetime) -> list[str]:
    """``mspmon demo``: two subscriptions (everything; one MSP team's slice) and their previews."""
    with session_scope(engine) as session:
        for fields in DEMO_SUBSCRIPTIONS:
            add_subscription(session, **fields, now=now)
        written = write_previews(session, settings, directory, now)
    return [
        f"Digest previews (nothing sent) in {directory}: {', '.join(p.name for p in written)}",
        "Open the .html in a browser, or send them: mspmon digest send (SMTP from the smtp_* settings)",
    ]
