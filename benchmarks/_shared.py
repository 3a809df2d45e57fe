"""Helpers shared by the benchmark scripts: child processes and throwaway databases."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from monitor.analysis.run import AnalysisReport

DEFAULT_PG_URL = os.environ.get("MSPMON_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def run_child(script: str, *args: str) -> dict:
    """Run ``script`` with ``args`` in a child process; its last stdout line is JSON.

    Each measured step runs alone in a child so that its peak memory (max RSS,
    from ``wait4``) is its own.
    """
    child = subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True)
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"child {args[0] if args else script} failed with status {status}")
    figures = json.loads(output.strip().splitlines()[-1])
    figures["peak_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return figures


def timed_analysis(url: str, as_of: str) -> tuple[AnalysisReport, float]:
    """One ``run_analysis`` on the database at ``url``, and its wall-clock seconds."""
    from config import load_settings
    from monitor.analysis.run import run_analysis
    from monitor.store import db

    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    started = time.perf_counter()
    report = run_analysis(engine, settings, dt.date.fromisoformat(as_of))
    seconds = time.perf_counter() - started
    engine.dispose()
    return report, seconds


def fresh_database(backend: str, workdir: Path, pg_url: str = DEFAULT_PG_URL) -> tuple[str, Callable[[], None]]:
    """A new empty database URL and a function that removes it.

    SQLite: a file in ``workdir``. PostgreSQL: a new schema, dropped afterwards.
    """
    if backend == "sqlite":
        path = workdir / "bench.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop
