"""Admin pages: digest subscriptions, and a preview of the next digest exactly as it will be sent.

Subscriptions belong to the digest area (``notifications.subscriptions``,
``notifications.preview``); these pages only call its functions, imported when a
page is opened so the rest of the web view does not depend on the digest code.
"""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from config.settings import WEEKDAYS
from monitor import store
from monitor.store.app_models import Subscription
from notifications.channels.base import single_line_problem
from notifications.preview import preview_html
from notifications.subscriptions import (
    SubscriptionError,
    add_subscription,
    list_subscriptions,
    remove_subscription,
    subscription_dict,
)
from web.db import get_db, settings
from web.security import admin_required

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")  # digests link here
SEVERITIES = ("low", "medium", "high")
# The digest is an email: inline styles and embedded images, and nothing may run.
PREVIEW_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
_SEGMENT = re.compile(r"^\s*([^=]+?)\s*=\s*(.+?)\s*$")


def _lines(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n;]", text) if part.strip()]


def _segments(text: str) -> dict[str, list[str]]:
    segments: dict[str, list[str]] = {}
    for line in _lines(text):
        match = _SEGMENT.match(line)
        if not match:
            raise ValueError(f"write segments as dimension=value, one per line; got {line!r}")
        segments.setdefault(match.group(1), []).append(match.group(2))
    return segments


def _page(errors: str | None = None, status: int = 200) -> tuple[str, int]:
    session = get_db()
    return render_template(
        "subscriptions/index.html",
        subscriptions=[subscription_dict(s) for s in list_subscriptions(session)],
        transitions=[t.name for t in store.list_transitions(session)],
        weekdays=WEEKDAYS,
        severities=SEVERITIES,
        error=errors,
        form=request.form,
    ), status


@bp.route("")
@admin_required
def index() -> tuple[str, int]:
    return _page()


@bp.route("", methods=["POST"])
@admin_required
def add() -> Response | tuple[str, int]:
    form = request.form
    problem = single_line_problem(form.get("name", ""), "The name")
    if problem:
        return _page(problem, 400)
    try:
        fields: dict[str, Any] = {
            "name": form.get("name", ""),
            "recipients": _lines(form.get("recipients", "")),
            "transitions": form.getlist("transitions"),
            "segments": _segments(form.get("segments", "")),
            "metrics": form.getlist("metrics"),
            "min_severity": form.get("min_severity", "low"),
            "weekday": form.get("weekday", "mon"),
            "hour": int(form.get("hour", "7") or "7"),
            "timezone": form.get("timezone", "UTC").strip() or "UTC",
            "send_when_quiet": form.get("send_when_quiet") == "on",
        }
        subscription = add_subscription(get_db(), **fields)
    except (SubscriptionError, ValueError) as exc:
        get_db().rollback()
        message = str(exc) if not str(exc).startswith("invalid literal") else "the hour must be a whole number 0-23"
        return _page(message, 400)
    get_db().commit()
    flash(f"Subscription {subscription.name!r} added.")
    return redirect(url_for("subscriptions.index"))


@bp.route("/<int:subscription_id>")
@admin_required
def show(subscription_id: int) -> Response:
    """Where a digest's "manage this subscription" link lands: its row in the list."""
    if get_db().get(Subscription, subscription_id) is None:
        abort(404, description=f"no subscription with id {subscription_id}")
    return redirect(url_for("subscriptions.index", _anchor=f"s{subscription_id}"))


@bp.route("/<int:subscription_id>/delete", methods=["POST"])
@admin_required
def remove(subscription_id: int) -> Response:
    try:
        remove_subscription(get_db(), subscription_id)
    except SubscriptionError as exc:
        abort(404, description=str(exc))
    get_db().commit()
    flash("Subscription removed.")
    return redirect(url_for("subscriptions.index"))


@bp.route("/<int:subscription_id>/preview")
@admin_required
def preview(subscription_id: int) -> Response:
    """The next digest's HTML, byte for byte what the email will hold (images inlined)."""
    try:
        html = preview_html(get_db(), settings(), subscription_id)
    except LookupError as exc:
        abort(404, description=str(exc))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    return response
