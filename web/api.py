"""The JSON API under ``/api/``: the pages' figures, and survey responses in.

Authentication is a bearer token only (``mspmon tokens create``), never the
session cookie, so the API needs no CSRF token. Reads mirror the pages for the
token's user (scope included); ``POST /api/responses`` goes through the same
import path as files, with the same validation, all-or-nothing and idempotence.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from monitor.ingest.importer import ingest_files
from monitor.ingest.tickets import link_responses_to_tickets
from web import jsonbody, params, queries
from web.db import settings, state
from web.findings import list_arguments
from web.openapi import spec
from web.security import admin_required, login_required

bp = Blueprint("api", __name__, url_prefix="/api")
JSON_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines")
MAX_SOURCE_LENGTH = 100


@bp.route("/openapi.json")
def openapi() -> Response:
    return jsonify(spec())


@bp.route("/transitions")
@login_required
def transitions() -> Response:
    return jsonify(queries.overview())


@bp.route("/transitions/<int:transition_id>")
@login_required
def transition(transition_id: int) -> Response:
    return jsonify(queries.transition_detail(params.transition(transition_id), params.metric()))


@bp.route("/transitions/<int:transition_id>/segments")
@login_required
def segments(transition_id: int) -> Response:
    return jsonify(queries.segment_view(params.transition(transition_id), *params.segment_query()))


@bp.route("/findings")
@login_required
def findings() -> Response:
    return jsonify({"findings": queries.findings(**list_arguments())})


@bp.route("/findings/<finding_id>")
@login_required
def finding(finding_id: str) -> Response:
    return jsonify(queries.finding_detail(params.finding(finding_id)))


def _flag(name: str) -> bool:
    text = request.args.get(name, "false").strip().lower()
    if text not in ("1", "true", "yes", "0", "false", "no"):
        abort(400, description=f"{name} must be true or false; got {text!r}")
    return text in ("1", "true", "yes")


def _json_lines() -> str:
    """The body as JSON lines: a JSON array becomes one line per element."""
    mimetype = request.mimetype
    body = request.get_data(cache=False)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        abort(400, description="the body is not valid UTF-8 text")
    if mimetype in JSON_LINES_TYPES:
        try:
            jsonbody.check_lines(text)
        except jsonbody.BodyRefused as exc:
            abort(400, description=f"the body is refused: {exc}")
        return text
    if mimetype != "application/json":
        abort(415, description="send application/json (a list of responses) or application/x-ndjson (one per line)")
    try:
        records = jsonbody.loads(text)
    except json.JSONDecodeError as exc:
        abort(400, description=f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except jsonbody.BodyRefused as exc:
        abort(400, description=f"the body is refused: {exc}")
    if not isinstance(records, list):
        abort(400, description="expected a JSON list of response objects")
    return "\n".join(json.dumps(record, ensure_ascii=False) for record in records)


@bp.route("/responses", methods=["POST"])
@admin_required
def post_responses() -> tuple[Response, int]:
    """Import responses; the answer has the CLI's ``ingest --json`` counts and errors.

    Errors name the record by its position (1-based line of JSON lines, or element
    of a JSON list). 200 when written, 422 when refused (nothing written).
    """
    source = request.args.get("source", "api").strip()
    if not source or len(source) > MAX_SOURCE_LENGTH:
        abort(400, description=f"source must be 1-{MAX_SOURCE_LENGTH} characters")
    skip_invalid = _flag("skip_invalid")
    text = _json_lines()
    if not text.strip():
        abort(400, description="no responses in the body")
    with tempfile.TemporaryDirectory(prefix="mspmon-api-") as folder:
        path = Path(folder) / "api-request.jsonl"
        path.write_text(text, encoding="utf-8")
        report = ingest_files(state().engine, [path], settings(), source=source, skip_invalid=skip_invalid, parallel=False)
    if report.committed:
        link_responses_to_tickets(state().engine)  # as ``mspmon ingest``: empty dimensions from the ticket
    payload: dict[str, Any] = report.as_dict()
    payload["errors"] = [
        {"record": error["line"], "column": error["column"], "message": error["message"]} for error in payload["errors"]
    ]
    payload.pop("rejects_files")
    return jsonify(payload), 200 if report.committed else 422
