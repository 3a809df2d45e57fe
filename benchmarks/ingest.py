"""Ingestion speed and memory, and GROUP BY speed on the slot-column model.

Generates N canonical rows (default 1,000,000) once, then for SQLite and PostgreSQL:
a first import into an empty database, a re-import of the same file (all rows
unchanged), and the grouping query analysis relies on (responses by dimension value
and week). Every import runs in its own child process so its peak memory (max RSS)
is measured alone.

    python benchmarks/ingest.py [--rows N] [--backends sqlite,postgresql]

Targets on the 2-core reference machine: first import <= 20 s, re-import <= 20 s,
peak memory < 1 GB, on each backend.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _shared import DEFAULT_PG_URL, fresh_database, run_child  # noqa: E402
from sqlalchemy import case, func, select  # noqa: E402

from config import load_settings  # noqa: E402
from monitor import store  # noqa: E402
from monitor.dev.synthetic import write_csv  # noqa: E402
from monitor.ingest.importer import ingest_files  # noqa: E402
from monitor.store import db  # noqa: E402
from monitor.store.models import Dimension, responses, slot_column  # noqa: E402

TARGET_SECONDS = 20.0
TARGET_MEMORY_MB = 1024.0


def _child_import(url: str, path: str) -> None:
    """Runs in a child process: one import, its figures printed as JSON."""
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    started = time.perf_counter()
    report = ingest_files(engine, [Path(path)], settings, source="bench")
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, **{k: v for k, v in report.as_dict().items() if k != "errors"}}))


def _group_by_seconds(url: str, dimension: str) -> tuple[float, int]:
    """Time the per-segment weekly aggregation the analysis runs, on one dimension."""
    engine = db.make_engine(url)
    with engine.connect() as connection:
        slot = connection.execute(select(Dimension.slot).where(Dimension.name == dimension)).scalar_one()
        column = responses.c[slot_column(slot)]
        week = store.period_index("week")
        query = select(
            column,
            week.label("week"),
            func.count(),
            func.sum(case((responses.c.rating >= 9, 1), else_=0)),
            func.sum(case((responses.c.rating <= 6, 1), else_=0)),
            func.sum(responses.c.lost_time_minutes),
        ).group_by(column, week)
        started = time.perf_counter()
        groups = len(connection.execute(query).all())
        elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--child-import", nargs=2, metavar=("URL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        _child_import(*args.child_import)
        return

    with tempfile.TemporaryDirectory(prefix="mspmon-bench-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        path = write_csv(workdir / "responses.csv", args.rows, seed=7)
        print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB CSV) in {time.perf_counter() - started:.1f} s")
        print(f"{'backend':<11} {'step':<10} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}  counts")
        failures = []
        for backend in args.backends.split(","):
            url, cleanup = fresh_database(backend, workdir, args.pg_url)
            try:
                engine = db.make_engine(url)
                db.upgrade(engine)
                engine.dispose()
                for step in ("first", "re-import"):
                    figures = run_child(__file__, "--child-import", url, str(path))
                    rate = args.rows / figures["seconds"]
                    counts = f"ins {figures['inserted']:,} upd {figures['updated']:,} same {figures['unchanged']:,} rej {figures['rejected']:,}"
                    print(f"{backend:<11} {step:<10} {figures['seconds']:8.1f} {rate:10,.0f} {figures['peak_mb']:8.0f}  {counts}")
                    if figures["seconds"] > TARGET_SECONDS or figures["peak_mb"] > TARGET_MEMORY_MB:
                        failures.append(f"{backend} {step}")
                for dimension in ("country", "assignment_group"):
                    seconds, groups = _group_by_seconds(url, dimension)
                    print(f"{backend:<11} group by {dimension} x week: {seconds:.2f} s ({groups:,} groups)")
            finally:
                cleanup()
        verdict = "PASS" if not failures else "FAIL: " + ", ".join(failures)
        print(f"targets (<= {TARGET_SECONDS:.0f} s per import, < {TARGET_MEMORY_MB:.0f} MB): {verdict}")


if __name__ == "__main__":
    main()
