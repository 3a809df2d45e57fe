"""A family of random survey worlds with planted, known effects: benchmarks nobody can tune to.

:mod:`monitor.dev.synthetic` fabricates ONE story (the demo). A detector tuned on it
learns that story: its six dimensions, its Finland x SAP cell, its go-live in
September. Here every seed draws a new world and a new story, so the only way to
score well over hundreds of seeds is to be right in general (issue 11 item 1).

What a seed draws (:func:`draw_scenario`):

* **The world.** 3-8 dimensions, always ``assignment_group`` plus a sample of
  country (with ``location`` nested in it), service, channel, department,
  business_unit, priority, language; 2-40 values each with Zipf-like sizes (some
  tiny) and a small Happiness offset per value; 1-3 years of weeks; a total
  volume of 150-3000 responses a week with weekday, Christmas/New Year, summer,
  public-holiday (about 1/5 of a day's volume) and growth patterns.
* **The transition.** A go-live anywhere from week 1 to the end, sometimes 1-3
  weeks after the first response (surveys introduced with the transition). At
  go-live in-house assignment groups end and MSP groups start (nested in services
  or crossed with them), some services are renamed; other values start (a country
  onboarded, a new channel) or stop (a site closed) at other weeks.
* **Responses.** Ratings 0-10 whose expected Happiness (% 9-10 minus % 0-6) is the
  baseline plus the offsets plus the effects; factors offered by rating band as
  survey tools do (positive ones to 9-10, neutral ones to 7-8, negative ones to
  0-6) of which each respondent picks 0-3; lost time lognormal by band.
* **0-6 planted effects** (:class:`EffectClass`): generic dips (temporary or
  lasting), dips localised in one value, a pair, a triple (three dimensions),
  a generic and a localised dip starting the same week with different recoveries,
  gradual declines over 6-30 weeks, improvements with a positive factor rising,
  variance-only changes (same Happiness, more extreme ratings) and volume drops
  without any change of experience. Every dip raises one negative factor and lost
  time in its segment. Sizes run from below the 10-point minimum effect to 35.

The ground truth of each effect (:class:`PlantedEffect`) holds its class, segment,
onset, end of ramp, recovery, size, factor, its respondents (response ids, so a
segment with exactly the same respondents, e.g. an assignment group nested in a
country x service cell, is recognised as the same) and its responses per week.
:meth:`Scenario.same_respondents` does that comparison for a finding's segment.

:func:`demo_scenario` wraps :func:`monitor.dev.synthetic.default_scenario` the same
way, so the fixed demo is one case among the random ones, not the benchmark.
How findings are scored against this truth is in ``benchmarks/scenarios.py``.

A test draws one world with exactly one effect of a class::

    scenario = draw_scenario(7, classes=[EffectClass.PAIR], n_effects=1)
    effect = scenario.effects[0]
    scenario.write_csv(tmp_path / "responses.csv")
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.ingest.readers import CANONICAL_COLUMNS
from monitor.periods import EPOCH
from monitor.scope import segment_filter_text

WEEK = timedelta(weeks=1)
FACTOR_SEPARATOR = ";"

# Ten factors, as many as the demo: every factor is a metric series per segment, and
# the analysis time grows with them.
POSITIVE_FACTORS: tuple[str, ...] = ("Quick resolution", "Friendly service", "Knowledgeable agent")
NEUTRAL_FACTORS: tuple[str, ...] = ("Took a while", "Had to follow up")
NEGATIVE_FACTORS: tuple[str, ...] = (
    "Lack of business knowledge",
    "Slow response",
    "Had to repeat myself",
    "Not resolved",
    "Long waiting time",
)
FACTORS: tuple[str, ...] = POSITIVE_FACTORS + NEUTRAL_FACTORS + NEGATIVE_FACTORS
# Which factors the survey offers to each rating band: 0-6, 7-8, 9-10.
_OFFERED = (NEGATIVE_FACTORS, NEUTRAL_FACTORS, POSITIVE_FACTORS)
_PICKS = np.array([0.25, 0.40, 0.22, 0.13])  # P(0..3 factors picked)

HAPPINESS_MIN_EFFECT = 10.0  # detectors.metrics.Happiness.min_effect; restated to keep monitor.dev light
# The benchmark's headline rule (benchmarks/scenarios.py HEADLINE_PER_WEEK), restated: triples
# drawn where respondents are keep to combinations this large when there are any.
HEADLINE_PER_WEEK = 60.0
_MAX_PASSIVE_SHARE = 0.22
_DETRACTOR_RATINGS = np.array([0.10, 0.04, 0.06, 0.08, 0.10, 0.25, 0.37])  # P(0..6 | detractor)
_LOST_TIME_MEDIAN = np.array([70.0, 35.0, 20.0])  # minutes, by band
_LOST_TIME_MISSING = np.array([0.22, 0.32, 0.36])
_LOST_TIME_SIGMA = 1.1
_WEEKDAY = np.array([1.15, 1.10, 1.05, 1.00, 0.85, 0.08, 0.05])  # Monday first


class EffectClass(StrEnum):
    GENERIC = "generic"  # everyone: temporary (recovers after k weeks) or lasting
    LOCALIZED = "localized"  # one value of one dimension
    PAIR = "pair"  # one value in each of two dimensions
    TRIPLE = "triple"  # three dimensions
    CO_STARTING = "co_starting"  # a generic and a localised dip from the same week, different recoveries
    GRADUAL = "gradual"  # linear decline over 6-30 weeks, then lasting
    IMPROVEMENT = "improvement"  # Happiness up, a positive factor rising
    VARIANCE = "variance"  # same Happiness, more extreme ratings
    VOLUME_DROP = "volume_drop"  # fewer responses, same experience


DIPS = frozenset({EffectClass.GENERIC, EffectClass.LOCALIZED, EffectClass.PAIR, EffectClass.TRIPLE,
                  EffectClass.CO_STARTING, EffectClass.GRADUAL})


@dataclass(frozen=True)
class Level:
    """One value of a dimension: its share, where it nests, when it exists."""

    value: str
    weight: float
    parent: str | None = None  # value of the parent dimension it belongs to
    first_week: int = 0
    end_week: int | None = None  # exclusive; None: to the end of the data
    offset: float = 0.0  # Happiness points relative to the baseline

    def active(self, week: int) -> bool:
        return self.first_week <= week and (self.end_week is None or week < self.end_week)


@dataclass(frozen=True)
class Dimension:
    name: str
    levels: tuple[Level, ...]
    parent: str | None = None  # values nest in this dimension's values

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(level.value for level in self.levels)


@dataclass(frozen=True)
class PlantedEffect:
    """One planted cause and what it should look like.

    ``size`` is in Happiness points (negative for a dip) except for a volume drop
    (fraction of the segment's responses lost) and a variance change (fraction of
    the passives turned into promoters and detractors, Happiness unchanged).
    Strength is 0 before ``onset``; it ramps linearly to full at ``ramp_end``
    (gradual) or is full at once; it fades linearly from ``fade_from`` to 0 at
    ``recovery``. ``recovery`` None means it lasts to the end of the data.
    ``group`` links the two parts of a co-starting pair (``part`` "generic" and
    "local").
    """

    cls: EffectClass
    segment: dict[str, str]
    onset: date
    size: float
    factor: str | None = None
    lost_time_factor: float = 1.0
    ramp_end: date | None = None
    fade_from: date | None = None
    recovery: date | None = None
    group: int | None = None
    part: str = ""
    # Filled in from the generated data.
    per_week: float = 0.0  # responses a week in the segment after onset (up to 8 weeks)
    respondents: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @property
    def is_dip(self) -> bool:
        return self.cls in DIPS

    @property
    def label(self) -> str:
        return segment_label(self.segment)

    def intensity(self, days: np.ndarray, start: date) -> np.ndarray:
        """Strength 0..1 on each day (days counted from ``start``)."""
        onset = (self.onset - start).days
        out = np.where(days >= onset, 1.0, 0.0)
        if self.ramp_end is not None:
            ramp = max((self.ramp_end - self.onset).days, 1)
            out = np.clip((days - onset) / ramp, 0.0, 1.0) * (days >= onset)
        if self.recovery is not None:
            end = (self.recovery - start).days
            fade = (self.fade_from - start).days if self.fade_from is not None else end
            tail = np.clip((end - days) / max(end - fade, 1), 0.0, 1.0)
            out = np.where(days >= fade, out * tail, out)
        return out

    def window(self, end: date) -> tuple[date, date]:
        """Where its respondents are counted: onset to recovery (or the end of the data)."""
        return self.onset, min(self.recovery or end, end)


@dataclass(frozen=True, eq=False)
class Scenario:
    """One drawn world: its calendar, dimensions, planted effects and responses."""

    seed: int | str
    start: date  # a Monday
    weeks: int
    go_live: date
    dimensions: tuple[Dimension, ...]
    effects: tuple[PlantedEffect, ...]
    responses: pd.DataFrame = field(repr=False)  # canonical columns + one per dimension
    day: np.ndarray = field(repr=False)  # day of each response, from start
    base_volume: float = 0.0  # responses in an ordinary week

    @property
    def end(self) -> date:
        """First day after the data."""
        return self.start + self.weeks * WEEK

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def dimension(self, name: str) -> Dimension:
        return next(d for d in self.dimensions if d.name == name)

    def mask(self, segment: dict[str, str], first: date | None = None, end: date | None = None) -> np.ndarray:
        """Responses in ``segment`` ({} is everyone) submitted in [first, end)."""
        out = np.ones(len(self.responses), dtype=bool)
        for dim, value in segment.items():
            if dim not in self.responses:
                return np.zeros(len(self.responses), dtype=bool)
            out &= self.responses[dim].to_numpy() == value
        if first is not None:
            out &= self.day >= (first - self.start).days
        if end is not None:
            out &= self.day < (end - self.start).days
        return out

    def same_respondents(self, segment: dict[str, str], effect: PlantedEffect) -> bool:
        """Does ``segment`` hold exactly the effect's respondents over the effect's window?"""
        first, end = effect.window(self.end)
        return bool(np.array_equal(self.mask(segment, first, end), self.mask(effect.segment, first, end)))

    def overlaps(self, segment: dict[str, str], effect: PlantedEffect) -> bool:
        """Do ``segment`` and the effect's segment share respondents in the effect's window?"""
        first, end = effect.window(self.end)
        window = self.mask({}, first, end)
        return bool((self.mask(segment) & self.mask(effect.segment) & window).any())

    def ended_values(self) -> dict[str, dict[str, date]]:
        """Values that stop before the end of the data (their own end or their parent's)."""
        ends: dict[str, dict[str, int]] = {}
        for dim in self.dimensions:
            for level in dim.levels:
                end = level.end_week
                if dim.parent is not None and level.parent is not None:
                    parent = next(p for p in self.dimension(dim.parent).levels if p.value == level.parent)
                    if parent.end_week is not None:
                        end = parent.end_week if end is None else min(end, parent.end_week)
                if end is not None and end < self.weeks:
                    ends.setdefault(dim.name, {})[level.value] = end
        return {d: {v: self.start + w * WEEK for v, w in values.items()} for d, values in ends.items()}

    def weekly_counts(self) -> np.ndarray:
        return np.bincount(self.day // 7, minlength=self.weeks)

    def write_csv(self, path: str | Path) -> Path:
        """The responses as a canonical CSV file (the import format of the README)."""
        path = Path(path)
        self.responses.to_csv(path, index=False, lineterminator="\n")
        return path

    def describe(self) -> str:
        dims = ", ".join(f"{d.name}({len(d.levels)})" for d in self.dimensions)
        return (f"seed {self.seed}: {self.weeks} weeks from {self.start}, go-live {self.go_live}, "
                f"{len(self.responses):,} responses (~{self.base_volume:.0f}/week); {dims}; "
                f"{len(self.effects)} effects")


def segment_label(segment: dict[str, str]) -> str:
    return segment_filter_text(dict(sorted(segment.items())))


# --- the world ------------------------------------------------------------------

_COUNTRIES = ("DE", "FI", "FR", "NL", "PL", "ES", "SE", "IT", "UK", "IE", "DK", "NO", "BE", "AT", "CH", "PT",
              "CZ", "HU", "RO", "GR", "EE", "LV", "LT", "SK", "SI", "HR", "BG", "LU", "IS", "MT", "CY", "US",
              "CA", "MX", "BR", "IN", "CN", "JP", "SG", "AU")
_SERVICES = ("SAP", "Email", "Laptop", "Network", "Access", "Printing", "Mobile", "Telephony", "CRM",
             "Collaboration", "Storage", "Workplace", "HR portal", "Payroll", "Finance apps", "Intranet",
             "Databases", "Monitoring", "Security", "Facilities")
_RENAMES = {"Email": "Email & Calendar", "Laptop": "End-user devices", "Network": "Connectivity",
            "Access": "Identity & Access", "Printing": "Print services", "Telephony": "Voice"}
_CHANNELS = ("Phone", "Portal", "Chat", "Email", "Walk-in", "Teams")
_DEPARTMENTS = ("Finance", "HR", "Sales", "Engineering", "Operations", "Legal", "Marketing", "R&D", "Logistics",
                "Procurement", "Customer care", "IT")
_BUSINESS_UNITS = ("Retail", "Wholesale", "Corporate", "Manufacturing", "Services", "Energy", "Health", "Public")
_PRIORITIES = ("P1", "P2", "P3", "P4")
_LANGUAGES = ("English", "German", "French", "Spanish", "Finnish", "Polish", "Dutch", "Swedish", "Italian")
_OPTIONAL = ("country", "service", "channel", "department", "business_unit", "priority", "language")


def _zipf(rng: np.random.Generator, n: int) -> np.ndarray:
    """Skewed shares: a few big values, a tail of small (sometimes tiny) ones."""
    s = rng.uniform(0.6, 1.6)
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _offsets(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.round(rng.normal(0.0, 6.0, n).clip(-15, 15), 1)


def _flat(rng: np.random.Generator, name: str, names: Sequence[str], low: int, high: int) -> Dimension:
    n = int(rng.integers(low, min(high, len(names)) + 1))
    picked = rng.permutation(len(names))[:n]
    shares, offsets = _zipf(rng, n), _offsets(rng, n)
    levels = tuple(Level(names[i], float(w), offset=float(o)) for i, w, o in zip(picked, shares, offsets))
    return Dimension(name, levels)


def _draw_world(rng: np.random.Generator, weeks: int, go_live: int) -> tuple[Dimension, ...]:
    n_dims = int(rng.integers(3, 9))
    optional = [str(name) for name in rng.permutation(_OPTIONAL)]
    chosen: list[str] = []
    for name in optional:
        if len(chosen) >= n_dims - 1:
            break
        if name == "country" and len(chosen) <= n_dims - 3 and rng.random() < 0.7:
            chosen += ["country", "location"]
        else:
            chosen.append(name)
    dims: dict[str, Dimension] = {}
    for name in chosen:
        if name == "country":
            dims[name] = _flat(rng, name, _COUNTRIES, 2, 40)
        elif name == "location":
            dims[name] = _locations(rng, dims["country"])
        elif name == "service":
            dims[name] = _flat(rng, name, _SERVICES, 2, 20)
        elif name == "channel":
            dims[name] = _flat(rng, name, _CHANNELS, 2, 6)
        elif name == "department":
            dims[name] = _flat(rng, name, _DEPARTMENTS, 2, 12)
        elif name == "business_unit":
            dims[name] = _flat(rng, name, _BUSINESS_UNITS, 2, 8)
        elif name == "priority":
            dims[name] = _flat(rng, name, _PRIORITIES, 2, 4)
        elif name == "language":
            dims[name] = _flat(rng, name, _LANGUAGES, 2, 9)
    if "service" in dims:
        dims["service"] = _rename_services(rng, dims["service"], go_live)
    dims["assignment_group"] = _groups(rng, dims.get("service"), go_live)
    _starts_and_stops(rng, dims, weeks, go_live)
    return tuple(dims.values())


def _locations(rng: np.random.Generator, country: Dimension) -> Dimension:
    """Offices nested in countries; at most 40 in all, so small countries get one."""
    extra = 40 - len(country.levels)
    levels = []
    for level in country.levels:
        k = 1 + min(extra, int(rng.integers(0, 4)))
        extra -= k - 1
        shares = _zipf(rng, k) * level.weight
        for i in range(k):
            levels.append(Level(f"{level.value}-Site{i + 1}", float(shares[i]), parent=level.value,
                                offset=float(_offsets(rng, 1)[0] / 2)))
    return Dimension("location", tuple(levels), parent="country")


def _rename_services(rng: np.random.Generator, service: Dimension, go_live: int) -> Dimension:
    """Some services get a new name at go-live: the old value ends, the new one starts."""
    levels = []
    for level in service.levels:
        if go_live > 0 and rng.random() < 0.3:
            new = _RENAMES.get(level.value, f"{level.value} (managed)")
            levels.append(replace(level, end_week=go_live))
            levels.append(replace(level, value=new, first_week=go_live))
        else:
            levels.append(level)
    return Dimension("service", tuple(levels))


def _groups(rng: np.random.Generator, service: Dimension | None, go_live: int) -> Dimension:
    """In-house groups until go-live, MSP groups from it; nested in services or crossed with them."""
    levels: list[Level] = []
    if service is not None and rng.random() < 0.6 and len(service.levels) <= 16:
        # Nested: each service's tickets go to its own groups (a renamed service's old
        # name has the in-house groups, the new name the MSP ones).
        for level in service.levels:
            eras = []
            if level.first_week < go_live and go_live > 0:
                eras.append(("IH", 0, go_live, int(rng.integers(1, 3))))
            if level.end_week is None:
                eras.append(("MSP", go_live, None, int(rng.integers(1, 3))))
            for tag, first, end, k in eras:
                shares = _zipf(rng, k)
                for i in range(k):
                    name = f"{tag}-{level.value}-{'L1' if i == 0 else 'L2'}"
                    levels.append(Level(name, float(shares[i]), parent=level.value, first_week=first, end_week=end,
                                        offset=float(_offsets(rng, 1)[0])))
        return Dimension("assignment_group", _centred(_at_most(levels, 40)), parent="service")
    for tag, first, end, k in (("IH", 0, go_live, int(rng.integers(2, 9))), ("MSP", go_live, None, int(rng.integers(2, 11)))):
        if tag == "IH" and go_live == 0:
            continue
        shares = _zipf(rng, k)
        for i in range(k):
            levels.append(Level(f"{tag}-Team{i + 1}", float(shares[i]), first_week=first, end_week=end,
                                offset=float(_offsets(rng, 1)[0])))
    return Dimension("assignment_group", _centred(levels))


def _at_most(levels: list[Level], limit: int) -> list[Level]:
    """Fold second-line groups into their first line, smallest services first, until ``limit`` remain
    (after the draws, so worlds that are within the limit do not change)."""
    levels = list(levels)
    for level in sorted((lv for lv in levels if lv.value.endswith("-L2")), key=lambda lv: lv.weight):
        if len(levels) <= limit:
            break
        first = next(i for i, lv in enumerate(levels) if lv.value == level.value[:-3] + "-L1")
        levels[first] = replace(levels[first], weight=levels[first].weight + level.weight)
        levels.remove(level)
    return levels


def _centred(levels: list[Level]) -> tuple[Level, ...]:
    """Offsets with a zero weighted mean per parent and era.

    Groups differ, but the MSP's groups as a whole are as good as the in-house ones
    they replace: a shift of everyone at go-live would be an effect nobody planted.
    """
    out = list(levels)
    for key in {(lv.parent, lv.first_week) for lv in levels}:
        members = [i for i, lv in enumerate(levels) if (lv.parent, lv.first_week) == key]
        mean = sum(levels[i].offset * levels[i].weight for i in members) / sum(levels[i].weight for i in members)
        for i in members:
            out[i] = replace(levels[i], offset=round(levels[i].offset - mean, 2))
    return tuple(out)


def _starts_and_stops(rng: np.random.Generator, dims: dict[str, Dimension], weeks: int, go_live: int) -> None:
    """A value onboarded late and/or one closed early, in a dimension without eras."""
    for kind in ("start", "stop"):
        if rng.random() > 0.5:
            continue
        candidates = [d for d in dims.values() if d.name in ("country", "location", "channel", "department")
                      and len(d.levels) >= 3]
        if not candidates:
            return
        dim = candidates[int(rng.integers(len(candidates)))]
        i = int(rng.integers(1, len(dim.levels)))  # never the biggest value
        level = dim.levels[i]
        if dim.parent is not None and sum(lv.parent == level.parent for lv in dim.levels) < 2:
            continue  # the only office of its country
        # Offset 0: the mix change when it comes or goes moves no one's Happiness.
        level = replace(level, offset=0.0)
        if kind == "start":
            new = replace(level, first_week=int(rng.integers(weeks // 4, 3 * weeks // 4)))
        else:
            new = replace(level, end_week=int(rng.integers(weeks // 3, weeks - 4)))
        dims[dim.name] = replace(dim, levels=dim.levels[:i] + (new,) + dim.levels[i + 1:])


# --- calendar and rows ------------------------------------------------------------------


def _day_weights(rng: np.random.Generator, start: date, weeks: int) -> np.ndarray:
    days = [start + timedelta(days=i) for i in range(weeks * 7)]
    holidays: set[date] = set()
    for year in {d.year for d in days}:
        # A few public holidays a year (Easter, May Day, national days...), at random.
        for _ in range(int(rng.integers(3, 7))):
            holidays.add(date(year, 1, 1) + timedelta(days=int(rng.integers(60, 330))))
    growth = rng.uniform(-0.05, 0.15)
    weights = np.empty(len(days))
    for i, d in enumerate(days):
        md = (d.month, d.day)
        if md in {(12, 24), (12, 25), (12, 26), (12, 31), (1, 1)} or d in holidays:
            season = 0.2
        elif md >= (12, 22) or md <= (1, 6):
            season = 0.5
        elif d.month == 7:
            season = 0.6
        elif d.month == 8 and d.day <= 15:
            season = 0.75
        else:
            season = 1.0
        weights[i] = _WEEKDAY[d.weekday()] * season * (1.0 + growth * i / 365.0)
    return weights


def _draw_codes(rng: np.random.Generator, dim: Dimension, week: np.ndarray, parent: np.ndarray | None,
                parent_dim: Dimension | None) -> np.ndarray:
    """Level index per row, among the levels active in its week (and in its parent value)."""
    changes = sorted({0, *(lv.first_week for lv in dim.levels), *(lv.end_week or 0 for lv in dim.levels)})
    epoch = np.searchsorted(changes, week, side="right") - 1
    codes = np.full(len(week), -1, dtype=np.int64)
    parents = [None] if parent is None else list(range(len(parent_dim.levels)))  # type: ignore[union-attr]
    for e, first in enumerate(changes):
        for p in parents:
            rows = np.flatnonzero((epoch == e) & (True if p is None else parent == p))
            if not len(rows):
                continue
            w = np.array([lv.weight if lv.active(first) and (p is None or lv.parent == parent_dim.levels[p].value)
                          else 0.0 for lv in dim.levels])
            if w.sum() == 0:  # every child of this parent closed: keep its biggest one alive
                w = np.array([lv.weight if p is None or lv.parent == parent_dim.levels[p].value else 0.0
                              for lv in dim.levels])
            cum = np.cumsum(w / w.sum())
            cum[-1] = 1.0
            codes[rows] = np.searchsorted(cum, rng.random(len(rows)), side="right")
    return codes


def _draw_rows(rng: np.random.Generator, dims: tuple[Dimension, ...], day_weight: np.ndarray,
               volume: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ordinary_week = _WEEKDAY.sum()
    counts = rng.poisson(volume * day_weight / ordinary_week)
    day = np.repeat(np.arange(len(day_weight)), counts)
    codes: dict[str, np.ndarray] = {}
    for dim in dims:
        parent_dim = next((d for d in dims if d.name == dim.parent), None)
        codes[dim.name] = _draw_codes(rng, dim, day // 7, codes.get(dim.parent) if dim.parent else None, parent_dim)
    return day, codes


# --- effects ------------------------------------------------------------------


def _value_mask(dims: dict[str, Dimension], codes: dict[str, np.ndarray], segment: dict[str, str]) -> np.ndarray:
    n = len(next(iter(codes.values())))
    out = np.ones(n, dtype=bool)
    for name, value in segment.items():
        out &= codes[name] == dims[name].values.index(value)
    return out


def _related(dims: dict[str, Dimension], a: str, b: str) -> bool:
    """Is one dimension nested in the other (country > location, service > group)?"""
    return dims[a].parent == b or dims[b].parent == a


class _Planner:
    """Draws effects one by one on the world's rows (dimension codes already drawn)."""

    def __init__(self, rng: np.random.Generator, dims: tuple[Dimension, ...], day: np.ndarray,
                 codes: dict[str, np.ndarray], start: date, weeks: int, go_live: int) -> None:
        self.rng, self.day, self.codes, self.start, self.weeks, self.go_live = rng, day, codes, start, weeks, go_live
        self.dims = {d.name: d for d in dims}
        self.onsets: list[int] = []
        self.groups = 0

    def onset(self, *, anchored: bool = False, room_after: int = 6) -> int | None:
        """An onset week at least 4 weeks into the data and 6 weeks from other effects."""
        if anchored and 4 <= self.go_live <= self.weeks - room_after and self.rng.random() < 0.5:
            if all(abs(self.go_live - o) >= 6 for o in self.onsets):
                return self.go_live
        for _ in range(50):
            week = int(self.rng.integers(4, self.weeks - room_after + 1))
            if all(abs(week - o) >= 6 for o in self.onsets):
                return week
        return None

    def segment(self, n_dims: int, week: int, last_week: int, *, by_size: bool = False) -> dict[str, str] | None:
        """A segment of ``n_dims`` unrelated dimensions, alive from ``week`` to ``last_week``,
        picked with probability growing as the square root of its size (small ones too),
        or ``by_size`` as its size (where a random respondent is: the larger combinations
        a problem in two or three dimensions is likely to hit; a triple among those with
        ``HEADLINE_PER_WEEK`` responses a week, when there are any)."""
        names = list(self.dims)
        for _ in range(20):
            chosen = [str(n) for n in self.rng.permutation(names)[:n_dims]]
            if len(chosen) < n_dims or any(_related(self.dims, a, b) for a in chosen for b in chosen if a < b):
                continue
            rows = (self.day // 7 >= week) & (self.day // 7 < min(week + 4, self.weeks))
            if not rows.any():
                return None
            keys = np.stack([self.codes[n][rows] for n in chosen], axis=1)
            combos, counts = np.unique(keys, axis=0, return_counts=True)
            per_week = counts / 4.0
            total = rows.sum() / 4.0
            ok = (per_week >= 3.0) & (per_week <= 0.6 * total)
            # The segment must exist before onset too: a dip needs a "before".
            early = (self.day // 7 >= max(week - 8, 0)) & (self.day // 7 < week)
            early_keys = {tuple(k) for k in np.stack([self.codes[n][early] for n in chosen], axis=1).tolist()}
            ok &= np.array([tuple(c) in early_keys for c in combos.tolist()])
            ok &= np.array([self._alive(chosen, combo, last_week) for combo in combos])
            if not ok.any():
                continue
            weights = (counts if by_size else np.sqrt(counts)) * ok
            headline = ok & (per_week >= HEADLINE_PER_WEEK)
            if by_size and n_dims == 3 and headline.any():
                # Few three-value cells are this large: without it none would be, and the
                # three-dimension target could not be judged. Same single draw below.
                weights = weights * headline
            pick = combos[self.rng.choice(len(combos), p=weights / weights.sum())]
            return {n: self.dims[n].values[int(c)] for n, c in zip(chosen, pick)}
        return None

    def _alive(self, names: list[str], combo: np.ndarray, last_week: int) -> bool:
        for name, code in zip(names, combo):
            level = self.dims[name].levels[int(code)]
            if level.end_week is not None and level.end_week <= last_week:
                return False
            if level.parent is not None:
                parent = next(p for p in self.dims[self.dims[name].parent].levels if p.value == level.parent)  # type: ignore[index]
                if parent.end_week is not None and parent.end_week <= last_week:
                    return False
        return True

    def date(self, week: int) -> date:
        return self.start + week * WEEK

    def dip_size(self) -> float:
        return -round(float(self.rng.uniform(5.0, 35.0)), 1)

    def factor(self) -> str:
        return str(self.rng.choice(NEGATIVE_FACTORS))

    def lost_time(self) -> float:
        return round(float(1.0 + self.rng.uniform(0.25, 0.9)), 2)

    def recovery(self, week: int, *, lasting_p: float, full: tuple[int, int] = (2, 10)) -> tuple[date | None, date | None]:
        """(fade_from, recovery): full strength for k weeks, then back to 0 over 0-3 weeks."""
        if self.rng.random() < lasting_p:
            return None, None
        k = int(self.rng.integers(*full))
        fade = int(self.rng.integers(0, 4))
        if week + k + fade >= self.weeks - 1:
            return None, None
        return self.date(week + k), self.date(week + k + fade)

    def draw(self, cls: EffectClass) -> list[PlantedEffect]:
        rng = self.rng
        if cls is EffectClass.GENERIC:
            week = self.onset(anchored=True)
            if week is None:
                return []
            fade, rec = self.recovery(week, lasting_p=0.4)
            self.onsets.append(week)
            return [PlantedEffect(cls, {}, self.date(week), round(float(rng.uniform(-30.0, -5.0)), 1), self.factor(),
                                  self.lost_time(), fade_from=fade, recovery=rec)]
        if cls in (EffectClass.LOCALIZED, EffectClass.PAIR, EffectClass.TRIPLE):
            n = {EffectClass.LOCALIZED: 1, EffectClass.PAIR: 2, EffectClass.TRIPLE: 3}[cls]
            week = self.onset(anchored=rng.random() < 0.3)
            if week is None:
                return []
            fade, rec = self.recovery(week, lasting_p=0.6)
            last = self.weeks if rec is None else (rec - self.start).days // 7
            # Half of the pairs and triples where respondents are: drawn like single
            # values, few would be large enough to judge the deeper search on.
            segment = self.segment(n, week, last, by_size=n > 1 and rng.random() < 0.5)
            if segment is None:
                return []
            self.onsets.append(week)
            return [PlantedEffect(cls, segment, self.date(week), self.dip_size(), self.factor(), self.lost_time(),
                                  fade_from=fade, recovery=rec)]
        if cls is EffectClass.CO_STARTING:
            week = self.onset(anchored=True, room_after=10)
            if week is None:
                return []
            k = int(rng.integers(2, 6))
            g_fade, g_rec = self.date(week + k), self.date(week + k + int(rng.integers(0, 3)))
            if rng.random() < 0.5 or week + k + 14 >= self.weeks - 1:
                l_fade = l_rec = None
            else:
                kl = k + int(rng.integers(5, 11))
                l_fade, l_rec = self.date(week + kl), self.date(week + kl + int(rng.integers(0, 3)))
            last = self.weeks if l_rec is None else (l_rec - self.start).days // 7
            segment = self.segment(int(rng.integers(1, 3)), week, last)
            if segment is None:
                return []
            self.onsets.append(week)
            self.groups += 1
            factors = rng.permutation(NEGATIVE_FACTORS)[:2]
            return [
                PlantedEffect(cls, {}, self.date(week), round(float(rng.uniform(-25.0, -8.0)), 1), str(factors[0]),
                              self.lost_time(), fade_from=g_fade, recovery=g_rec, group=self.groups, part="generic"),
                PlantedEffect(cls, segment, self.date(week), round(float(rng.uniform(-35.0, -12.0)), 1),
                              str(factors[1]), self.lost_time(), fade_from=l_fade, recovery=l_rec, group=self.groups,
                              part="local"),
            ]
        if cls is EffectClass.GRADUAL:
            ramp = int(rng.integers(6, 31))
            week = self.onset(room_after=min(ramp + 2, self.weeks - 6))
            if week is None or week + ramp > self.weeks - 2:
                return []
            segment = {} if rng.random() < 0.3 else self.segment(int(rng.integers(1, 3)), week, self.weeks)
            if segment is None:
                return []
            self.onsets.append(week)
            return [PlantedEffect(cls, segment, self.date(week), self.dip_size(), self.factor(), self.lost_time(),
                                  ramp_end=self.date(week + ramp))]
        if cls is EffectClass.IMPROVEMENT:
            week = self.onset()
            if week is None:
                return []
            segment = {} if rng.random() < 0.3 else self.segment(1, week, self.weeks)
            if segment is None:
                return []
            self.onsets.append(week)
            return [PlantedEffect(cls, segment, self.date(week), round(float(rng.uniform(8.0, 30.0)), 1),
                                  str(rng.choice(POSITIVE_FACTORS)), round(float(rng.uniform(0.6, 0.9)), 2))]
        if cls is EffectClass.VARIANCE:
            week = self.onset()
            if week is None:
                return []
            segment = {} if rng.random() < 0.4 else self.segment(1, week, self.weeks)
            if segment is None:
                return []
            self.onsets.append(week)
            return [PlantedEffect(cls, segment, self.date(week), round(float(rng.uniform(0.6, 0.9)), 2))]
        if cls is EffectClass.VOLUME_DROP:
            week = self.onset()
            if week is None:
                return []
            fade, rec = self.recovery(week, lasting_p=0.5, full=(6, 14))
            last = self.weeks if rec is None else (rec - self.start).days // 7
            segment = {} if rng.random() < 0.4 else self.segment(1, week, last)
            if segment is None:
                return []
            self.onsets.append(week)
            return [PlantedEffect(cls, segment, self.date(week), round(float(rng.uniform(0.5, 0.8)), 2),
                                  fade_from=fade, recovery=rec)]
        raise ValueError(f"unknown effect class {cls!r}")


# --- responses ------------------------------------------------------------------


def _ratings(rng: np.random.Generator, happiness: np.ndarray, extreme: np.ndarray) -> np.ndarray:
    """Ratings 0..10 with P(9-10) - P(0-6) = happiness / 100.

    ``extreme`` (0..1) turns that share of the passives into promoters and
    detractors in equal parts, which leaves Happiness unchanged.
    """
    h = np.clip(happiness / 100.0, -0.95, 0.95)
    passive = _MAX_PASSIVE_SHARE * (1.0 - h * h) * (1.0 - extreme)
    promoter = (1.0 - passive + h) / 2.0
    u, within = rng.random(len(h)), rng.random(len(h))
    high = (within < 0.55).astype(np.int64)
    detractor_cum = np.cumsum(_DETRACTOR_RATINGS / _DETRACTOR_RATINGS.sum())
    detractor_cum[-1] = 1.0
    return np.where(u < promoter, 9 + high,
                    np.where(u < promoter + passive, 7 + high,
                             np.searchsorted(detractor_cum, within, side="right"))).astype(np.int64)


def _factors(rng: np.random.Generator, band: np.ndarray, popularity: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """Each respondent picks 0-3 of the factors offered to their band, weighted by popularity x lift."""
    n = len(band)
    offered = np.zeros((3, len(FACTORS)), dtype=bool)
    for b, names in enumerate(_OFFERED):
        offered[b, [FACTORS.index(f) for f in names]] = True
    weights = np.where(offered[band], popularity[None, :] * lift, 0.0)
    gumbel = -np.log(-np.log(rng.random((n, len(FACTORS)))))
    score = np.where(weights > 0, np.log(np.where(weights > 0, weights, 1.0)) + gumbel, -np.inf)
    rank = np.argsort(np.argsort(-score, axis=1), axis=1)
    k = np.searchsorted(np.cumsum(_PICKS), rng.random(n), side="right")
    # A respondent hit by a problem names at least one factor more often than not.
    k = np.where((lift.max(axis=1) > 1.5) & (k == 0) & (rng.random(n) < 0.5), 1, k)
    chosen = (rank < k[:, None]) & (weights > 0)
    return chosen @ (1 << np.arange(len(FACTORS)))


def _factor_strings(masks: np.ndarray) -> np.ndarray:
    distinct, inverse = np.unique(masks, return_inverse=True)
    text = [FACTOR_SEPARATOR.join(f for bit, f in enumerate(FACTORS) if int(m) >> bit & 1) for m in distinct]
    return np.array(text, dtype=object)[inverse]


def _responses(rng: np.random.Generator, scenario_seed: int | str, dims: tuple[Dimension, ...], day: np.ndarray,
               codes: dict[str, np.ndarray], effects: Sequence[PlantedEffect], start: date,
               baseline: float, popularity: np.ndarray, lost_scale: float) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(day)
    by_name = {d.name: d for d in dims}
    happiness = np.full(n, baseline)
    for dim in dims:
        happiness += np.array([lv.offset for lv in dim.levels])[codes[dim.name]]
    extreme = np.zeros(n)
    lost = np.ones(n)
    lift = np.ones((n, len(FACTORS)))
    for effect in effects:
        strength = effect.intensity(day, start) * _value_mask(by_name, codes, effect.segment)
        if effect.cls is EffectClass.VARIANCE:
            extreme = np.maximum(extreme, effect.size * strength)
            continue
        if effect.cls is EffectClass.VOLUME_DROP:
            continue
        happiness += effect.size * strength
        lost *= 1.0 + (effect.lost_time_factor - 1.0) * strength
        if effect.factor:
            lift[:, FACTORS.index(effect.factor)] *= 1.0 + 5.0 * strength
    rating = _ratings(rng, happiness, extreme)
    band = np.searchsorted([6.5, 8.5], rating)
    factor_text = _factor_strings(_factors(rng, band, popularity, lift))
    minutes = _LOST_TIME_MEDIAN[band] * lost_scale * lost * np.exp(_LOST_TIME_SIGMA * rng.standard_normal(n))
    minutes = np.minimum(np.round(minutes / 5) * 5, 2400).astype(np.int64)
    answered = rng.random(n) >= _LOST_TIME_MISSING[band]
    seconds = (day.astype("int64") + (start - EPOCH).days) * 86_400 + rng.integers(7 * 3600, 19 * 3600, n)
    order = np.argsort(seconds, kind="stable")
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    ticket_type = np.array(["incident", "request", "other"], dtype=object)[
        np.searchsorted([0.6, 0.95], rng.random(n))]
    frame = pd.DataFrame({
        "response_id": [f"S{scenario_seed}-R{i:07d}" for i in range(n)],
        "submitted_at": np.char.add(stamps.astype(str), "+00:00").astype(object),
        "ticket_id": [f"T{i:08d}" for i in range(n)],
        "ticket_type": ticket_type,
        "rating": rating,
        "lost_time_minutes": pd.Series(minutes).astype("Int64").where(answered, pd.NA),
        "factors": factor_text,
        "comment": "",
        **{name: np.array(by_name[name].values, dtype=object)[codes[name]] for name in codes},
    })
    assert tuple(frame.columns[: len(CANONICAL_COLUMNS)]) == tuple(CANONICAL_COLUMNS)
    return frame.iloc[order].reset_index(drop=True), order


def _with_truth(effect: PlantedEffect, frame: pd.DataFrame, day: np.ndarray, start: date, end: date,
                by_name: dict[str, Dimension]) -> PlantedEffect:
    first, last = effect.window(end)
    rows = (day >= (first - start).days) & (day < (last - start).days)
    for name, value in effect.segment.items():
        rows &= frame[name].to_numpy() == value
    weeks = max(1, min(8, (last - first).days // 7))
    early = rows & (day < (first - start).days + 7 * weeks)
    return replace(effect, per_week=round(float(early.sum()) / weeks, 1),
                   respondents=frozenset(frame["response_id"].to_numpy()[rows].tolist()))


def draw_scenario(
    seed: int,
    *,
    classes: Iterable[EffectClass | str] | None = None,
    n_effects: int | None = None,
    volume: float | None = None,
    weeks: int | None = None,
) -> Scenario:
    """Draw one world and its planted effects from ``seed`` (same seed, same scenario).

    ``classes`` limits the effect classes drawn (default: all); ``n_effects`` fixes
    how many are planted (default: 0-6 at random; a co-starting pair counts as one
    and plants two effects). An effect that finds no room (onset spacing, a
    segment big enough) is skipped, so a scenario can hold fewer than asked.
    ``volume`` (ordinary responses a week) and ``weeks`` override the draws.
    """
    rng = np.random.default_rng([20_251_1, seed])
    pool = [EffectClass(c) for c in (classes or list(EffectClass))]
    n_weeks = int(weeks if weeks is not None else rng.integers(52, 157))
    start = date(2023, 1, 2) + int(rng.integers(0, 104)) * WEEK  # a Monday
    go_live = int(rng.integers(1, 4)) if rng.random() < 0.2 else int(rng.integers(4, n_weeks))
    base_volume = float(volume if volume is not None else math.exp(rng.uniform(math.log(150), math.log(3000))))
    dims = _draw_world(rng, n_weeks, go_live)
    day, codes = _draw_rows(rng, dims, _day_weights(rng, start, n_weeks), base_volume)
    planner = _Planner(rng, dims, day, codes, start, n_weeks, go_live)
    count = int(rng.integers(0, 7)) if n_effects is None else n_effects
    effects: list[PlantedEffect] = []
    for _ in range(count):
        effects += planner.draw(pool[int(rng.integers(len(pool)))])
    by_name = {d.name: d for d in dims}
    # Volume drops thin the rows of their segment (before ratings are drawn).
    keep = np.ones(len(day), dtype=bool)
    for effect in effects:
        if effect.cls is EffectClass.VOLUME_DROP:
            p = effect.size * effect.intensity(day, start) * _value_mask(by_name, codes, effect.segment)
            keep &= rng.random(len(day)) >= p
    day = day[keep]
    codes = {k: v[keep] for k, v in codes.items()}
    popularity = rng.uniform(0.3, 1.0, len(FACTORS))
    frame, order = _responses(rng, seed, dims, day, codes, effects, start, float(rng.uniform(15.0, 60.0)),
                              popularity, float(rng.uniform(0.6, 1.6)))
    day = day[order]
    end = start + n_weeks * WEEK
    truth = tuple(_with_truth(e, frame, day, start, end, by_name) for e in effects)
    return Scenario(seed, start, n_weeks, start + go_live * WEEK, dims, truth, frame, day, base_volume)


def demo_scenario(n: int = 60_000, seed: int = 42) -> Scenario:
    """The fixed demo (:func:`monitor.dev.synthetic.default_scenario`) as one case of the family.

    Its generic go-live dip, its Finland x SAP dip and its Chat improvement are the
    ground truth (the tiny noisy segment is noise, not an effect to find).
    """
    from monitor.dev import synthetic

    source = synthetic.default_scenario()
    frame = synthetic.generate_responses(n, seed=seed, scenario=source)
    stamps = frame["submitted_at"]
    day = ((stamps.dt.tz_convert("UTC").dt.normalize() - pd.Timestamp(source.start, tz="UTC")).dt.days).to_numpy()
    frame = frame.assign(
        submitted_at=stamps.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        factors=frame["factors"],
    )
    dims = tuple(Dimension(name, tuple(Level(v, 0.0) for v in source.levels(name))) for name in source.dimensions)
    classes = {"generic_dip": EffectClass.GENERIC, "improvement": EffectClass.IMPROVEMENT}
    effects = []
    for e in source.effects:
        if e.kind == "tiny_segment":
            continue
        cls = classes.get(e.kind) or (EffectClass.PAIR if len(e.segment) == 2 else EffectClass.LOCALIZED)
        effects.append(PlantedEffect(cls, dict(e.segment), e.start, e.happiness_delta, e.factor, e.lost_time_factor,
                                     fade_from=e.recovery_from, recovery=e.end))
    by_name = {d.name: d for d in dims}
    end = source.end
    truth = tuple(_with_truth(e, frame, day, source.start, end, by_name) for e in effects)
    return Scenario("demo", source.start, source.weeks, source.go_live, dims, truth, frame, day,
                    n / source.weeks)
