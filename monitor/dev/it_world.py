"""Synthetic tickets with their survey answers and planted IT effects, in memory (issue 12).

A world has assignment groups and countries; each group resolves a Poisson number of
tickets a week with an SLA flag, reassignments, reopens and a lognormal resolution
time; a share of resolved tickets is answered (0-10 rating, lost minutes) after a
lognormal delay. Planted effects, each in one assignment group from an onset week:

- ``sla_collapse``: SLA met 93% -> 60%, resolution 3x slower, and people feel it
  (detractors 15% -> 50%);
- ``sla_unfelt``: the same SLA collapse, ratings unchanged;
- ``watermelon``: the SLA holds while Happiness falls (detractors 15% -> 50%);
- ``response_fall``: the response rate falls from 20% to 5%;
- ``fast_answered``: only tickets resolved faster than the group's median are
  answered much (35% against 4%): the answered tickets are the fast ones.

Used by the unit tests (several random seeds) and ``benchmarks/tickets.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.analysis.aggregate import ResponseTable, _row_statistics
from monitor.analysis.it_detect import TicketTable
from monitor.periods import period_start

FIRST_PERIOD = 2900  # a Monday-based week number (2025)
KINDS = ("sla_collapse", "sla_unfelt", "watermelon", "response_fall", "fast_answered")


@dataclass(frozen=True)
class ITEffect:
    kind: str
    group: str
    onset: int  # period offset


@dataclass
class ITWorld:
    tickets: TicketTable
    responses: ResponseTable
    effects: list[ITEffect]
    groups: list[str] = field(default_factory=list)
    raw: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # for ``write_world``


def it_world(
    seed: int,
    effects: list[ITEffect] | None = None,
    *,
    periods: int = 40,
    groups: int = 6,
    weekly: float = 400.0,
) -> ITWorld:
    """A world with the given planted ``effects`` (random ones, one per kind, when None)."""
    rng = np.random.default_rng(seed)
    names = [f"G{i:02d}" for i in range(groups)]
    countries = ["DE", "FI", "FR"]
    if effects is None:
        chosen = rng.permutation(names)
        effects = [ITEffect(kind, str(chosen[i]), int(rng.integers(periods // 2, periods - 8))) for i, kind in enumerate(KINDS)]
    sizes = rng.dirichlet(np.full(groups, 8.0)) * groups
    per_period = rng.poisson(np.outer(np.ones(periods), sizes * weekly))  # (periods, groups)
    period_of = np.repeat(np.tile(np.arange(periods), groups), per_period.T.reshape(-1))
    group_of = np.repeat(np.repeat(np.arange(groups), periods), per_period.T.reshape(-1))
    n = len(period_of)
    country = rng.integers(0, len(countries), n)
    sla_p = np.full(n, 0.93)
    slow = np.ones(n)
    detractor = np.full(n, 0.15)
    respond = np.full(n, 0.20)
    fast_only = np.zeros(n, dtype=bool)
    for effect in effects:
        hit = (group_of == names.index(effect.group)) & (period_of >= effect.onset)
        if effect.kind in ("sla_collapse", "sla_unfelt"):
            sla_p[hit], slow[hit] = 0.60, 3.0
            if effect.kind == "sla_collapse":
                detractor[hit] = 0.50
        elif effect.kind == "watermelon":
            detractor[hit] = 0.50
        elif effect.kind == "response_fall":
            respond[hit] = 0.05
        elif effect.kind == "fast_answered":
            fast_only |= group_of == names.index(effect.group)
    sla = (rng.random(n) < sla_p).astype(float)
    reassign = rng.poisson(0.25, n).astype(float)
    reopen = (rng.random(n) < 0.04).astype(float)
    hours = rng.lognormal(2.0, 1.0, n) * slow
    if fast_only.any():
        median = np.median(hours[fast_only])
        respond[fast_only] = np.where(hours[fast_only] < median, 0.35, 0.04)
    answered = rng.random(n) < respond
    delay = np.where(answered, rng.lognormal(1.0, 1.0, n), np.nan)
    tickets = TicketTable(
        "week",
        FIRST_PERIOD + period_of,
        {"assignment_group": group_of.astype(np.int64), "country": country.astype(np.int64)},
        {"assignment_group": names, "country": countries},
        FIRST_PERIOD,
        FIRST_PERIOD + periods - 1,
        sla,
        reassign,
        reopen,
        hours,
        answered,
        delay,
    )
    a = np.flatnonzero(answered)
    u = rng.random(len(a))
    promoter = np.clip(0.6 - (detractor[a] - 0.15), 0.05, None)
    rating = np.where(u < detractor[a], rng.integers(0, 7, len(a)), np.where(u < detractor[a] + promoter, rng.integers(9, 11, len(a)), rng.integers(7, 9, len(a))))
    lost = rng.lognormal(3.0, 1.0, len(a))
    stats, stat_names = _row_statistics(rating.astype(float), lost, np.zeros(len(a), dtype=np.int64), {})
    responses = ResponseTable(
        "week",
        FIRST_PERIOD + period_of[a],
        stats,
        stat_names,
        {"assignment_group": group_of[a].astype(np.int64), "country": country[a].astype(np.int64)},
        {"assignment_group": names, "country": countries},
        FIRST_PERIOD,
        FIRST_PERIOD + periods - 1,
    )
    raw = {"period": period_of, "hours": hours, "delay": delay, "answered_index": a, "rating": rating, "lost": lost}
    return ITWorld(tickets, responses, list(effects), names, raw)


def write_world(world: ITWorld, directory: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """The world as a canonical ticket file and a canonical response file (responses
    carry no dimension: they inherit their ticket's)."""
    rng = np.random.default_rng(seed)
    t = world.tickets
    n = len(t)
    week_start = np.array([np.datetime64(period_start(int(p), "week").isoformat()) for p in range(t.first_period, t.last_period + 1)])
    resolved = week_start[t.periods - t.first_period].astype("datetime64[s]") + (rng.random(n) * 6 * 86400).astype("timedelta64[s]")
    opened = resolved - (t.resolution_hours * 3600).astype("timedelta64[s]")
    ids = np.char.add("T", np.arange(n).astype(str))
    tickets = pd.DataFrame({
        "ticket_id": ids,
        "ticket_type": "incident",
        "opened_at": pd.to_datetime(opened).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resolved_at": pd.to_datetime(resolved).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sla_met": np.where(t.sla > 0, "true", "false"),
        "reassignment_count": t.reassignments.astype(int),
        "reopen_count": t.reopens.astype(int),
        "assignment_group": np.array(t.labels["assignment_group"])[t.codes["assignment_group"]],
        "country": np.array(t.labels["country"])[t.codes["country"]],
    })
    a = world.raw["answered_index"]
    submitted = resolved[a] + (np.maximum(t.feedback_hours[a], 0.01) * 3600).astype("timedelta64[s]")
    responses = pd.DataFrame({
        "response_id": np.char.add("R", np.arange(len(a)).astype(str)),
        "submitted_at": pd.to_datetime(submitted).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ticket_id": ids[a],
        "ticket_type": "incident",
        "rating": world.raw["rating"],
        "lost_time_minutes": np.round(world.raw["lost"], 1),
        "factors": "",
        "comment": "",
    })
    directory.mkdir(parents=True, exist_ok=True)
    ticket_path, response_path = directory / "tickets.csv", directory / "responses.csv"
    tickets.to_csv(ticket_path, index=False)
    responses.to_csv(response_path, index=False)
    return ticket_path, response_path
