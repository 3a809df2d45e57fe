"""The OpenAPI 3.1 description of ``/api/``, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from monitor.store.models import FindingState
from web import figures


def _query(name: str, description: str, schema: dict[str, Any] | None = None, *, array: bool = False) -> dict[str, Any]:
    item = schema or {"type": "string"}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "array", "items": item} if array else item,
        **({"style": "form", "explode": True} if array else {}),
    }


def _path(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _answers(ok: str, *extra: int) -> dict[str, Any]:
    errors = {str(code): {"$ref": "#/components/responses/Error"} for code in (400, 401, 404, *extra)}
    return {"200": {"description": ok, "content": {"application/json": {"schema": {"type": "object"}}}}, **errors}


METRIC = _query("metric", "Metric to show.", {"type": "string", "enum": list(figures.METRICS), "default": "happiness"})
SEGMENT_QUERIES = [
    METRIC,
    _query("by", "Dimension to split the view by (a table of segments)."),
    _query("by2", "Second dimension, with by: a heatmap of the change."),
    _query("f", "Filter dimension=value; repeat for a second dimension.", array=True),
]
RESPONSE_RECORD = {
    "type": "object",
    "required": ["response_id", "submitted_at", "ticket_id", "ticket_type", "rating", "lost_time_minutes", "factors", "comment"],
    "properties": {
        "response_id": {"type": "string", "maxLength": 200},
        "submitted_at": {"type": "string", "description": "ISO 8601; without an offset, in the configured time zone"},
        "ticket_id": {"type": "string"},
        "ticket_type": {"type": "string", "enum": ["incident", "request", "other"]},
        "rating": {"type": "integer", "minimum": 0, "maximum": 10},
        "lost_time_minutes": {"type": ["number", "null"], "minimum": 0},
        "factors": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
        "comment": {"type": "string"},
    },
    "additionalProperties": {"type": "string", "description": "dimension values (country, service, ...)"},
}


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mspmon API",
            "version": "1",
            "description": "Employee experience through an IT service desk transition: the web view's figures as JSON, "
            "and survey responses in. Segments with fewer responses than the anonymity threshold are never returned.",
        },
        "servers": [{"url": "/api"}],
        "security": [{"bearer": []}],
        "paths": {
            "/transitions": {"get": {"summary": "Every transition with its status and figures, and data freshness", "responses": _answers("The overview")}},
            "/transitions/{transition_id}": {
                "get": {
                    "summary": "One transition: before/after per metric and window, weekly series, targets, findings",
                    "parameters": [_path("transition_id", "integer"), METRIC],
                    "responses": _answers("The transition"),
                }
            },
            "/transitions/{transition_id}/segments": {
                "get": {
                    "summary": "Segment drill-down: n, before, after, delta with interval, share of the change, impact, trend",
                    "parameters": [_path("transition_id", "integer"), *SEGMENT_QUERIES],
                    "responses": _answers("The drill-down"),
                }
            },
            "/findings": {
                "get": {
                    "summary": "Findings, root findings first, each with its echoes",
                    "parameters": [
                        _query("transition", "Transition name."),
                        _query("state", "Lifecycle state.", {"type": "string", "enum": [str(state) for state in FindingState]}),
                        _query("metric", "Metric name, e.g. happiness or factor:Long waiting time."),
                        _query("since", "Changes on or after this date.", {"type": "string", "format": "date"}),
                    ],
                    "responses": _answers("The findings"),
                }
            },
            "/findings/{finding_id}": {
                "get": {
                    "summary": "One finding with its drill-down tree, echoes, factor shifts and label history",
                    "parameters": [_path("finding_id", "string")],
                    "responses": _answers("The finding"),
                }
            },
            "/responses": {
                "post": {
                    "summary": "Import survey responses with the rules of the file import (admin token)",
                    "description": "All-or-nothing unless skip_invalid=true; idempotent per source and response_id. "
                    "Errors name the record by its 1-based position.",
                    "parameters": [
                        _query("source", "Survey source; response ids are unique per source.", {"type": "string", "default": "api"}),
                        _query("skip_invalid", "Import the valid records and report the others.", {"type": "boolean", "default": False}),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": RESPONSE_RECORD, "minItems": 1}},
                            "application/x-ndjson": {"schema": RESPONSE_RECORD},
                        },
                    },
                    "responses": {
                        **_answers("Imported: counts of inserted, updated and unchanged records", 403, 413, 415),
                        "422": {"description": "Refused: nothing was written; the errors say which records and why"},
                    },
                }
            },
            "/openapi.json": {"get": {"summary": "This description", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A token from `mspmon tokens create`"}},
            "responses": {
                "Error": {
                    "description": "A refusal with its reason",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "error": {
                                        "type": "object",
                                        "properties": {"status": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}},
                                    }
                                },
                            }
                        }
                    },
                }
            },
        },
    }
