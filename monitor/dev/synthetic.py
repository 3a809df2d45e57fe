"""Seeded synthetic survey responses with a planted, known ground truth.

Real survey exports are confidential and, more importantly, nobody knows what
the "right" findings in them are.  This module fabricates two years of
employee-experience responses around an MSP service-desk go-live in which the
truth is known: a short generic dip at go-live, a lasting dip localised to one
country x service cell, one improvement and one tiny noisy segment.  Detectors,
the demo and the benchmarks are judged against :attr:`Scenario.effects`.

Design choices that matter to callers:

* Rows are distributed over weeks deterministically (largest remainder on the
  volume pattern), so ``n`` fixes the total exactly.
* Every week is drawn from its own generator, ``default_rng([seed, week])``,
  so the data can be produced week by week in bounded memory and
  :func:`iter_response_chunks` yields exactly the rows of
  :func:`generate_responses`, whatever the chunk size.
* Rows are first built as integer codes; the DataFrame, CSV and JSON-lines
  encodings are rendered from those codes, which keeps 1M rows fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import pandas as pd

from monitor.ingest.readers import CANONICAL_COLUMNS
from monitor.periods import EPOCH

DIMENSIONS: tuple[str, ...] = ("country", "department", "channel", "service", "assignment_group", "location")
COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, *DIMENSIONS)

NEGATIVE_FACTORS: tuple[str, ...] = (
    "Long waiting time",
    "Lack of business knowledge",
    "Had to explain multiple times",
    "Issue not resolved",
    "Language barrier",
    "Unfriendly service",
    "Slow response",
)
POSITIVE_FACTORS: tuple[str, ...] = (
    "Fast resolution",
    "Friendly service",
    "Knowledgeable agent",
)
FACTORS: tuple[str, ...] = NEGATIVE_FACTORS + POSITIVE_FACTORS
FACTOR_SEPARATOR = ";"

TICKET_TYPES: tuple[str, ...] = ("incident", "request", "other")
_TICKET_PREFIXES: tuple[str, ...] = ("INC", "REQ", "TSK")

DEFAULT_START = date(2024, 11, 4)
DEFAULT_GO_LIVE = date(2025, 9, 1)

# --- segment tables ---------------------------------------------------------
# Each dimension value carries its share of volume and a Happiness offset
# (points) relative to the scenario baseline (department and channel tables:
# value -> (share, offset)).  Offsets are small and roughly
# volume-neutral so the overall Happiness stays near the baseline.

_Weights = tuple[tuple[str, float], ...]


class _Country(NamedTuple):
    share: float
    utc_offset: int  # hours, standard time
    dst: bool  # observes EU summer time
    happiness: float
    offices: _Weights


class _Service(NamedTuple):
    share: float
    happiness: float
    ticket_types: tuple[float, float, float]  # P(incident, request, other)
    inhouse_groups: _Weights
    msp_groups: _Weights


_COUNTRIES: dict[str, _Country] = {
    "Germany": _Country(0.300, 1, True, 0.0, (("Berlin", 0.35), ("Munich", 0.40), ("Hamburg", 0.25))),
    "Finland": _Country(0.150, 2, True, 3.0, (("Helsinki", 0.60), ("Espoo", 0.25), ("Tampere", 0.15))),
    "France": _Country(0.150, 1, True, -5.0, (("Paris", 0.70), ("Lyon", 0.30))),
    "Netherlands": _Country(0.120, 1, True, 4.0, (("Amsterdam", 0.65), ("Eindhoven", 0.35))),
    "Poland": _Country(0.100, 1, True, 2.0, (("Warsaw", 0.60), ("Kraków", 0.40))),
    "Spain": _Country(0.100, 1, True, -3.0, (("Madrid", 0.60), ("Barcelona", 0.40))),
    "Sweden": _Country(0.077, 1, True, 5.0, (("Stockholm", 0.70), ("Gothenburg", 0.30))),
    "Iceland": _Country(0.003, 0, False, 0.0, (("Reykjavík", 1.0),)),
}
_DEPARTMENTS: dict[str, tuple[float, float]] = {
    "Finance": (0.14, 0.0),
    "HR": (0.08, 4.0),
    "Sales": (0.20, 2.0),
    "Engineering": (0.25, -4.0),
    "Operations": (0.20, -2.0),
    "Legal": (0.04, 3.0),
    "Marketing": (0.09, 1.0),
}
_CHANNELS: dict[str, tuple[float, float]] = {
    "Phone": (0.30, 0.0),
    "Chat": (0.25, -5.0),
    "Portal": (0.25, 2.0),
    "Email": (0.15, -15.0),
    "Walk-in": (0.05, 15.0),
}
_SERVICES: dict[str, _Service] = {
    "SAP": _Service(
        0.20, -5.0, (0.60, 0.35, 0.05),
        (("Inhouse-SAP", 0.80), ("Inhouse-L1", 0.20)),
        (("MSP-SAP-L2", 0.70), ("MSP-Europe-L1", 0.30)),
    ),
    "Email & Collaboration": _Service(
        0.20, 0.0, (0.65, 0.30, 0.05),
        (("Inhouse-L1", 0.85), ("Inhouse-Workplace", 0.15)),
        (("MSP-Europe-L1", 0.80), ("MSP-Workplace-L2", 0.20)),
    ),
    "Laptop & Devices": _Service(
        0.22, 5.0, (0.50, 0.45, 0.05),
        (("Inhouse-L1", 0.40), ("Inhouse-Deskside", 0.60)),
        (("MSP-Europe-L1", 0.45), ("MSP-Deskside", 0.55)),
    ),
    "Network & VPN": _Service(
        0.12, -3.0, (0.80, 0.15, 0.05),
        (("Inhouse-Network", 0.70), ("Inhouse-L1", 0.30)),
        (("MSP-Network-L2", 0.60), ("MSP-Europe-L1", 0.40)),
    ),
    "Access Management": _Service(
        0.16, 3.0, (0.25, 0.70, 0.05),
        (("Inhouse-IAM", 0.60), ("Inhouse-L1", 0.40)),
        (("MSP-Europe-L1", 0.75), ("MSP-IAM-L2", 0.25)),
    ),
    "Printing": _Service(
        0.10, -8.0, (0.70, 0.20, 0.10),
        (("Inhouse-L1", 0.70), ("Inhouse-Deskside", 0.30)),
        (("MSP-Europe-L1", 0.60), ("MSP-Deskside", 0.40)),
    ),
}
# Finland hosts the finance shared-service centre, so SAP is a far larger part
# of its ticket mix; this is also what gives the planted Finland x SAP dip
# enough volume (~35 responses/week at n=60,000) to be a real finding.
_SERVICE_SHARE_OVERRIDES: dict[str, dict[str, float]] = {"Finland": {"SAP": 0.40}}

# --- response model ---------------------------------------------------------
# Categories follow the Happiness definition: 0-6 detractor, 7-8 passive,
# 9-10 promoter; Happiness = %promoters - %detractors.
_DETRACTOR_RATING_WEIGHTS = np.array([0.10, 0.04, 0.06, 0.08, 0.10, 0.25, 0.37])
_HIGH_RATING_WEIGHT = 0.55  # P(8 | passive) and P(10 | promoter)
_MAX_PASSIVE_SHARE = 0.22

# P(factor cited | category), rows = detractor, passive, promoter.
_FACTOR_BASE = np.array(
    [
        # wait  knowl  expl  unres  lang  unfr  slow | fast  frnd  know
        [0.35, 0.12, 0.25, 0.30, 0.06, 0.10, 0.25, 0.03, 0.05, 0.02],
        [0.15, 0.04, 0.08, 0.06, 0.02, 0.02, 0.10, 0.20, 0.25, 0.12],
        [0.03, 0.01, 0.01, 0.01, 0.005, 0.005, 0.02, 0.45, 0.40, 0.30],
    ]
)
# An effect's factor_lift is the added citation probability for detractors;
# satisfied respondents mention a problem less often.
_FACTOR_LIFT_SCALE = np.array([1.0, 0.5, 0.2])

_LOST_TIME_MISSING = np.array([0.22, 0.32, 0.36])  # unhappy people answer more
_LOST_TIME_MEDIAN = np.array([70.0, 35.0, 20.0])  # minutes
_LOST_TIME_SIGMA = 1.1
_LOST_TIME_CAP = 2400  # a full working week; anything above is a typo
_LOST_TIME_STEP = 5  # people answer in round numbers

_COMMENT_RATE = np.array([0.40, 0.20, 0.15])
# Free text deliberately contains commas, quotes, semicolons, a line break,
# non-Latin-1 and 4-byte UTF-8 characters to exercise CSV quoting and encoding.
_COMMENTS: tuple[tuple[str, ...], ...] = (
    (
        "Took far too long to get a response.",
        "I had to explain the issue three times, to three different agents.",
        'The agent said "it works on my side" and closed the ticket.',
        "Très lent, «merci»",
        "Die Lösung hat nicht funktioniert; Ticket wurde trotzdem geschlossen.",
        "Ei ymmärretty SAP-prosessia, jouduin selittämään kaiken uudelleen.",
        "Muy lento, tuve que llamar tres veces.",
        "Nobody knew how our month-end close works.\nPlease train the new team.",
    ),
    (
        "OK.",
        "Fine, but it could be faster.",
        "Ääkköset toimivat",
        "Działa, ale długo to trwało.",
        "Het is opgelost, maar pas na twee dagen.",
    ),
    (
        "Great, thanks!",
        "Snabb hjälp, tack! 👍",
        "Super schnell gelöst, danke!",
        'Agent was "spot on", solved in 5 minutes.',
        "Merci beaucoup, très efficace.",
    ),
)
_COMMENT_TEXTS: tuple[str, ...] = ("",) + tuple(c for pool in _COMMENTS for c in pool)
_COMMENT_POOL_START = np.cumsum([1] + [len(pool) for pool in _COMMENTS[:-1]])
_COMMENT_POOL_SIZE = np.array([len(pool) for pool in _COMMENTS])

# --- volume and time-of-day pattern -----------------------------------------
_WEEKDAY_VOLUME = (1.15, 1.10, 1.05, 1.00, 0.85, 0.08, 0.05)  # Monday first
_ANNUAL_GROWTH = 0.075
_FIRST_HOUR = 6  # local; keeps every UTC timestamp inside its own week
_HOUR_WEIGHTS = np.array(
    [
        # 06   07   08   09    10    11    12   13   14    15   16   17   18   19   20   21   22
        [0.5, 2.0, 6.0, 10.0, 11.0, 10.0, 7.0, 9.0, 10.0, 9.0, 7.0, 4.0, 2.0, 1.2, 1.0, 0.7, 0.4],
        [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 2.0, 2.0, 1.5, 1.0, 0.5],
    ]
)


EffectKind = Literal["generic_dip", "localized_dip", "improvement", "tiny_segment"]
_EFFECT_KINDS = frozenset(get_args(EffectKind))


@dataclass(frozen=True)
class PlantedEffect:
    """One piece of ground truth planted in the data.

    ``segment`` selects the rows (all given dimensions must match; empty means
    every row).  The effect is at full strength from ``start``; with ``end``
    and ``recovery_from`` it fades linearly from ``recovery_from`` to zero at
    ``end``, with only ``end`` it stops abruptly, and with no ``end`` it lasts
    to the end of the data.  Dates are local calendar dates of the response.
    """

    kind: EffectKind
    segment: dict[str, str]
    start: date
    end: date | None
    happiness_delta: float
    factor: str | None
    secondary_factors: tuple[str, ...] = ()
    factor_lift: float = 0.0
    lost_time_factor: float = 1.0
    recovery_from: date | None = None
    rating_noise: float = 0.0

    def intensity(self, day: date) -> float:
        """Strength of the effect on ``day``, from 0 (absent) to 1 (full)."""
        if day < self.start or (self.end is not None and day >= self.end):
            return 0.0
        if self.end is None or self.recovery_from is None or day < self.recovery_from:
            return 1.0
        return (self.end - day).days / (self.end - self.recovery_from).days

    @property
    def factors(self) -> tuple[str, ...]:
        """Every factor whose citation rate the effect raises."""
        return ((self.factor,) if self.factor else ()) + self.secondary_factors


@dataclass(frozen=True)
class Scenario:
    """Calendar, baseline and planted effects of one synthetic data set.

    The segment mix (countries, offices, services, channels, departments,
    assignment groups) and the factor vocabulary are fixed by this module, so
    they are read-only properties here; :meth:`levels` lists the values.
    """

    start: date
    weeks: int
    go_live: date
    effects: tuple[PlantedEffect, ...]
    baseline_happiness: float = 52.0

    def __post_init__(self) -> None:
        if self.weeks < 1:
            raise ValueError(f"weeks must be positive, got {self.weeks}")
        if not self.start <= self.go_live < self.end:
            raise ValueError(f"go-live {self.go_live} is outside {self.start}..{self.end}")
        for effect in self.effects:
            if effect.kind not in _EFFECT_KINDS:
                raise ValueError(f"unknown effect kind {effect.kind!r}")
            if not self.start <= effect.start < self.end:
                raise ValueError(f"{effect.kind} starts {effect.start}, outside the data")
            for dim, value in effect.segment.items():
                if dim not in self.dimensions or value not in self.levels(dim):
                    raise ValueError(f"{effect.kind}: unknown segment {dim}={value!r}")
            unknown = set(effect.factors) - set(self.factors)
            if unknown:
                raise ValueError(f"{effect.kind}: unknown factors {sorted(unknown)}")

    @property
    def end(self) -> date:
        """First day after the data (exclusive)."""
        return self.start + timedelta(weeks=self.weeks)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Segment columns, in canonical order."""
        return DIMENSIONS

    @property
    def factors(self) -> tuple[str, ...]:
        """Full factor vocabulary, negative factors first."""
        return FACTORS

    def levels(self, dimension: str) -> tuple[str, ...]:
        """All values a dimension can take (assignment groups of both eras)."""
        return _LEVELS[dimension]

    def effect(self, kind: EffectKind) -> PlantedEffect:
        """The first planted effect of ``kind``, for tests and benchmarks."""
        for effect in self.effects:
            if effect.kind == kind:
                return effect
        raise KeyError(kind)


