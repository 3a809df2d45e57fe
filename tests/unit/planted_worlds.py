"""Random worlds with planted effects, in memory: the attribution tests' and benchmark's data.

Each world has three dimensions of random sizes (country, service, channel, each
value's share drawn from a Dirichlet), a random weekly volume, four negative
factors offered to 0-6 ratings and one positive factor offered to 9-10 ratings.
An effect turns a share of its segment's respondents into detractors citing its
factor (more lost time too) from its onset, until its end if it has one; an
improvement turns them into promoters citing the positive factor.
Nothing is tuned to a seed: tests draw seeds and sizes, and assert rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monitor.analysis.aggregate import ResponseTable, Segment, _row_statistics

FIRST, PERIODS = 2900, 44
DIMENSIONS = {
    "country": ["DE", "FI", "FR", "SE", "NL", "PL"],
    "service": ["Laptop", "SAP", "Access", "Email", "Mobile"],
    "channel": ["Chat", "Phone", "Portal"],
}
FACTORS = {"Slow response": 0, "Lack of business knowledge": 1, "Long waiting time": 2, "Issue not resolved": 3,
           "Knowledgeable agent": 4}
NEGATIVE = ["Slow response", "Lack of business knowledge", "Long waiting time", "Issue not resolved"]
POSITIVE = "Knowledgeable agent"


@dataclass(frozen=True)
class Effect:
    segment: dict[str, str]
    share: float  # of the segment's respondents turned into detractors citing ``factor``
    factor: str
    onset: int  # period offset
    end: int | None = None  # period offset where it stops, if it does
    # Per-value multipliers of ``share`` along one dimension: an uneven dip.
    uneven: dict[str, dict[str, float]] = field(default_factory=dict)
    ramp: int = 0  # periods over which ``share`` grows from nothing to its full size (a slow decline)
    cite_only: bool = False  # ``share`` of the unhappy cite ``factor`` too; no rating changes
    improves: bool = False  # ``share`` turned into promoters citing ``factor`` (the positive one) instead

    @property
    def seg(self) -> Segment:
        return Segment.of(self.segment)


@dataclass
class World:
    table: ResponseTable
    effects: list[Effect]
    weights: dict[str, np.ndarray]


def world(seed: int, effects_for, *, per_period: int | None = None) -> World:
    """A world of ``seed``; ``effects_for(rng, labels, weights)`` plants its effects."""
    rng = np.random.default_rng(seed)
    per_period = per_period or int(rng.integers(500, 900))
    labels = {name: values[: int(rng.integers(max(3, len(values) - 2), len(values) + 1))]
              for name, values in DIMENSIONS.items()}
    weights = {name: rng.dirichlet(np.full(len(values), 4.0)) for name, values in labels.items()}
    rows = per_period * PERIODS
    periods = np.repeat(np.arange(FIRST, FIRST + PERIODS), per_period)
    codes = {name: rng.choice(len(values), rows, p=weights[name]) for name, values in labels.items()}
    rating = rng.choice([10, 9, 8, 7, 5, 3], rows, p=[0.3, 0.25, 0.15, 0.15, 0.1, 0.05]).astype(float)
    lost = np.where(rng.random(rows) < 0.5, rng.lognormal(3.0, 1.0, rows), np.nan)
    # Negative factors are offered to 0-6, the positive one to 9-10.
    low, high = rating <= 6, rating >= 9
    mask = np.where(low & (rng.random(rows) < 0.3), 1 << rng.integers(0, len(NEGATIVE), rows), 0)
    mask |= np.where(high & (rng.random(rows) < 0.25), 1 << FACTORS[POSITIVE], 0)
    effects = effects_for(rng, labels, weights)
    for effect in effects:
        inside = periods >= FIRST + effect.onset
        if effect.end is not None:
            inside &= periods < FIRST + effect.end
        share = np.full(rows, effect.share)
        if effect.ramp:
            share *= np.clip((periods - FIRST - effect.onset + 1) / effect.ramp, 0.0, 1.0)
        for name, value in effect.segment.items():
            inside &= codes[name] == labels[name].index(value)
        for name, factors in effect.uneven.items():
            for value, factor in factors.items():
                share[codes[name] == labels[name].index(value)] *= factor
        hit = inside & (rng.random(rows) < share)
        if effect.cite_only:
            mask[hit & low] |= 1 << FACTORS[effect.factor]
            continue
        if effect.improves:
            rating[hit] = rng.choice([9.0, 10.0], int(hit.sum()))
            lost[hit] = rng.lognormal(2.0, 1.0, int(hit.sum()))
            mask[hit] = 1 << FACTORS[effect.factor]
            continue
        rating[hit] = rng.choice([0.0, 2.0, 4.0, 6.0], int(hit.sum()))
        lost[hit] = rng.lognormal(4.3, 0.6, int(hit.sum()))
        mask[hit] = (mask[hit] & ~(1 << FACTORS[POSITIVE])) | (1 << FACTORS[effect.factor])
    stats, names = _row_statistics(rating, lost, mask, FACTORS)
    table = ResponseTable(
        period="week", periods=periods, stats=stats, stat_names=names, codes=codes, labels=labels,
        first_period=FIRST, last_period=FIRST + PERIODS - 1,
    )
    return World(table, effects, weights)


def large_values(rng: np.random.Generator, labels: dict, weights: dict, names: tuple[str, ...]) -> dict[str, str]:
    """One value per dimension, among each dimension's larger half (so the segment is testable)."""
    chosen = {}
    for name in names:
        order = np.argsort(-weights[name])[: max(2, len(labels[name]) // 2)]
        chosen[name] = labels[name][int(rng.choice(order))]
    return chosen
