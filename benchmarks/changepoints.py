"""Change-point benchmark: real and TCPD-like series, and simulated weekly Happiness.

Usage (from the repo root): ``python benchmarks/changepoints.py [--quick] [--seed N]``

(a) Generic series, scored as TCPDBench scores them (van den Burg and Williams
2020): F1 (precision against the union of annotations, recall averaged over
annotators, margin 5, the start counted as a change) and segmentation cover.
  - real: the TCPD series shipped in ``benchmarks/data/tcpd_subset.json`` (their
    licences allow it, see ``benchmarks/data/README.md``), with every annotator's
    change points;
  - TCPD-like: generated series of the kinds the real ones show (nothing, level
    shifts, trends, trends that bend, seasonality, outliers, variance changes),
    random lengths 60-400 and effect sizes, one "annotator" (the truth).
  Methods: the default ``find_change_points``; the previous default (level
  shifts only: Pelt with the weighted L2 cost and the old calibrated penalty
  10 + 125 / n), for before/after; "zero" (reports nothing); and TCPDBench's
  best default methods, binary segmentation and PELT as they ran them (R
  changepoint ``cpt.mean``, Normal cost, penalty MBIC = 3 log n, series scaled
  to unit variance, BinSeg with at most Q = 5 changes): here ruptures' Binseg
  and Pelt with the l2 cost on the scaled series, jump 1, min_size 2.
  Published default-experiment figures (all 37 univariate TCPD series): binseg
  cover 0.706 / F1 0.744 (the best), pelt 0.689 / 0.710, zero 0.583 / 0.669
  (TCPDBench, analysis/output/tables/aggregate_table_wide.tex).

(b) Simulated weekly Happiness (each response a trinomial draw), drawn at
random per seed: length 26-160 weeks, weekly sample sizes around a mean of
5-300 with holiday dips, one class per series: none, step (10-30 points down),
ramp (15-25 points down over 6-30 weeks, possibly still going at the end),
several dips (2-4 dips of 15-30 points for 2-5 weeks, each fading back over 0-3
weeks, half the time after a lasting improvement: a series crowded with changes),
variance-only (extra week-to-week noise from a random week on), outliers (2-3
single weeks 40 points off) and holiday low-volume weeks. Per class:
detection, rate of the right shape, date error and false changes per series,
from ``detect_changes`` with its defaults.

Timing: ``find_change_points`` per 104-week series, new default versus the
previous Pelt-based one, and ``detect_changes`` per series.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import ruptures as rpt  # noqa: E402

from detectors import (  # noqa: E402
    ChangeShape,
    WeightedL2Cost,
    detect_changes,
    find_change_points,
    metric_for,
)
from detectors.calibration import simulate_weights  # noqa: E402
from detectors.changepoints import prepare_series  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "tcpd_subset.json"
MARGIN = 5
PUBLISHED = {"binseg": (0.706, 0.744), "pelt": (0.689, 0.710), "zero": (0.583, 0.669)}
HAPPINESS = metric_for("happiness")


# --- TCPDBench metrics (from the definitions in the paper) ----------------------
def _true_positives(truth: set[int], predicted: set[int], margin: int) -> int:
    """True changes matched, each to its closest unused prediction within the margin."""
    left = set(predicted)
    hits = 0
    for tau in sorted(truth):
        near = sorted((abs(tau - x), x) for x in left if abs(tau - x) <= margin)
        if near:
            hits += 1
            left.remove(near[0][1])
    return hits


def f1_score(annotations: dict[str, list[int]], predicted: list[int], margin: int = MARGIN) -> float:
    """TCPDBench's F1: precision against all annotations pooled, recall averaged over annotators; 0 counts."""
    users = [set(a) | {0} for a in annotations.values()]
    x = set(predicted) | {0}
    pooled = set().union(*users)
    precision = _true_positives(pooled, x, margin) / len(x)
    recall = float(np.mean([_true_positives(u, x, margin) / len(u) for u in users]))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _partition(cps: list[int], n: int) -> list[tuple[int, int]]:
    edges = [0, *sorted(c for c in set(cps) if 0 < c < n), n]
    return list(zip(edges[:-1], edges[1:], strict=True))


