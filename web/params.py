"""Query parameters and lookups shared by pages and the API, each refusing bad input with a 4xx."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from flask import abort, g, request

from monitor.analysis.cube import CubeSet
from monitor.scope import Scope, finding_in_scope
from monitor.store.models import Finding, Transition
from web import figures
from web.db import get_cubes, get_db, settings


def choice(name: str, allowed: Iterable[str], default: str) -> str:
    value = request.args.get(name, default)
    allowed = list(allowed)
    if value not in allowed:
        abort(400, description=f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def date(name: str, source: dict[str, str] | None = None) -> dt.date | None:
    text = (request.args if source is None else source).get(name, "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name} must be a date as YYYY-MM-DD; got {text!r}")


def dimension(name: str, cubes: CubeSet, default: str | None = None) -> str | None:
    value = request.args.get(name, default)
    if value in (None, ""):
        return None
    if value not in cubes.dimensions:
        abort(400, description=f"{name} must be one of the dimensions {', '.join(cubes.dimensions)}; got {value!r}")
    return value


def filters(cubes: CubeSet) -> dict[str, str]:
    """Segment filters ``f=dimension=value`` (repeatable), one value per dimension."""
    chosen: dict[str, str] = {}
    for item in request.args.getlist("f"):
        name, sep, value = item.partition("=")
        if not sep or not value:
            abort(400, description=f"a filter is written dimension=value; got {item!r}")
        if name not in cubes.dimensions:
            abort(400, description=f"unknown dimension {name!r} in filter; known: {', '.join(cubes.dimensions)}")
        if name in chosen and chosen[name] != value:
            abort(400, description=f"two filters on {name!r}: pick one value")
        chosen[name] = value
    return chosen


def segment_query() -> tuple[dict[str, str], str | None, str | None, str]:
    """A drill-down's filters, split dimension, heatmap dimension and metric."""
    cubes = require_cubes()
    by = dimension("by", cubes)
    return filters(cubes), by, dimension("by2", cubes) if by else None, metric()


def metric(default: str = "happiness") -> str:
    return choice("metric", figures.METRICS, default)


def require_cubes() -> CubeSet:
    cubes = get_cubes()
    if cubes is None:
        abort(404, description="no analysis has run yet: run `mspmon analyze` first")
    return cubes


def transition(transition_id: int) -> Transition:
    found = get_db().get(Transition, transition_id)
    if found is None:
        abort(404, description=f"no transition with id {transition_id}")
    return found


def user_scope() -> dict[str, list[str]]:
    return dict(g.user.scope or {}) if g.user is not None else {}


def visible(segment: dict[str, str]) -> bool:
    """A scoped viewer sees the findings the one scope rule gives (``monitor.scope.finding_in_scope``)."""
    return finding_in_scope(Scope.of(user_scope()), segment)


def finding(finding_id: str) -> Finding:
    found = get_db().get(Finding, finding_id)
    if found is None or not visible(found.segment):
        abort(404, description=f"no finding with id {finding_id!r}")
    return found


def anonymity() -> int:
    return settings().anonymity_min_responses
