"""Analysis speed and memory: mspmon's full analysis against a plain pandas + ruptures loop.

Generates N canonical rows over two years (default 1,000,000; ``--quick``: 100,000),
ingests them into a fresh database, adds the MSP transition, and then:

* runs mspmon's analysis from the database (``monitor.analysis.run.run_analysis``: every
  metric, everyone, each dimension and each pair of dimensions) twice, a first run
  and a repeat run (which keeps the findings' identities), each in its own child
  process so its peak memory (max RSS) is measured alone;
* runs, in a child process too, what an analyst would write: ``pandas.read_csv`` the
  same file, group by each segment and week, and run ``ruptures.Pelt`` (l2 cost,
  min_size 2, jump 1, pen = 3 log(n) var, missing weeks forward-filled) on the
  weekly Happiness, mean lost time and each factor's share of every segment with at
  least 60 responses. Deliberately not optimised.

Pelt in pure Python costs about 0.1 s per 104-week series and the plain loop has
tens of thousands of series at 1M rows, so by default it runs Pelt on an evenly
spread sample of at most 3,000 of them and *projects* its full time (read, prepare
and group-by as measured + measured Pelt seconds per series x all series); the output
says so. ``--baseline-limit 0`` runs every series.

    python benchmarks/analysis.py [--rows N | --quick] [--backend sqlite|postgresql]
                                  [--baseline-limit N]

Targets on the 2-core reference machine: mspmon's analysis <= 10 s (each run),
faster than the plain loop, peak memory < 1.5 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _shared import DEFAULT_PG_URL, fresh_database, run_child, timed_analysis  # noqa: E402

TARGET_SECONDS = 10.0
TARGET_MEMORY_MB = 1536.0
AUTO_BASELINE_LIMIT = 1000
MIN_SEGMENT_RESPONSES = 60  # mspmon's eligibility: min_n = 30 responses each side of a change
SEED = 7


# --- child processes ----------------------------------------------------------
# The parent stays small: a child started with vfork inherits the parent's peak RSS
# in its own ru_maxrss on Linux, so the heavy work (generation, ingest) runs in
# children as well.


def _child_setup(url: str, csv_path: str, rows: int) -> None:
    """Generate the CSV, create the schema, ingest it and add the MSP transition."""
    from config import load_settings
    from monitor import store
    from monitor.dev.synthetic import default_scenario, write_csv
    from monitor.ingest.importer import ingest_files
    from monitor.store import db
    from monitor.store.models import Transition

    started = time.perf_counter()
    path = write_csv(csv_path, rows, seed=SEED)
    generate_seconds = time.perf_counter() - started
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    db.upgrade(engine)
    started = time.perf_counter()
    report = ingest_files(engine, [path], settings, source="bench")
    ingest_seconds = time.perf_counter() - started
    if report.error_count or not report.committed:
        raise SystemExit(f"ingest failed: {report.as_dict()['errors'][:3]}")
    scenario = default_scenario()
    with db.session_scope(engine) as session:
        store.add_transition(
            session,
            Transition(
                name="MSP", go_live=scenario.go_live, scope={}, description="", created_at=dt.datetime.now(dt.UTC)
            ),
        )
    engine.dispose()
    print(
        json.dumps(
            {
                "generate_seconds": generate_seconds,
                "csv_mb": path.stat().st_size / 1e6,
                "ingest_seconds": ingest_seconds,
                "inserted": report.inserted,
                "rejected": report.rejected,
                "as_of": (scenario.end + dt.timedelta(days=1)).isoformat(),
            }
        )
    )


def _child_analysis(url: str, as_of: str) -> None:
    """One ``run_analysis`` from the database; its figures as JSON."""
    report, elapsed = timed_analysis(url, as_of)
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "report_seconds": report.seconds,
                "responses": report.responses,
                "series_screened": report.series_screened,
                "series_detected": report.series_detected,
                "findings": len(report.findings),
                "finding_ids": sorted(f.id for f in report.findings),
            }
        )
    )


def _child_baseline(csv_path: str, limit: int) -> None:
    """The plain analyst's loop: pandas group-by per segment and week, ruptures Pelt per series.

    ``limit`` > 0 runs Pelt on an evenly spread sample of at most ``limit`` series and
    reports the measured time per series, for the parent to project the full time.
    """
    import itertools

    import numpy as np
    import pandas as pd
    import ruptures as rpt

    dimensions = ["country", "department", "channel", "service", "assignment_group", "location"]
    timings: dict[str, float] = {}

    started = time.perf_counter()
    df = pd.read_csv(csv_path)
    timings["read_csv"] = time.perf_counter() - started

    started = time.perf_counter()
    submitted = pd.to_datetime(df["submitted_at"], utc=True)
    day = submitted.dt.tz_localize(None).dt.normalize()
    df["week"] = day - pd.to_timedelta(day.dt.day_of_week, unit="D")  # Monday weeks, UTC
    df["promoter"] = (df["rating"] >= 9).astype(float)
    df["detractor"] = (df["rating"] <= 6).astype(float)
    factors = df["factors"].fillna("").str.get_dummies(sep=";").astype(float)
    factors = factors.drop(columns=[""], errors="ignore")  # rows citing no factor
    factor_names = list(factors.columns)
    df = pd.concat([df, factors], axis=1)
    all_weeks = pd.date_range(df["week"].min(), df["week"].max(), freq="7D")
    timings["prepare"] = time.perf_counter() - started

    started = time.perf_counter()
    groupings = [[]] + [[d] for d in dimensions] + [list(p) for p in itertools.combinations(dimensions, 2)]
    aggregations = {
        "n": ("rating", "size"),
        "promoters": ("promoter", "mean"),
        "detractors": ("detractor", "mean"),
        "lost_time": ("lost_time_minutes", "mean"),
        **{f"factor:{name}": (name, "mean") for name in factor_names},
    }
    metrics = ["happiness", "lost_time", *(f"factor:{name}" for name in factor_names)]
    series: list[np.ndarray] = []  # every segment x metric series the loop would run Pelt on
    segments = 0
    for keys in groupings:
        weekly = df.groupby([*keys, "week"]).agg(**aggregations)
        weekly["happiness"] = 100 * (weekly["promoters"] - weekly["detractors"])
        for name in factor_names:
            weekly[f"factor:{name}"] *= 100
        parts = weekly.groupby(level=keys) if keys else [((), weekly)]
        for _, frame in parts:
            if frame["n"].sum() < MIN_SEGMENT_RESPONSES:
                continue
            segments += 1
            frame = frame.droplevel(keys) if keys else frame
            frame = frame.reindex(all_weeks).ffill().bfill()
            for metric in metrics:
                series.append(frame[metric].to_numpy(dtype=float))
    timings["groupby"] = time.perf_counter() - started

    total = len(series)
    if 0 < limit < total:
        chosen = np.unique(np.linspace(0, total - 1, limit).round().astype(int))
    else:
        chosen = np.arange(total)
    started = time.perf_counter()
    change_points = 0
    for index in chosen:
        values = series[index]
        if np.isnan(values).any():  # a metric never answered in the segment (e.g. lost time)
            values = np.nan_to_num(values)
        variance = float(values.var())
        if variance == 0.0:  # a flat series: pen 0 would let Pelt cut anywhere
            continue
        breaks = rpt.Pelt(model="l2", min_size=2, jump=1).fit(values).predict(pen=3 * math.log(values.size) * variance)
        change_points += len(breaks) - 1
    timings["pelt"] = time.perf_counter() - started
    print(
        json.dumps(
            {
                "timings": timings,
                "segments": segments,
                "series_total": total,
                "series_run": int(len(chosen)),
                "change_points": change_points,
                "weeks": len(all_weeks),
            }
        )
    )


# --- parent ---------------------------------------------------------------------


def _limit(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0: every series)")
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
    )
    parser.add_argument(
        "--baseline-limit",
        type=_limit,
        default=None,
        help=f"max series the plain loop runs Pelt on; the full time is projected (default {AUTO_BASELINE_LIMIT}; 0: all)",
    )
    parser.add_argument("--child-setup", nargs=3, metavar=("URL", "CSV", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--child-analysis", nargs=2, metavar=("URL", "AS_OF"), help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", nargs=2, metavar=("CSV", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_setup:
        _child_setup(args.child_setup[0], args.child_setup[1], int(args.child_setup[2]))
        return
    if args.child_analysis:
        _child_analysis(*args.child_analysis)
        return
    if args.child_baseline:
        _child_baseline(args.child_baseline[0], int(args.child_baseline[1]))
        return

    rows = 100_000 if args.quick else args.rows
    limit = AUTO_BASELINE_LIMIT if args.baseline_limit is None else args.baseline_limit
    with tempfile.TemporaryDirectory(prefix="mspmon-bench-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "responses.csv"
        url, cleanup = fresh_database(args.backend, workdir, args.pg_url)
        try:
            setup = run_child(__file__, "--child-setup", url, str(csv_path), str(rows))
            print(
                f"setup ({args.backend}): generated {rows:,} rows ({setup['csv_mb']:.0f} MB CSV) in "
                f"{setup['generate_seconds']:.1f} s, ingested {setup['inserted']:,} in {setup['ingest_seconds']:.1f} s "
                f"(peak {setup['peak_mb']:.0f} MB); as_of {setup['as_of']}"
            )
            first = run_child(__file__, "--child-analysis", url, setup["as_of"])
            repeat = run_child(__file__, "--child-analysis", url, setup["as_of"])
            baseline = run_child(__file__, "--child-baseline", str(csv_path), str(limit))
        finally:
            cleanup()

    t = baseline["timings"]
    fixed = t["read_csv"] + t["prepare"] + t["groupby"]
    projected = baseline["series_run"] < baseline["series_total"]
    per_series = t["pelt"] / max(baseline["series_run"], 1)
    baseline_seconds = fixed + per_series * baseline["series_total"]
    baseline_findings = baseline["change_points"] * baseline["series_total"] / max(baseline["series_run"], 1)

    print(f"{'run':<33} {'seconds':>8} {'peak MB':>8}  figures")
    for label, run in (("mspmon analysis (first)", first), ("mspmon analysis (repeat)", repeat)):
        print(
            f"{label:<33} {run['seconds']:8.2f} {run['peak_mb']:8.0f}  responses {run['responses']:,}, "
            f"series screened {run['series_screened']:,}, detected {run['series_detected']:,}, "
            f"findings {run['findings']}"
        )
    kept = len(set(first["finding_ids"]) & set(repeat["finding_ids"]))
    print(f"{'':<33} {'':>8} {'':>8}  repeat kept {kept}/{first['findings']} finding ids")
    label = "plain pandas+ruptures" + (" (PROJECTED)" if projected else "")
    print(
        f"{label:<33} {baseline_seconds:8.1f} {baseline['peak_mb']:8.0f}  "
        f"{baseline['segments']:,} segments, {baseline['series_total']:,} series (>= {MIN_SEGMENT_RESPONSES} responses), "
        f"Pelt run on {baseline['series_run']:,}"
    )
    print(
        f"{'':<33} {'':>8} {'':>8}  read_csv {t['read_csv']:.1f} s, prepare {t['prepare']:.1f} s, "
        f"group-by {t['groupby']:.1f} s, Pelt {t['pelt']:.1f} s ({per_series * 1000:.0f} ms/series)"
    )
    if projected:
        print(
            f"{'':<33} {'':>8} {'':>8}  PROJECTED: Pelt ran on {baseline['series_run']:,} of "
            f"{baseline['series_total']:,} series (evenly spread); full time = {fixed:.1f} s measured + "
            f"{per_series * 1000:.0f} ms x {baseline['series_total']:,} series"
        )
        print(
            f"{'':<33} {'':>8} {'':>8}  naive findings (change points): {baseline['change_points']:,} in the sample, "
            f"~{baseline_findings:,.0f} projected for all series"
        )
    else:
        print(f"{'':<33} {'':>8} {'':>8}  naive findings (change points): {baseline['change_points']:,}")

    mspmon_seconds = max(first["seconds"], repeat["seconds"])
    ratio = baseline_seconds / mspmon_seconds
    print(
        f"ratio plain loop / mspmon: {ratio:.1f}x ({baseline_seconds:.1f} s"
        f"{' projected' if projected else ''} / {mspmon_seconds:.2f} s, slower mspmon run)"
    )
    failures = []
    if mspmon_seconds > TARGET_SECONDS:
        failures.append(f"analysis {mspmon_seconds:.1f} s > {TARGET_SECONDS:.0f} s")
    if mspmon_seconds >= baseline_seconds:
        failures.append("not faster than the plain loop")
    peak = max(first["peak_mb"], repeat["peak_mb"])
    if peak >= TARGET_MEMORY_MB:
        failures.append(f"peak {peak:.0f} MB >= {TARGET_MEMORY_MB:.0f} MB")
    verdict = "PASS" if not failures else "FAIL: " + ", ".join(failures)
    print(
        f"targets (analysis <= {TARGET_SECONDS:.0f} s, faster than plain loop, < {TARGET_MEMORY_MB:.0f} MB): {verdict}"
    )


if __name__ == "__main__":
    main()