def cover_score(annotations: dict[str, list[int]], predicted: list[int], n: int) -> float:
    """TCPDBench's covering: each annotator's segments weighted by length, best Jaccard overlap, averaged."""
    mine = _partition(predicted, n)

    def jaccard(a: tuple[int, int], b: tuple[int, int]) -> float:
        inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
        return inter / (max(a[1], b[1]) - min(a[0], b[0]))

    scores = [
        sum((r[1] - r[0]) * max(jaccard(r, q) for q in mine) for r in _partition(cps, n)) / n
        for cps in annotations.values()
    ]
    return float(np.mean(scores))


# --- methods -------------------------------------------------------------------------
def _scaled(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.flatnonzero(np.isfinite(values))
    x = values[keep]
    return (x - x.mean()) / (x.std() or 1.0), keep


def tcpd_binseg(values: np.ndarray) -> list[int]:
    """TCPDBench default binseg: mean changes, Normal cost, MBIC penalty, Q = 5, scaled data."""
    x, keep = _scaled(values)
    if x.size < 4:
        return []
    algo = rpt.Binseg(model="l2", min_size=2, jump=1).fit(x)
    found = algo.predict(pen=3.0 * math.log(x.size))[:-1]
    if len(found) > 5:  # at most Q = 5 changes: binary segmentation's first five splits
        found = algo.predict(n_bkps=5)[:-1]
    return [int(keep[b]) for b in found]


def tcpd_pelt(values: np.ndarray) -> list[int]:
    """TCPDBench default PELT: mean changes, Normal cost, MBIC penalty, scaled data."""
    x, keep = _scaled(values)
    if x.size < 4:
        return []
    algo = rpt.Pelt(custom_cost=WeightedL2Cost(), min_size=2, jump=1).fit(x)  # unit weights: the l2 cost, faster
    return [int(keep[b]) for b in algo.predict(pen=3.0 * math.log(x.size))[:-1]]


def previous_default(values: np.ndarray, weights: np.ndarray | None = None) -> list[int]:
    """The detector before trends: level shifts only, Pelt, penalty 10 + 125 / n."""
    prepared = prepare_series(values, weights)
    if prepared is None or prepared.values.size < 4:
        return []
    pen = 10.0 + 125.0 / prepared.values.size
    algo = rpt.Pelt(custom_cost=WeightedL2Cost(weights=prepared.weights), min_size=2, jump=1)
    return [int(prepared.positions[b]) for b in algo.fit(prepared.values).predict(pen=pen)[:-1]]


METHODS: dict[str, Callable[[np.ndarray], list[int]]] = {
    "find_change_points (new default)": lambda v: find_change_points(v),
    "previous default (level shifts)": previous_default,
    "zero": lambda v: [],
    "binseg (TCPDBench default)": tcpd_binseg,
    "pelt (TCPDBench default)": tcpd_pelt,
}


# --- TCPD-like generated series -------------------------------------------------------
def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=n)


def _shifts(rng: np.random.Generator, n: int, count: int) -> tuple[np.ndarray, list[int]]:
    cps = sorted(rng.choice(np.arange(10, n - 10), size=count, replace=False).tolist())
    cps = [c for k, c in enumerate(cps) if k == 0 or c - cps[k - 1] >= 10]
    level = np.zeros(n)
    for c in cps:
        level[c:] += rng.choice([-1, 1]) * rng.uniform(1.5, 4.0)
    return level, cps


