"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

PostgreSQL comes from ``MSPMON_TEST_DATABASE_URL`` (default: the local server's
``test`` database). Each test gets its own schema there, dropped afterwards, so tests
never see each other's rows. Without a reachable server the PostgreSQL variants are
skipped, unless ``MSPMON_TEST_REQUIRE_POSTGRES=1`` (set by CI) makes that a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from config import Settings, load_settings
from monitor.store import db
from web.demo import run_demo

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_base_url() -> str:
    return os.environ.get("MSPMON_TEST_DATABASE_URL", DEFAULT_PG_URL)


def _postgres_available(url: str) -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver error means "not reachable" here
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = _postgres_base_url()
    reason = _postgres_available(url)
    if reason is not None:
        if os.environ.get("MSPMON_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but not reachable at {url}: {reason}")
        pytest.skip(f"PostgreSQL not reachable at {url}: {reason}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    engine = db.make_engine(rendered)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield rendered
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(environ={}, overrides={"database_url": database_url})


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    """A click runner whose commands use this test's database and no config file."""
    return CliRunner(env={"MSPMON_DATABASE_URL": database_url, "MSPMON_CONFIG": None})


@dataclass(frozen=True)
class DemoBuild:
    directory: Path
    database_url: str
    messages: tuple[str, ...]


DEMO_DAY = dt.date(2026, 11, 22)  # a Sunday: the demo's analysis and digests are as of this day


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    """`mspmon demo` as a new user runs it (60,000 responses), built once per test session."""
    directory = tmp_path_factory.mktemp("demo")
    messages: list[str] = []
    database = run_demo(directory, rows=60_000, seed=42, echo=messages.append, today=DEMO_DAY)
    return DemoBuild(directory, f"sqlite:///{database}", tuple(messages))