def default_scenario(
    *,
    start: date = DEFAULT_START,
    weeks: int = 104,
    go_live: date = DEFAULT_GO_LIVE,
) -> Scenario:
    """The reference scenario: MSP go-live with a generic and a localised dip.

    Effect dates are placed relative to ``start`` and ``go_live`` so shifted
    calendars keep the same story: the Chat improvement 26 weeks after the
    start, the generic dip at go-live (2 weeks full, then 4 weeks recovery),
    and the Finland x SAP dip 6 weeks after go-live, never recovering.
    """
    effects = (
        PlantedEffect(
            kind="improvement",
            segment={"channel": "Chat"},
            start=start + timedelta(weeks=26),
            end=None,
            happiness_delta=15.0,
            factor=None,
        ),
        PlantedEffect(
            kind="generic_dip",
            segment={},
            start=go_live,
            end=go_live + timedelta(weeks=6),
            recovery_from=go_live + timedelta(weeks=2),
            happiness_delta=-25.0,
            factor="Long waiting time",
            secondary_factors=("Had to explain multiple times",),
            factor_lift=0.25,
            lost_time_factor=1.3,
        ),
        PlantedEffect(
            kind="localized_dip",
            segment={"country": "Finland", "service": "SAP"},
            start=go_live + timedelta(weeks=6),
            end=None,
            happiness_delta=-40.0,
            factor="Lack of business knowledge",
            factor_lift=0.70,
            lost_time_factor=1.6,
        ),
        PlantedEffect(
            kind="tiny_segment",
            segment={"country": "Iceland"},
            start=start,
            end=None,
            happiness_delta=0.0,
            factor=None,
            rating_noise=0.35,
        ),
    )
    return Scenario(start=start, weeks=weeks, go_live=go_live, effects=effects)