def make_generic(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """One TCPD-like series of ``kind`` with unit-ish noise, and its true change points."""
    n = int(rng.integers(60, 401))
    t = np.arange(n)
    e = _noise(rng, n)
    if kind == "nothing":
        return e, []
    if kind == "level shifts":
        level, cps = _shifts(rng, n, int(rng.integers(1, 4)))
        return e + level, cps
    if kind == "trend":
        return e + rng.uniform(-1, 1) * rng.uniform(3, 40) * t / n, []
    if kind == "trend that bends":
        kink = int(rng.integers(n // 5, 4 * n // 5))
        s1, s2 = rng.uniform(-1, 1, 2) * rng.uniform(5, 30) / n
        if abs(s1 - s2) * n < 5:
            s2 = s1 + math.copysign(8.0 / n, s2 - s1 or 1.0)
        line = np.where(t < kink, s1 * t, s1 * kink + s2 * (t - kink))
        return e + line, [kink]
    if kind == "seasonal + shift":
        level, cps = _shifts(rng, n, 1)
        season = rng.uniform(1, 3) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6.3))
        return e + season + level, cps
    if kind == "outliers + shift":
        level, cps = _shifts(rng, n, 1)
        hit = rng.random(n) < 0.04
        return e + level + hit * rng.choice([-1, 1], n) * rng.uniform(5, 12, n), cps
    if kind == "variance change":
        at = int(rng.integers(n // 5, 4 * n // 5))
        return e * np.where(t >= at, rng.uniform(2.5, 4.0), 1.0), [at]
    if kind == "trend + shift":
        level, cps = _shifts(rng, n, 1)
        return e + level + rng.uniform(-1, 1) * rng.uniform(3, 20) * t / n, cps
    raise ValueError(kind)


GENERIC_KINDS = (
    "nothing",
    "level shifts",
    "trend",
    "trend that bends",
    "trend + shift",
    "seasonal + shift",
    "outliers + shift",
    "variance change",
)


def score_series(task: tuple[str, list[float | None], dict[str, list[int]]]) -> dict[str, object]:
    name, raw, annotations = task
    values = np.array([np.nan if v is None else v for v in raw], dtype=float)
    row: dict[str, object] = {"series": name}
    for method, run in METHODS.items():
        found = run(values)
        row[method] = (f1_score(annotations, found), cover_score(annotations, found, values.size), len(found))
    return row


def generic_task(args: tuple[str, int]) -> dict[str, object]:
    kind, seed = args
    values, truth = make_generic(kind, np.random.default_rng(seed))
    row = score_series((kind, values.tolist(), {"truth": truth}))
    return row


# --- simulated weekly Happiness -----------------------------------------------------
CLASSES = ("none", "step", "ramp", "several dips", "variance-only", "outliers", "holiday weeks")
CROWDED_MARGIN = 2  # a dip among several is found by a worse change this close to its onset


def category_shares(happiness: np.ndarray) -> np.ndarray:
    """Promoter, passive and detractor shares giving Happiness ``happiness`` (points)."""
    h = np.clip(np.asarray(happiness, dtype=float), -95, 95) / 100.0
    passive = 0.22 * (1.0 - h * h)
    promoter = (1.0 - passive + h) / 2.0
    return np.stack([promoter, passive, 1.0 - promoter - passive], axis=-1)


def simulate_happiness(kind: str, seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Weekly statistics of one random series of class ``kind`` and its truth."""
    rng = np.random.default_rng(seed)
    weeks = int(rng.integers(26, 161))
    mean_n = float(np.exp(rng.uniform(math.log(5), math.log(300))))
    n = simulate_weights(rng, weeks, mean_n)
    base = float(rng.uniform(20, 60))
    h = np.full(weeks, base)
    truth: dict[str, float] = {"weeks": weeks, "mean_n": mean_n}
    t = np.arange(weeks)
    if kind == "step":
        onset = int(rng.integers(max(8, weeks // 4), weeks - 3))
        drop = float(rng.uniform(10, 30))
        h = h - drop * (t >= onset)
        truth |= {"onset": onset, "end": onset, "size": drop}
    elif kind == "ramp":
        length = int(rng.integers(6, 31))
        onset = int(rng.integers(max(8, weeks // 4), max(max(8, weeks // 4) + 1, weeks - length // 2)))
        drop = float(rng.uniform(15, 25))
        h = h - drop * np.clip((t - onset + 1) / length, 0, 1)
        truth |= {"onset": onset, "end": onset + length - 1, "size": drop}
    elif kind == "several dips":
        # 2-4 temporary dips (each fading back over 0-3 weeks), perhaps after a lasting improvement.
        onsets: list[int] = []
        starts = np.arange(8, weeks - 6, 6)
        count = min(int(rng.integers(2, 5)), len(starts))
        for start in np.sort(rng.choice(starts, size=count, replace=False)):
            full, fade = int(rng.integers(2, 6)), int(rng.integers(0, 4))
            shape = np.concatenate([np.ones(full), np.linspace(1, 0, fade + 2)[1:-1]])[: weeks - start]
            h[start : start + shape.size] -= float(rng.uniform(15, 30)) * shape
            onsets.append(int(start))
        if rng.random() < 0.5:
            h[int(rng.integers(4, onsets[0] + 1)) :] += float(rng.uniform(5, 15))
        truth |= {"dips": onsets}
    elif kind == "variance-only":
        at = int(rng.integers(weeks // 4, 3 * weeks // 4))
        h = h + np.where(t >= at, rng.normal(0, rng.uniform(5, 12), weeks), 0.0)
    elif kind == "outliers":
        for week in rng.choice(weeks, size=int(rng.integers(2, 4)), replace=False):
            h[week] -= 40.0
    elif kind == "holiday weeks":
        for week in rng.choice(weeks, size=3, replace=False):
            n[week] = np.floor(n[week] * 0.1)
    counts = np.array([rng.multinomial(int(k), p) for k, p in zip(n, category_shares(h), strict=True)])
    index = pd.date_range("2024-01-01", periods=weeks, freq="7D")
    stats = pd.DataFrame({"n": n.astype(int), "promoters": counts[:, 0], "detractors": counts[:, 2]}, index=index)
    return stats, truth


def happiness_task(args: tuple[str, int]) -> dict[str, object]:
    kind, seed = args
    stats, truth = simulate_happiness(kind, seed)
    changes = detect_changes(HAPPINESS, stats)
    row: dict[str, object] = {"kind": kind, "changes": len(changes), "mean_n": truth["mean_n"]}
    if "dips" in truth:
        worse = [c.index for c in changes if c.delta < 0]
        found = [any(abs(i - onset) <= CROWDED_MARGIN for i in worse) for onset in truth["dips"]]
        row["found"] = float(np.mean(found))
        row["false"] = sum(not any(abs(i - onset) <= CROWDED_MARGIN for onset in truth["dips"]) for i in worse)
    elif "onset" in truth:
        lo, hi = truth["onset"] - MARGIN, truth["end"] + MARGIN
        near = [c for c in changes if lo <= c.index <= hi and c.delta < 0]
        row["found"] = bool(near)
        row["one"] = len(near) == 1
        row["false"] = len(changes) - len(near)
        if near:
            first = min(near, key=lambda c: abs(c.index - truth["onset"]))
            want = ChangeShape.STEP if kind == "step" else ChangeShape.GRADUAL
            row["shape_ok"] = first.shape is want and len(near) == 1
            row["error"] = abs(first.index - truth["onset"])
            row["in_ramp"] = truth["onset"] - 1 <= first.index <= truth["end"] + 1
            if kind == "ramp" and first.slope is not None:
                slope = -truth["size"] / (truth["end"] - truth["onset"] + 1)
                row["covers"] = first.slope_ci_low <= slope <= first.slope_ci_high
    else:
        row["false"] = len(changes)
    return row


# --- timing ---------------------------------------------------------------------------
def timing(series: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    sets = []
    for _ in range(series):
        weights = simulate_weights(rng, 104, 30.0)
        values = np.where(weights > 0, rng.normal(size=104) * 8 / np.sqrt(np.maximum(weights, 1)), np.nan)
        sets.append((values, weights))
    out = {}
    for name, run in (
        ("find_change_points, new", lambda v, w: find_change_points(v, w)),
        ("previous default (Pelt)", previous_default),
    ):
        start = time.perf_counter()
        for values, weights in sets:
            run(values, weights)
        out[name] = (time.perf_counter() - start) / series * 1e3
    stats = [simulate_happiness("none", s)[0] for s in range(series // 2)]
    start = time.perf_counter()
    for frame in stats:
        detect_changes(HAPPINESS, frame)
    out["detect_changes (26-160 wk)"] = (time.perf_counter() - start) / len(stats) * 1e3
    return out


# --- reporting ------------------------------------------------------------------------
def print_scores(title: str, rows: list[dict[str, object]], per_row: bool) -> dict[str, tuple[float, float]]:
    print(f"\n{title}")
    methods = list(METHODS)
    if per_row:
        print(f"{'series':20s} {'n':>4s} " + " ".join(f"{m.split(' ')[0][:12]:>16s}" for m in methods))
        for r in rows:
            cells = " ".join(f"{r[m][0]:5.2f}/{r[m][1]:4.2f} ({r[m][2]:2d})" for m in methods)
            print(f"{r['series']:20s} {r.get('n', ''):>4} {cells}")
    means = {}
    print(f"{'method':34s} {'F1':>6s} {'cover':>6s} {'changes/series':>15s}")
    for m in methods:
        f1 = float(np.mean([r[m][0] for r in rows]))
        cover = float(np.mean([r[m][1] for r in rows]))
        count = float(np.mean([r[m][2] for r in rows]))
        means[m] = (f1, cover)
        print(f"{m:34s} {f1:6.3f} {cover:6.3f} {count:15.1f}")
    return means


def print_generic_by_kind(rows: list[dict[str, object]]) -> None:
    print("\nTCPD-like generated series, F1 by kind (new | previous | zero | binseg | pelt)")
    for kind in GENERIC_KINDS:
        sub = [r for r in rows if r["series"] == kind]
        f1s = " | ".join(f"{np.mean([r[m][0] for r in sub]):4.2f}" for m in METHODS)
        counts = " | ".join(f"{np.mean([r[m][2] for r in sub]):4.1f}" for m in METHODS)
        print(f"  {kind:18s} ({len(sub):3d}) F1 {f1s}   changes {counts}")


def print_happiness(rows: list[dict[str, object]]) -> None:
    print("\nSimulated weekly Happiness (detect_changes defaults; random length 26-160, n 5-300/week)")
    header = f"{'class':14s} {'series':>6s} {'found':>6s} {'shape ok':>9s} {'one chg':>8s} {'in ramp':>8s}"
    print(f"{header} {'date err (med, P90)':>20s} {'slope CI covers':>16s} {'false/series':>13s}")
    for kind in CLASSES:
        sub = [r for r in rows if r["kind"] == kind]

        def share(key: str, of: list[dict[str, object]]) -> str:
            vals = [r[key] for r in of if key in r]
            return f"{np.mean(vals):6.0%}" if vals else "     -"

        found = [r for r in sub if r.get("found")]
        errors = [r["error"] for r in found if "error" in r]
        err = f"{np.median(errors):.0f}, {np.quantile(errors, 0.9):.0f} wk" if errors else "-"
        false = np.mean([r["false"] for r in sub])
        print(
            f"{kind:14s} {len(sub):6d} {share('found', sub):>6s} {share('shape_ok', found):>9s} "
            f"{share('one', found):>8s} {share('in_ramp', found) if kind == 'ramp' else '     -':>8s} {err:>20s} "
            f"{share('covers', found) if kind == 'ramp' else '     -':>16s} {false:13.3f}"
        )
    print("  (found: a worse change within the onset..end +-5 weeks; shape ok: that change is the one")
    print("   reported there and has the right shape; date error: |first period reported - onset|;")
    print(f"   several dips: share of dips with a worse change within {CROWDED_MARGIN} weeks of onset, false: worse")
    print("   changes near none)")
    print("  by mean responses per week (found | right shape among found | dated in the slide):")
    for kind in ("step", "ramp"):
        cells = []
        for lo, hi in ((5, 30), (30, 100), (100, 301)):
            sub = [r for r in rows if r["kind"] == kind and lo <= r["mean_n"] < hi]
            found = [r for r in sub if r.get("found")]
            shape = np.mean([r["shape_ok"] for r in found]) if found else float("nan")
            dated = np.mean([r["in_ramp"] for r in found]) if found else float("nan")
            cells.append(f"n {lo}-{hi - 1}: {np.mean([r.get('found', False) for r in sub]):4.0%} | {shape:4.0%} | {dated:4.0%}")
        print(f"    {kind:5s} " + "   ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer series, for a smoke run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    generic_reps, happiness_reps, timing_series = (12, 40, 100) if args.quick else (40, 200, 400)
    seeds = iter(np.random.SeedSequence(args.seed).generate_state(100_000))

    data = json.loads(DATA.read_text())["series"]
    real_tasks = [(name, s["values"], s["annotations"]) for name, s in data.items()]
    generic_tasks = [(kind, int(next(seeds))) for kind in GENERIC_KINDS for _ in range(generic_reps)]
    happiness_tasks = [(kind, int(next(seeds))) for kind in CLASSES for _ in range(happiness_reps)]

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        real = list(pool.map(score_series, real_tasks))
        generic = list(pool.map(generic_task, generic_tasks, chunksize=4))
        happiness = list(pool.map(happiness_task, happiness_tasks, chunksize=8))
    for r, (name, values, _) in zip(real, real_tasks, strict=True):
        r["n"] = len(values)

    print_scores(f"Real TCPD series ({len(real)}), F1/cover (changes found), margin {MARGIN}", real, per_row=True)
    print("  published default experiment, all 37 univariate TCPD series (cover / F1): " + ", ".join(
        f"{k} {c:.3f} / {f:.3f}" for k, (c, f) in PUBLISHED.items()))
    print_scores(f"TCPD-like generated series ({len(generic)})", generic, per_row=False)
    print_generic_by_kind(generic)
    print_happiness(happiness)
    timings = timing(timing_series)
    print("\nTiming per series (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    print(f"\n{time.perf_counter() - started:.0f} s, seed {args.seed}{', quick' if args.quick else ''}")


if __name__ == "__main__":
    main()
