"""Pages: findings, one finding with its tree and factors, and its label and silence forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from monitor.analysis.lifecycle import LifecycleError, add_silence, label_finding
from monitor.store.models import Finding, FindingState, Label
from web import params, queries
from web.cache import cached_page
from web.db import get_db
from web.security import admin_required, login_required

bp = Blueprint("findings", __name__)
STATES = tuple(str(state) for state in FindingState)  # new, ongoing, recovered, ended
LABELS = {
    Label.CONFIRMED: "Confirmed",
    Label.EXPECTED: "Expected",
    Label.FALSE_ALARM: "False alarm",
    Label.NEW_NORMAL: "New normal",
}
DEFAULT_SILENCE = dt.timedelta(weeks=4)
MAX_NOTE_CHARACTERS = 2_000  # a label's note and a silence's reason: a few paragraphs


def list_arguments() -> dict[str, object]:
    """Filters of the findings list, shared with the API."""
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        abort(400, description=f"state must be one of {', '.join(STATES)}; got {state!r}")
    return {
        "transition": request.args.get("transition") or None,
        "state": state,
        "metric": request.args.get("metric") or None,
        "since": params.date("since"),
    }


@bp.route("/findings")
@login_required
@cached_page
def index() -> str:
    arguments = list_arguments()
    return render_template("findings/index.html", findings=queries.findings(**arguments), arguments=arguments, states=STATES)


def _render(finding_id: str, errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    detail = queries.finding_detail(params.finding(finding_id))
    today = dt.date.today()
    return render_template(
        "findings/show.html",
        f=detail,
        labels=LABELS,
        errors=errors or {},
        form=request.form,
        default_until=(today + DEFAULT_SILENCE).isoformat(),
        min_until=(today + dt.timedelta(days=1)).isoformat(),
    ), status


@bp.route("/findings/<finding_id>")
@login_required
@cached_page
def show(finding_id: str) -> tuple[str, int]:
    return _render(finding_id)


def _record(finding: Finding, form: str, action: Callable[[], object], done: str) -> Response | tuple[str, int]:
    """Run a lifecycle change; its refusal re-renders the page with the message by the form."""
    try:
        action()
    except LifecycleError as exc:
        get_db().rollback()
        return _render(finding.id, {form: str(exc)}, 400)
    get_db().commit()
    flash(done)
    return redirect(url_for("findings.show", finding_id=finding.id))


@bp.route("/findings/<finding_id>/label", methods=["POST"])
@admin_required
def label(finding_id: str) -> Response | tuple[str, int]:
    finding = params.finding(finding_id)
    verdict = request.form.get("label", "")
    note = request.form.get("note", "").strip()
    if len(note) > MAX_NOTE_CHARACTERS:
        return _render(finding_id, {"label": f"Keep the note to {MAX_NOTE_CHARACTERS:,} characters (it has {len(note):,})."}, 400)
    return _record(
        finding,
        "label",
        lambda: label_finding(get_db(), finding.id, verdict, author=g.user.email, note=note),
        f"Labelled {verdict.replace('_', ' ')}.",
    )


@bp.route("/findings/<finding_id>/silence", methods=["POST"])
@admin_required
def silence(finding_id: str) -> Response | tuple[str, int]:
    finding = params.finding(finding_id)
    target = request.form.get("target", "finding")
    if target not in ("finding", "segment"):
        abort(400, description="target must be finding or segment")
    try:
        until = dt.date.fromisoformat(request.form.get("until", "").strip())
    except ValueError:
        return _render(finding_id, {"silence": "Give the end date as YYYY-MM-DD."}, 400)
    reason = request.form.get("reason", "")
    if len(reason.strip()) > MAX_NOTE_CHARACTERS:
        return _render(finding_id, {"silence": f"Keep the reason to {MAX_NOTE_CHARACTERS:,} characters."}, 400)
    by_segment = target == "segment" and bool(finding.segment)
    return _record(
        finding,
        "silence",
        lambda: add_silence(
            get_db(),
            until=until,
            reason=reason,
            author=g.user.email,
            finding_id=None if by_segment else finding.id,
            segment=finding.segment if by_segment else None,
        ),
        f"Silenced until {until.isoformat()}.",
    )