# --- static lookup tables ---------------------------------------------------


def _cumulative(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Cumulative distribution (last axis) whose final entry is exactly 1."""
    w = np.asarray(weights, dtype=float)
    cum = np.cumsum(w / w.sum(axis=-1, keepdims=True), axis=-1)
    cum[..., -1] = 1.0
    return cum


def _group_levels() -> tuple[str, ...]:
    names: dict[str, None] = {}
    for spec in _SERVICES.values():
        names.update((group, None) for group, _ in spec.inhouse_groups)
    for spec in _SERVICES.values():
        names.update((group, None) for group, _ in spec.msp_groups)
    return tuple(names)


_LEVELS: dict[str, tuple[str, ...]] = {
    "country": tuple(_COUNTRIES),
    "department": tuple(_DEPARTMENTS),
    "channel": tuple(_CHANNELS),
    "service": tuple(_SERVICES),
    "assignment_group": _group_levels(),
    "location": tuple(office for spec in _COUNTRIES.values() for office, _ in spec.offices),
}


def _conditional_matrix(
    parents: Sequence[str], children: Sequence[str], weights: Callable[[str], Mapping[str, float]]
) -> np.ndarray:
    """Cumulative P(child | parent) with one row per parent."""
    matrix = np.zeros((len(parents), len(children)))
    for i, parent in enumerate(parents):
        for child, weight in weights(parent).items():
            matrix[i, children.index(child)] = weight
    return _cumulative(matrix)


def _service_weights(country: str) -> dict[str, float]:
    base = {service: spec.share for service, spec in _SERVICES.items()}
    fixed = _SERVICE_SHARE_OVERRIDES.get(country, {})
    rest = sum(w for s, w in base.items() if s not in fixed)
    scale = (1.0 - sum(fixed.values())) / rest
    return {s: fixed.get(s, w * scale) for s, w in base.items()}


_COUNTRY_CUM = _cumulative([spec.share for spec in _COUNTRIES.values()])
_DEPARTMENT_CUM = _cumulative([share for share, _ in _DEPARTMENTS.values()])
_CHANNEL_CUM = _cumulative([share for share, _ in _CHANNELS.values()])
_LOCATION_CUM = _conditional_matrix(
    _LEVELS["country"], _LEVELS["location"], lambda c: dict(_COUNTRIES[c].offices)
)
_SERVICE_CUM = _conditional_matrix(_LEVELS["country"], _LEVELS["service"], _service_weights)
_TICKET_TYPE_CUM = _cumulative([spec.ticket_types for spec in _SERVICES.values()])
# Rows 0..S-1: in-house era, rows S..2S-1: MSP era (index = era * S + service).
_GROUP_CUM = np.vstack(
    [
        _conditional_matrix(
            _LEVELS["service"], _LEVELS["assignment_group"], lambda s: dict(_SERVICES[s].inhouse_groups)
        ),
        _conditional_matrix(
            _LEVELS["service"], _LEVELS["assignment_group"], lambda s: dict(_SERVICES[s].msp_groups)
        ),
    ]
)
_HOUR_CUM = _cumulative(_HOUR_WEIGHTS)
_DETRACTOR_RATING_CUM = _cumulative(_DETRACTOR_RATING_WEIGHTS)

_COUNTRY_UTC = np.array([spec.utc_offset for spec in _COUNTRIES.values()], dtype=np.int64)
_COUNTRY_DST = np.array([spec.dst for spec in _COUNTRIES.values()], dtype=np.int64)
_HAPPINESS_OFFSET = {
    "country": np.array([spec.happiness for spec in _COUNTRIES.values()]),
    "department": np.array([offset for _, offset in _DEPARTMENTS.values()]),
    "channel": np.array([offset for _, offset in _CHANNELS.values()]),
    "service": np.array([spec.happiness for spec in _SERVICES.values()]),
}


def _factor_strings() -> np.ndarray:
    """The ``;``-joined factor string for every bit mask of cited factors.

    Turning a boolean row into a string is then one array lookup.
    """
    strings = [
        FACTOR_SEPARATOR.join(f for bit, f in enumerate(FACTORS) if mask >> bit & 1)
        for mask in range(1 << len(FACTORS))
    ]
    return np.array(strings, dtype=object)


_FACTOR_STRINGS = _factor_strings()
_FACTOR_BITS = 1 << np.arange(len(FACTORS))

_TEXT_LEVELS: dict[str, np.ndarray] = {
    "ticket_type": np.array(TICKET_TYPES, dtype=object),
    "factors": _FACTOR_STRINGS,
    "comment": np.array(_COMMENT_TEXTS, dtype=object),
    **{dim: np.array(_LEVELS[dim], dtype=object) for dim in DIMENSIONS},
}
# Columns held as codes into _TEXT_LEVELS while a block is being built.
_CODED = tuple(_TEXT_LEVELS)

# --- calendar plan ----------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Per-day quantities of a scenario, computed once per generation run."""

    day_weight: np.ndarray  # relative response volume per day
    week_counts: np.ndarray  # rows per week, summing to n
    midnight: np.ndarray  # local midnight of each day, seconds since epoch
    weekend: np.ndarray  # 0/1 per day
    dst: np.ndarray  # 0/1 per day: EU summer time in force
    msp_era: np.ndarray  # 0/1 per day: on or after go-live
    intensity: np.ndarray  # effects x days


def _last_sunday(year: int, month: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _volume_factor(day: date) -> float:
    """Seasonal volume: Christmas/New Year leave and holidays, summer dip."""
    md = (day.month, day.day)
    if md in {(12, 24), (12, 25), (12, 26), (12, 31), (1, 1)}:
        return 0.11
    if md >= (12, 22) or md <= (1, 6):
        return 0.55
    if day.month == 7:
        return 0.60
    if day.month == 8 and day.day <= 15:
        return 0.75
    if day.month == 6 and day.day >= 20:
        return 0.85
    return 1.0


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    quota = total * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    short = total - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def _plan(n: int, scenario: Scenario) -> _Plan:
    days = [scenario.start + timedelta(days=i) for i in range(scenario.weeks * 7)]
    years = {d.year for d in days}
    summer = {y: (_last_sunday(y, 3), _last_sunday(y, 10)) for y in years}
    weight = np.array(
        [
            _WEEKDAY_VOLUME[d.weekday()]
            * _volume_factor(d)
            * (1.0 + _ANNUAL_GROWTH * i / 365.0)
            for i, d in enumerate(days)
        ]
    )
    return _Plan(
        day_weight=weight,
        week_counts=_allocate(n, weight.reshape(scenario.weeks, 7).sum(axis=1)),
        midnight=np.array([(d - EPOCH).days * 86_400 for d in days], dtype=np.int64),
        weekend=np.array([d.weekday() >= 5 for d in days], dtype=np.int64),
        dst=np.array([summer[d.year][0] <= d < summer[d.year][1] for d in days], dtype=np.int64),
        msp_era=np.array([d >= scenario.go_live for d in days], dtype=np.int64),
        intensity=np.array([[e.intensity(d) for d in days] for e in scenario.effects]).reshape(
            len(scenario.effects), len(days)
        ),
    )


def weekly_counts(n: int, scenario: Scenario | None = None) -> np.ndarray:
    """Rows per week for ``n`` responses: the volume pattern, summing to ``n``."""
    return _plan(_check_n(n), scenario or default_scenario()).week_counts


def _check_n(n: int) -> int:
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return n


# --- row generation ---------------------------------------------------------

_Block = dict[str, np.ndarray]


def _draw(rng: np.random.Generator, cum: np.ndarray, parent: np.ndarray | None, size: int) -> np.ndarray:
    """Categorical codes from a cumulative table, optionally conditional on ``parent``."""
    u = rng.random(size)
    if parent is None:
        return np.searchsorted(cum, u, side="right")
    return (u[:, None] >= cum[parent]).sum(axis=1)


def _week_block(
    scenario: Scenario, plan: _Plan, week: int, size: int, rng: np.random.Generator
) -> _Block:
    """Draw one week of responses, sorted by submission time."""
    day = week * 7 + _draw(rng, _cumulative(plan.day_weight[week * 7 : week * 7 + 7]), None, size)
    codes = {"country": _draw(rng, _COUNTRY_CUM, None, size)}
    codes["location"] = _draw(rng, _LOCATION_CUM, codes["country"], size)
    codes["department"] = _draw(rng, _DEPARTMENT_CUM, None, size)
    codes["channel"] = _draw(rng, _CHANNEL_CUM, None, size)
    codes["service"] = _draw(rng, _SERVICE_CUM, codes["country"], size)
    ticket_type = _draw(rng, _TICKET_TYPE_CUM, codes["service"], size)
    era_service = plan.msp_era[day] * len(_LEVELS["service"]) + codes["service"]
    codes["assignment_group"] = _draw(rng, _GROUP_CUM, era_service, size)

    # Local working hours, stored in UTC.
    hour = _FIRST_HOUR + _draw(rng, _HOUR_CUM, plan.weekend[day], size)
    utc_offset = _COUNTRY_UTC[codes["country"]] + plan.dst[day] * _COUNTRY_DST[codes["country"]]
    seconds = plan.midnight[day] + (hour - utc_offset) * 3600 + rng.integers(0, 3600, size)

    happiness = np.full(size, scenario.baseline_happiness)
    for dim, offsets in _HAPPINESS_OFFSET.items():
        happiness += offsets[codes[dim]]
    lost_time_scale = np.ones(size)
    factor_lift = np.zeros((size, len(FACTORS)))
    noise = np.zeros(size)
    for e, effect in enumerate(scenario.effects):
        strength = plan.intensity[e, day]
        for dim, value in effect.segment.items():
            strength = strength * (codes[dim] == _LEVELS[dim].index(value))
        happiness += effect.happiness_delta * strength
        lost_time_scale *= 1.0 + (effect.lost_time_factor - 1.0) * strength
        for factor in effect.factors:
            factor_lift[:, FACTORS.index(factor)] += effect.factor_lift * strength
        noise = np.maximum(noise, effect.rating_noise * strength)

    rating = _draw_ratings(rng, happiness, noise)
    category = np.searchsorted([6.5, 8.5], rating)

    cited_p = _FACTOR_BASE[category] + factor_lift * _FACTOR_LIFT_SCALE[category][:, None]
    factor_mask = (rng.random((size, len(FACTORS))) < cited_p) @ _FACTOR_BITS

    minutes = _LOST_TIME_MEDIAN[category] * lost_time_scale * np.exp(
        _LOST_TIME_SIGMA * rng.standard_normal(size)
    )
    minutes = np.minimum(np.round(minutes / _LOST_TIME_STEP) * _LOST_TIME_STEP, _LOST_TIME_CAP)
    answered = rng.random(size) >= _LOST_TIME_MISSING[category]
    lost = np.where(answered, minutes, -1).astype(np.int64)

    commented = rng.random(size) < _COMMENT_RATE[category]
    pick = _COMMENT_POOL_START[category] + rng.integers(0, 1 << 30, size) % _COMMENT_POOL_SIZE[category]
    comment = np.where(commented, pick, 0)

    order = np.argsort(seconds, kind="stable")
    block = {
        "seconds": seconds,
        "ticket_type": ticket_type,
        "rating": rating,
        "lost": lost,
        "factors": factor_mask,
        "comment": comment,
        **codes,
    }
    return {key: values[order] for key, values in block.items()}


def _draw_ratings(rng: np.random.Generator, happiness: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Ratings 0..10 whose expected Happiness equals ``happiness``.

    P(promoter) - P(detractor) = h; the passive share shrinks towards the
    extremes so both stay valid probabilities.  ``noise`` is the chance of
    replacing a rating by a uniform 0..10 one (noisy tiny segments).
    """
    h = np.clip(happiness / 100.0, -0.95, 0.95)
    passive = _MAX_PASSIVE_SHARE * (1.0 - h * h)
    promoter = (1.0 - passive + h) / 2.0
    u = rng.random(size := happiness.size)
    within = rng.random(size)
    high = (within < _HIGH_RATING_WEIGHT).astype(np.int64)
    rating = np.where(
        u < promoter,
        9 + high,
        np.where(
            u < promoter + passive,
            7 + high,
            np.searchsorted(_DETRACTOR_RATING_CUM, within, side="right"),
        ),
    )
    uniform = rng.integers(0, 11, size)
    return np.where(rng.random(size) < noise, uniform, rating).astype(np.int64)


_FIRST_TICKET = 10_001


def _iter_blocks(n: int, seed: int, scenario: Scenario) -> Iterator[_Block]:
    """Week blocks in time order, with global row and per-type ticket numbers."""
    plan = _plan(n, scenario)
    first_row = 0
    next_ticket = np.full(len(TICKET_TYPES), _FIRST_TICKET, dtype=np.int64)
    for week, size in enumerate(plan.week_counts.tolist()):
        if size == 0:
            continue
        block = _week_block(scenario, plan, week, size, np.random.default_rng([seed, week]))
        block["row"] = np.arange(first_row, first_row + size)
        onehot = block["ticket_type"][:, None] == np.arange(len(TICKET_TYPES))
        numbers = next_ticket + np.cumsum(onehot, axis=0) - 1
        block["ticket_no"] = numbers[np.arange(size), block["ticket_type"]]
        next_ticket += onehot.sum(axis=0)
        first_row += size
        yield block


def _concat(blocks: Sequence[_Block]) -> _Block:
    return {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}


def _rechunk(blocks: Iterator[_Block], chunk_rows: int) -> Iterator[_Block]:
    """Regroup week blocks into blocks of exactly ``chunk_rows`` (last may be short)."""
    pending: list[_Block] = []
    buffered = 0
    for block in blocks:
        pending.append(block)
        buffered += len(block["row"])
        if buffered < chunk_rows:
            continue
        merged = _concat(pending)
        cut = buffered - buffered % chunk_rows
        for lo in range(0, cut, chunk_rows):
            yield {key: values[lo : lo + chunk_rows] for key, values in merged.items()}
        pending = [{key: values[cut:] for key, values in merged.items()}] if cut < buffered else []
        buffered -= cut
    if buffered:
        yield _concat(pending)


# --- rendering --------------------------------------------------------------


class _Widths:
    """Zero-padding widths for ids, fixed per run so ids sort as strings."""

    def __init__(self, n: int) -> None:
        self.response = max(8, len(str(n)))
        self.ticket = max(7, len(str(_FIRST_TICKET + n)))


def _response_ids(block: _Block, widths: _Widths, head: str = "", tail: str = "") -> list[str]:
    w = widths.response
    return [f"{head}R{i + 1:0{w}d}{tail}" for i in block["row"].tolist()]


def _ticket_ids(block: _Block, widths: _Widths, head: str = "", tail: str = "") -> list[str]:
    w = widths.ticket
    prefixes = [head + prefix for prefix in _TICKET_PREFIXES]
    pairs = zip(block["ticket_type"].tolist(), block["ticket_no"].tolist())
    return [f"{prefixes[t]}{k:0{w}d}{tail}" for t, k in pairs]


def _by_value(values: np.ndarray, render: Callable[[int], str]) -> list[str]:
    """Render each distinct value once; far cheaper than formatting every row."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([render(v) for v in distinct.tolist()], dtype=object)[inverse].tolist()


def _iso_timestamps(block: _Block, head: str = "", tail: str = "") -> list[str]:
    """ISO 8601 with an explicit ``+00:00`` offset, built from day and time of day."""
    day, clock = np.divmod(block["seconds"], 86_400)
    dates = _by_value(day, lambda d: f"{head}{EPOCH + timedelta(days=d)}T")
    times = _by_value(clock, lambda s: f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00:00{tail}")
    return [d + t for d, t in zip(dates, times)]


def _frame(block: _Block, widths: _Widths) -> pd.DataFrame:
    lost = block["lost"]
    seconds = block["seconds"].astype("datetime64[s]").astype("datetime64[us]")
    columns = {
        "response_id": pd.array(_response_ids(block, widths), dtype="str"),
        "submitted_at": pd.DatetimeIndex(seconds).tz_localize("UTC"),
        "ticket_id": pd.array(_ticket_ids(block, widths), dtype="str"),
        "rating": block["rating"],
        "lost_time_minutes": pd.arrays.IntegerArray(np.maximum(lost, 0), lost < 0),
    }
    for key in _CODED:
        columns[key] = pd.array(_TEXT_LEVELS[key][block[key]], dtype="str")
    return pd.DataFrame({col: columns[col] for col in COLUMNS})


def _csv_field(text: str) -> str:
    """Quote only where RFC 4180 requires it, like ``csv.QUOTE_MINIMAL``."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_factors(text: str) -> str:
    factors = text.split(FACTOR_SEPARATOR) if text else []
    return json.dumps(factors, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class _LineFormat:
    """How one text format spells a record as a single comma-joined line.

    CSV fields are bare (quoted) values; JSON fields carry their ``"key":``
    prefix and the record its braces.  The coded columns are rendered once per
    distinct value, so writing costs one string join per row.
    """

    key: dict[str, str]
    quote: str  # around ids and timestamps
    missing: str  # missing lost time
    record_open: str
    record_close: str
    levels: dict[str, np.ndarray]

    def lines(self, block: _Block, widths: _Widths) -> Iterator[str]:
        """The records of ``block``, one ``\\n``-terminated line each.

        Lazily, so that no chunk-sized string is built: one astral character
        (an emoji in a comment) would make CPython store it at 4 bytes/char.
        """
        k, q = self.key, self.quote
        fields = {
            "response_id": _response_ids(block, widths, k["response_id"] + q, q),
            "submitted_at": _iso_timestamps(block, k["submitted_at"] + q, q),
            "ticket_id": _ticket_ids(block, widths, k["ticket_id"] + q, q),
            "rating": _by_value(block["rating"], lambda v: f"{k['rating']}{v}"),
            "lost_time_minutes": _by_value(
                block["lost"], lambda v: k["lost_time_minutes"] + (str(v) if v >= 0 else self.missing)
            ),
            **{key: self.levels[key][block[key]].tolist() for key in _CODED},
        }
        head, tail = self.record_open, self.record_close + "\n"
        for row in zip(*(fields[col] for col in COLUMNS)):
            yield head + ",".join(row) + tail


_CSV = _LineFormat(
    key=dict.fromkeys(COLUMNS, ""),
    quote="",
    missing="",
    record_open="",
    record_close="",
    levels={
        key: np.array([_csv_field(text) for text in texts], dtype=object)
        for key, texts in _TEXT_LEVELS.items()
    },
)
_JSON = _LineFormat(
    key={col: f'"{col}":' for col in COLUMNS},
    quote='"',
    missing="null",
    record_open="{",
    record_close="}",
    levels={
        key: np.array(
            [
                f'"{key}":'
                + (_json_factors(text) if key == "factors" else json.dumps(text, ensure_ascii=False))
                for text in texts
            ],
            dtype=object,
        )
        for key, texts in _TEXT_LEVELS.items()
    },
)
_DEFAULT_CHUNK_ROWS = 100_000


def _blocks(n: int, seed: int, scenario: Scenario | None, chunk_rows: int) -> Iterator[_Block]:
    """The block stream behind every public entry point, validated up front."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    return _rechunk(_iter_blocks(_check_n(n), seed, scenario or default_scenario()), chunk_rows)


# --- public API -------------------------------------------------------------


def iter_response_chunks(
    n: int,
    *,
    seed: int = 42,
    scenario: Scenario | None = None,
    chunk_rows: int = _DEFAULT_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """The rows of :func:`generate_responses` as DataFrames of ``chunk_rows`` rows.

    Only about one chunk plus one week is held in memory, so millions of rows
    can be streamed into files or a database.
    """
    widths = _Widths(n)
    return (_frame(block, widths) for block in _blocks(n, seed, scenario, chunk_rows))


def generate_responses(
    n: int = 60_000, *, seed: int = 42, scenario: Scenario | None = None
) -> pd.DataFrame:
    """Exactly ``n`` responses in canonical column order, sorted by ``submitted_at``.

    ``submitted_at`` is a UTC-aware timestamp, ``lost_time_minutes`` a
    nullable ``Int64`` and the text columns ``str`` ("" when empty).  The same
    ``seed`` and scenario always give the same frame.
    """
    blocks = list(_blocks(n, seed, scenario, chunk_rows=max(n, 1)))
    return _frame(blocks[0] if blocks else _empty_block(), _Widths(n))


def _empty_block() -> _Block:
    keys = ("row", "seconds", "ticket_type", "ticket_no", "rating", "lost", *_CODED)
    return {key: np.zeros(0, dtype=np.int64) for key in keys}


def write_csv(
    path: str | Path,
    n: int,
    *,
    seed: int = 42,
    scenario: Scenario | None = None,
    chunk_rows: int = _DEFAULT_CHUNK_ROWS,
) -> Path:
    """Stream ``n`` responses to a canonical CSV file and return its path.

    UTF-8 without BOM, header row, ``\\n`` line ends, minimal RFC 4180
    quoting, ``;``-joined factors, ISO 8601 ``submitted_at`` with ``+00:00``
    and an empty cell for unanswered lost time.
    """
    header = ",".join(map(_csv_field, COLUMNS)) + "\n"
    return _write(Path(path), _blocks(n, seed, scenario, chunk_rows), _Widths(n), _CSV, header)


def write_jsonl(
    path: str | Path, n: int, *, seed: int = 42, scenario: Scenario | None = None
) -> Path:
    """Stream ``n`` responses as JSON lines (UTF-8, not ASCII-escaped).

    Same records as :func:`write_csv`; ``factors`` is a list of strings,
    ``rating`` an integer and unanswered ``lost_time_minutes`` is ``null``.
    """
    blocks = _blocks(n, seed, scenario, _DEFAULT_CHUNK_ROWS)
    return _write(Path(path), blocks, _Widths(n), _JSON, header="")


def _write(
    path: Path, blocks: Iterator[_Block], widths: _Widths, fmt: _LineFormat, header: str
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(header)
        for block in blocks:
            fh.writelines(fmt.lines(block, widths))
    return path
