"""Detection benchmark: planted Happiness dips in simulated weekly survey data.

Usage (from the repo root): ``python benchmarks/detection.py [--quick] [--seed N]``

Weekly series of 104 weeks are built from simulated responses (each response a
trinomial draw: promoter / passive / detractor, using the same rating model as
``monitor.dev.synthetic``: passive share 0.22 * (1 - h^2) at Happiness h). Weekly
sample sizes wander around a mean of 10, 30, 100 or 300 with summer and
year-end dips (empty weeks happen at 10/week). One level shift of 5, 10, 15 or
25 points starts at a random week 44-60; null series have none.

Reported per (shift, weekly n): recall of a change at the right place (+-5
weeks, the margin of TCPDBench's F1), recall of a *finding* there (worse, big enough, clear, n >= 30 each
side), median date error, and detection delay: the series is replayed as weekly
``--as-of`` runs truncated at onset+2, onset+3, ... (a change needs 2 weeks,
min_size) and the delay is the number of post-onset weeks in the first run
that reports the finding. Null series give false alarms per 100 series-years.
With ``--replays``, the reference scenario (``monitor.dev.synthetic``) is imported
into a scratch SQLite database and analysed as weekly runs from a week before the
go-live to ten weeks after the localized dip: churn is the share of one run's
findings that the next run drops, renames (new id) or re-dates by more than a week.
A plain analyst's baseline (ruptures Pelt, l2 cost, pen = 3 log(n) var on the
raw weekly values) is scored the same way. A last section runs the generic
detector on TCPDBench-like series: heavy tails, outliers, autocorrelation,
changing noise, trends.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import ruptures as rpt  # noqa: E402

from detectors import (  # noqa: E402
    Change,
    WeightedL2Cost,
    default_penalty,
    describe_changes,
    detect_changes,
    find_change_points,
    metric_for,
)
from detectors.calibration import WEEKS_PER_YEAR, simulate_weights  # noqa: E402

WEEKS = 104
BASELINE_HAPPINESS = 52.0  # monitor.dev.synthetic's default scenario
SHIFTS = (5.0, 10.0, 15.0, 25.0)
WEEKLY_N = (10, 30, 100, 300)
TOLERANCE = 5  # weeks either side of the onset that count as the right place (TCPDBench's margin)
MAX_DELAY = 20  # weekly replay runs after the onset before giving up
TARGET_CELL = (15.0, 30)
HAPPINESS = metric_for("happiness")


def category_shares(happiness: np.ndarray) -> np.ndarray:
    """Promoter, passive and detractor shares giving Happiness ``happiness`` (points)."""
    h = np.asarray(happiness, dtype=float) / 100.0
    passive = 0.22 * (1.0 - h * h)
    promoter = (1.0 - passive + h) / 2.0
    return np.stack([promoter, passive, 1.0 - promoter - passive], axis=-1)


def simulate_stats(
    rng: np.random.Generator, mean_n: float, shift: float, onset: int, baseline: float
) -> pd.DataFrame:
    """Weekly additive statistics of simulated responses; Happiness drops by ``shift`` at ``onset``."""
    n = simulate_weights(rng, WEEKS, mean_n).astype(np.int64)
    shares = category_shares(np.where(np.arange(WEEKS) >= onset, baseline - shift, baseline))
    counts = np.array([rng.multinomial(k, p) for k, p in zip(n, shares, strict=True)])
    index = pd.date_range("2023-01-02", periods=WEEKS, freq="7D")
    return pd.DataFrame({"n": n, "promoters": counts[:, 0], "detractors": counts[:, 2]}, index=index)


def best_single_split(values: np.ndarray, weights: np.ndarray) -> int:
    """Oracle localisation: the weighted least-squares split, knowing there is exactly one."""
    keep = np.flatnonzero(np.isfinite(values) & (weights > 0))
    x, w = values[keep], weights[keep]
    cw, cwx = np.cumsum(w)[:-1], np.cumsum(w * x)[:-1]
    left = cwx / cw
    right = (np.sum(w * x) - cwx) / (np.sum(w) - cw)
    gain = cw * (np.sum(w) - cw) * (left - right) ** 2
    return int(keep[np.argmax(gain[1:-1]) + 2])  # segments of at least 2, as min_size


def clairvoyant_delay(shift: float, mean_n: float, baseline: float, onset: int = 52) -> int:
    """Weekly runs a test knowing the before level and the noise would need, median case.

    The mean of k post-onset weeks exceeds the detector's threshold sqrt(penalty)
    half of the time once shift^2 * k * n / variance >= penalty: a floor for any
    detector held to the same false-alarm rate.
    """
    promoter, _, detractor = category_shares(np.array(baseline - shift))
    variance = 1e4 * (promoter + detractor - (promoter - detractor) ** 2)
    return next(k for k in range(1, 10_000) if shift**2 * k * mean_n / variance >= default_penalty(onset + k))


def onset_oracle_delay(stats: pd.DataFrame, onset: int) -> float:
    """Weekly runs a test told the onset (but not the levels) needs on this very series.

    The two-sample test at the true onset: the weighted mean of the weeks before
    against that of the k weeks after, each week weighted by its sampling precision,
    passes the detector's threshold sqrt(penalty). Unlike ``clairvoyant_delay`` it
    estimates the old level from the weeks the series has, as any detector must, and
    it sees the same responses as ours; it still knows the onset, which ours has to
    search for. A floor for the delay of any detector held to that threshold.
    """
    values, variances, _ = HAPPINESS.per_period(stats)
    weights = np.where(np.isfinite(values) & (variances > 0), 1.0 / np.where(variances > 0, variances, 1.0), 0.0)
    values = np.nan_to_num(values)

    def side(lo: int, hi: int) -> tuple[float, float]:
        w = weights[lo:hi]
        return float(np.sum(w * values[lo:hi]) / max(w.sum(), 1e-12)), float(w.sum())

    level, precision = side(0, onset)
    for k in range(2, MAX_DELAY + 1):
        after, after_precision = side(onset, onset + k)
        if after_precision > 0 and (level - after) ** 2 / (1 / precision + 1 / after_precision) >= default_penalty(
            onset + k
        ):
            return k
    return math.inf


def baseline_starts(values: np.ndarray) -> list[int]:
    """What an analyst would write: Pelt, l2 cost, pen = 3 log(n) var, NaN weeks dropped.

    Unit-weight WeightedL2Cost is the l2 cost (sum of squared deviations from the
    segment mean) with prefix sums, so it gives ruptures' model="l2" segmentation
    several times faster.
    """
    keep = np.flatnonzero(np.isfinite(values))
    x = values[keep]
    if x.size < 4:
        return []
    algo = rpt.Pelt(custom_cost=WeightedL2Cost(), min_size=2, jump=1).fit(x)
    return [int(keep[b]) for b in algo.predict(pen=3.0 * math.log(x.size) * float(x.var()))[:-1]]


def matched(changes: Iterable[Change], onset: int) -> Change | None:
    """The worse change nearest the onset, if within the tolerance."""
    near = [c for c in changes if c.direction == "worse" and abs(c.index - onset) <= TOLERANCE]
    return min(near, key=lambda c: abs(c.index - onset), default=None)


def run_planted(task: tuple[float, int, int, bool, float]) -> dict[str, object]:
    """One planted series: detection by both methods and, if asked, the replay delay."""
    shift, mean_n, seed, replay, baseline = task
    rng = np.random.default_rng(seed)
    onset = int(rng.integers(44, 61))
    stats = simulate_stats(rng, mean_n, shift, onset, baseline)
    values = HAPPINESS.per_period(stats).values
    ours = detect_changes(HAPPINESS, stats)
    base = describe_changes(HAPPINESS, stats, baseline_starts(values))
    oracle = best_single_split(values, stats["n"].to_numpy(float))
    result: dict[str, object] = {"shift": shift, "n": mean_n, "oracle_hit": abs(oracle - onset) <= TOLERANCE}
    for name, changes in (("ours", ours), ("base", base)):
        hit = matched(changes, onset)
        result[f"{name}_hit"] = hit is not None
        result[f"{name}_finding"] = hit is not None and hit.finding
        result[f"{name}_error"] = abs(hit.index - onset) if hit else np.nan
    if replay:
        result["oracle_delay"] = onset_oracle_delay(stats, onset)
        result["delay"] = next(
            (
                k
                for k in range(2, MAX_DELAY + 1)
                if (hit := matched(detect_changes(HAPPINESS, stats.iloc[: onset + k]), onset)) and hit.finding
            ),
            math.inf,
        )
    return result


def run_null(task: tuple[int, int, float]) -> dict[str, object]:
    """One series without change: count change points and findings of both methods."""
    mean_n, seed, baseline = task
    stats = simulate_stats(np.random.default_rng(seed), mean_n, 0.0, WEEKS, baseline)
    ours = detect_changes(HAPPINESS, stats)
    base = describe_changes(HAPPINESS, stats, baseline_starts(HAPPINESS.per_period(stats).values))
    return {
        "n": mean_n,
        "ours": len(ours),
        "ours_findings": sum(c.finding for c in ours),
        "base": len(base),
        "base_findings": sum(c.finding for c in base),
    }


# --- generic (TCPDBench-like) series ------------------------------------------
GENERIC_LENGTH = 150


def _shift_at(rng: np.random.Generator) -> int:
    return int(rng.integers(30, GENERIC_LENGTH - 30))


@dataclass(frozen=True)
class GenericCase:
    """A generator of (series, true change starts) with unit noise."""

    name: str
    make: Callable[[np.random.Generator], tuple[np.ndarray, list[int]]]


def _with_outliers(rng: np.random.Generator, x: np.ndarray, share: float = 0.05) -> np.ndarray:
    hit = rng.random(x.size) < share
    return np.where(hit, x + rng.choice([-1.0, 1.0], x.size) * rng.uniform(5.0, 10.0, x.size), x)


def _step(rng: np.random.Generator, size: float, noise: np.ndarray) -> tuple[np.ndarray, list[int]]:
    at = _shift_at(rng)
    return noise + size * (np.arange(noise.size) >= at), [at]


def _ar1(rng: np.random.Generator, phi: float) -> np.ndarray:
    e = rng.normal(size=GENERIC_LENGTH) * math.sqrt(1.0 - phi * phi)
    x = np.empty_like(e)
    x[0] = rng.normal()
    for i in range(1, e.size):
        x[i] = phi * x[i - 1] + e[i]
    return x


def _epidemic(rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    at = _shift_at(rng)
    end = min(at + 20, GENERIC_LENGTH - 5)
    level = np.where((np.arange(GENERIC_LENGTH) >= at) & (np.arange(GENERIC_LENGTH) < end), 3.0, 0.0)
    return rng.normal(size=GENERIC_LENGTH) + level, [at, end]


def _normal(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=GENERIC_LENGTH)


GENERIC_CASES = (
    GenericCase("null: normal", lambda r: (_normal(r), [])),
    GenericCase("null: heavy tails (t, 3 df)", lambda r: (r.standard_t(3, GENERIC_LENGTH) / math.sqrt(3.0), [])),
    GenericCase("null: 5% outliers of 5-10 sd", lambda r: (_with_outliers(r, _normal(r)), [])),
    GenericCase("null: one outlier of 20 sd", lambda r: (_normal(r) + 20.0 * (np.arange(GENERIC_LENGTH) == 75), [])),
    GenericCase("null: AR(1), phi = 0.3", lambda r: (_ar1(r, 0.3), [])),
    GenericCase(
        "null: noise sd doubles midway",
        lambda r: (_normal(r) * np.where(np.arange(GENERIC_LENGTH) >= 75, 2.0, 1.0), []),
    ),
    GenericCase("null: 10% missing", lambda r: (np.where(r.random(GENERIC_LENGTH) < 0.1, np.nan, _normal(r)), [])),
    GenericCase("shift 1 sd", lambda r: _step(r, 1.0, _normal(r))),
    GenericCase("shift 2 sd", lambda r: _step(r, 2.0, _normal(r))),
    GenericCase("shift 2 sd + 5% outliers", lambda r: _step(r, 2.0, _with_outliers(r, _normal(r)))),
    GenericCase("shift 2 sd, t(3) noise", lambda r: _step(r, 2.0, r.standard_t(3, GENERIC_LENGTH) / math.sqrt(3.0))),
    GenericCase("shift 2 sd, AR(1) 0.3", lambda r: _step(r, 2.0, _ar1(r, 0.3))),
    GenericCase("3 sd bump lasting 20 points", _epidemic),
    GenericCase("trend of 3 sd over the series", lambda r: (_normal(r) + np.linspace(0.0, 3.0, GENERIC_LENGTH), [])),
)


def run_generic(task: tuple[int, int]) -> dict[str, object]:
    """One generic series: true changes found (within the margin) and spurious ones, both methods."""
    case_index, seed = task
    values, truth = GENERIC_CASES[case_index].make(np.random.default_rng(seed))
    result: dict[str, object] = {"case": case_index, "truth": len(truth)}
    for name, starts in (("ours", find_change_points(values)), ("base", baseline_starts(values))):
        found = sum(any(abs(s - t) <= TOLERANCE for s in starts) for t in truth)
        spurious = sum(all(abs(s - t) > TOLERANCE for t in truth) for s in starts)
        result[f"{name}_found"], result[f"{name}_spurious"] = found, spurious
    return result


# --- reporting -----------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def median_or_inf(values: list[float]) -> float:
    return float(np.median(values)) if values else math.inf


def rank_quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile: well defined when some delays are infinite (never found)."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def report_planted(
    planted: list[dict[str, object]], replay_cells: set[tuple[float, int]], baseline: float
) -> dict[str, float]:
    cells: dict[tuple[float, int], list[dict[str, object]]] = defaultdict(list)
    for r in planted:
        cells[(r["shift"], r["n"])].append(r)
    print(f"\nPlanted Happiness shifts, 104 weeks, baseline {baseline:+.0f} (ours | plain Pelt baseline)")
    header = f"{'shift':>5} {'n/wk':>5} {'series':>6} {'change':>15} {'finding':>15} {'date err':>10}"
    print(f"{header} {'delay (median, P75)':>20}")
    errors = []
    for (shift, n), rows in sorted(cells.items()):
        def share(key: str) -> float:
            return float(np.mean([r[key] for r in rows]))

        err = [r["ours_error"] for r in rows if r["ours_hit"]]
        if shift >= 10:
            errors += err
        error_text = f"{np.median(err):.1f} wk" if err else "-"
        delays = [r["delay"] for r in rows if "delay" in r]
        delay_text = "-"
        if (shift, n) in replay_cells:
            delay_text = f"{rank_quantile(delays, 0.5):.0f}, {rank_quantile(delays, 0.75):.0f} wk"
        print(
            f"{shift:5.0f} {n:5d} {len(rows):6d} {share('ours_hit'):6.0%} | {share('base_hit'):5.0%} "
            f"{share('ours_finding'):6.0%} | {share('base_finding'):5.0%} {error_text:>10} {delay_text:>20}"
        )
    target = cells[TARGET_CELL]
    return {
        "recall": float(np.mean([r["ours_finding"] for r in target])),
        "oracle": float(np.mean([r["oracle_hit"] for r in target])),
        "delay": rank_quantile([r["delay"] for r in target], 0.5),
        "oracle_delay": rank_quantile([r["oracle_delay"] for r in target], 0.5),
        "error": median_or_inf(errors),
    }


def report_null(null: list[dict[str, object]]) -> float:
    print("\nNull series (no change), false alarms per 100 series-years (ours | baseline)")
    print(f"{'n/wk':>5} {'series':>6} {'change points':>17} {'findings':>15}")
    years = defaultdict(float)
    for r in null:
        years[r["n"]] += WEEKS / WEEKS_PER_YEAR
    for n in sorted(years):
        rows = [r for r in null if r["n"] == n]

        def rate(key: str) -> float:
            return 100.0 * sum(r[key] for r in rows) / years[n]

        print(
            f"{n:5d} {len(rows):6d} {rate('ours'):8.2f} | {rate('base'):6.1f} "
            f"{rate('ours_findings'):6.2f} | {rate('base_findings'):5.1f}"
        )
    total = 100.0 * sum(r["ours"] for r in null) / sum(years.values())
    base_total = 100.0 * sum(r["base"] for r in null) / sum(years.values())
    print(f"  all  {len(null):6d} {total:8.2f} | {base_total:6.1f}")
    return total


def report_generic(generic: list[dict[str, object]]) -> None:
    print(f"\nGeneric series ({GENERIC_LENGTH} points, unit noise, find_change_points defaults vs baseline)")
    print(f"{'case':34s} {'recall (+-5)':>16} {'spurious per 100 series-years':>32}")
    years = GENERIC_LENGTH / WEEKS_PER_YEAR
    for index, case in enumerate(GENERIC_CASES):
        rows = [r for r in generic if r["case"] == index]
        truth = sum(r["truth"] for r in rows)

        def recall(name: str) -> str:
            return f"{sum(r[f'{name}_found'] for r in rows) / truth:5.0%}" if truth else "    -"

        def spurious(name: str) -> float:
            return 100.0 * sum(r[f"{name}_spurious"] for r in rows) / (len(rows) * years)

        print(
            f"{case.name:34s} {recall('ours'):>7} | {recall('base'):5} "
            f"{spurious('ours'):14.1f} | {spurious('base'):6.1f}"
        )


def replay_churn(rows: int, seed: int, folder: Path) -> dict[str, float]:
    """Weekly runs over the reference scenario; churn between consecutive runs."""
    import datetime as dt

    from config import load_settings
    from monitor import store
    from monitor.analysis.run import run_analysis
    from monitor.dev.synthetic import default_scenario, write_csv
    from monitor.ingest.importer import ingest_files
    from monitor.store import db
    from monitor.store.models import Transition

    scenario = default_scenario()
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'replays.db'}"
    (folder / "replays.db").unlink(missing_ok=True)
    engine = db.make_engine(url)
    db.upgrade(engine)
    settings = load_settings(environ={}, overrides={"database_url": url})
    assert ingest_files(engine, [write_csv(folder / "r.csv", rows, seed=seed, scenario=scenario)], settings).committed
    with db.session_scope(engine) as session:
        store.add_transition(
            session, Transition(name="MSP", go_live=scenario.go_live, scope={}, created_at=dt.datetime.now(dt.UTC))
        )
    first = scenario.go_live - dt.timedelta(days=1)
    last = scenario.effect("localized_dip").start + dt.timedelta(weeks=10)
    runs = []
    as_of = first
    while as_of <= last:
        report = run_analysis(engine, settings, as_of)
        runs.append({f.id: f.as_dict() for f in report.findings})
        as_of += dt.timedelta(weeks=1)
    engine.dispose()
    counts = {"findings": 0, "dropped": 0, "renamed": 0, "redated": 0, "roots": 0, "roots_churned": 0}
    for now, after in zip(runs[:-1], runs[1:], strict=True):
        later_keys = {(f["metric"], tuple(sorted(f["segment"].items()))) for f in after.values()}
        for fid, finding in now.items():
            counts["findings"] += 1
            counts["roots"] += bool(finding["root"])
            churned = True
            if fid in after:
                moved = abs(
                    (dt.date.fromisoformat(after[fid]["change_date"]) - dt.date.fromisoformat(finding["change_date"])).days
                )
                counts["redated"] += moved > 7
                churned = moved > 7
            elif (finding["metric"], tuple(sorted(finding["segment"].items()))) in later_keys:
                counts["renamed"] += 1
            else:
                counts["dropped"] += 1
            counts["roots_churned"] += bool(finding["root"]) and churned
    churned = counts["dropped"] + counts["renamed"] + counts["redated"]
    return {
        **counts,
        "runs": len(runs),
        "churn": churned / max(counts["findings"], 1),
        "root_churn": counts["roots_churned"] / max(counts["roots"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer series, for a smoke run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--baseline", type=float, default=BASELINE_HAPPINESS, help="Happiness before the shift (default %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--replays", action="store_true", help="only the weekly-replay churn of the reference scenario")
    parser.add_argument("--rows", type=int, default=60_000, help="responses in the replayed scenario")
    args = parser.parse_args()
    if args.replays:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            figures = replay_churn(args.rows, args.seed, Path(folder))
        print(f"Replays ({figures['runs']} weekly runs, {args.rows:,} responses, {time.perf_counter() - started:.0f} s)")
        print(
            f"  findings {figures['findings']}: dropped {figures['dropped']}, new id {figures['renamed']}, "
            f"re-dated > 1 week {figures['redated']}"
        )
        print(f"  churn between consecutive runs <= 5%: {figures['churn']:.1%}  {verdict(figures['churn'] <= 0.05)}")
        print(f"  root findings' churn: {figures['root_churn']:.1%} of {figures['roots']}")
        return
    reps, null_reps, replay_reps, generic_reps = (20, 40, 20, 30) if args.quick else (80, 150, 30, 80)

    seeds = iter(np.random.SeedSequence(args.seed).generate_state(100_000))
    replay_cells = {(s, n) for s in SHIFTS for n in WEEKLY_N if s >= 10 and n >= 30} | {TARGET_CELL}
    planted_tasks = [
        (
            shift,
            n,
            int(next(seeds)),
            (shift, n) == TARGET_CELL or ((shift, n) in replay_cells and rep < replay_reps),
            args.baseline,
        )
        for shift in SHIFTS
        for n in WEEKLY_N
        for rep in range(reps)
    ]
    null_tasks = [(n, int(next(seeds)), args.baseline) for n in WEEKLY_N for _ in range(null_reps)]
    generic_tasks = [(i, int(next(seeds))) for i in range(len(GENERIC_CASES)) for _ in range(generic_reps)]

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        planted = list(pool.map(run_planted, planted_tasks, chunksize=4))
        null = list(pool.map(run_null, null_tasks, chunksize=4))
        generic = list(pool.map(run_generic, generic_tasks, chunksize=8))

    figures = report_planted(planted, replay_cells, args.baseline)
    false_alarms = report_null(null)
    report_generic(generic)
    print(f"\nTargets ({time.perf_counter() - started:.0f} s, seed {args.seed}{', quick' if args.quick else ''})")
    print(f"  false alarms per 100 series-years <= 1: {false_alarms:.2f}  {verdict(false_alarms <= 1.0)}")
    shift, n = TARGET_CELL
    print(
        f"  finding recall (+-{TOLERANCE} wk), {shift:.0f}-point shift at {n}/week >= 95%: {figures['recall']:.0%}  "
        f"{verdict(figures['recall'] >= 0.95)}   "
        f"(oracle single split, told there is one change: {figures['oracle']:.0%})"
    )
    clairvoyant, bound = clairvoyant_delay(shift, n, args.baseline), figures["oracle_delay"]
    print(
        f"  median delay, same cell <= 3 weekly runs: {figures['delay']:.0f}  {verdict(figures['delay'] <= 3)}   "
        f"(clairvoyant test at the same threshold: {clairvoyant})"
    )
    print(
        f"  median delay within 1.25x of the clairvoyant test's: {figures['delay'] / clairvoyant:.2f}x  "
        f"{verdict(figures['delay'] <= 1.25 * clairvoyant)}"
    )
    print(
        f"  ... of a test told the onset, on the same series (onset_oracle_delay, median {bound:.0f}): "
        f"{figures['delay'] / bound:.2f}x  {verdict(figures['delay'] <= 1.25 * bound)}"
    )
    print(f"  median date error (shifts >= 10) <= 1 week: {figures['error']:.1f}  {verdict(figures['error'] <= 1)}")


if __name__ == "__main__":
    main()
