"""Web fixtures: an app on each backend, users of each role, and analysed demo data.

Analysing the demo scenario takes seconds, too long to repeat per test and
backend; it runs once per session on SQLite, and each test that needs it gets a
copy of the analysis's outputs (transitions, findings, the report, the cubes)
in its own fresh database, PostgreSQL included. Pages read only those tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert, select

from config import Settings, load_settings
from monitor.analysis.cube import SegmentCube
from monitor.analysis.run import run_analysis
from monitor.dev.synthetic import write_csv
from monitor.ingest.importer import ingest_files
from monitor.store import db
from monitor.store.models import (
    AnalysisRun,
    Dimension,
    DimensionValue,
    Factor,
    Finding,
    Transition,
)
from web import create_app
from web.accounts import add_user, create_token
from web.demo import DEMO_TRANSITION, demo_scenario

TODAY = dt.date(2026, 11, 23)
SECRET = "test-secret-key-0123456789"
PASSWORD = "correct horse battery"
# What an analysis leaves for the web view, in foreign-key order.
ANALYSIS_TABLES = (Dimension, DimensionValue, Factor, Transition, Finding, AnalysisRun, SegmentCube)


@pytest.fixture(scope="session")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The demo scenario, imported and analysed once (SQLite)."""
    folder = tmp_path_factory.mktemp("analysed")
    url = f"sqlite:///{folder / 'demo.db'}"
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    db.upgrade(engine)
    scenario = demo_scenario(TODAY)
    csv_path = write_csv(folder / "responses.csv", 15_000, seed=11, scenario=scenario)
    assert ingest_files(engine, [csv_path], settings, source="demo").committed
    with db.session_scope(engine) as session:
        session.add(
            Transition(name=DEMO_TRANSITION, go_live=scenario.go_live, scope={}, created_at=dt.datetime.now(dt.UTC))
        )
    run_analysis(engine, settings, TODAY)
    return engine


def copy_analysis(source: Engine, target: Engine) -> None:
    with source.connect() as reader, target.begin() as writer:
        for model in ANALYSIS_TABLES:
            rows = [dict(row._mapping) for row in reader.execute(select(model.__table__))]
            if rows:
                writer.execute(insert(model.__table__), rows)


@pytest.fixture
def web_settings(database_url: str) -> Settings:
    return load_settings(environ={}, overrides={"database_url": database_url, "secret_key": SECRET})


@pytest.fixture
def app(web_settings: Settings) -> Iterator[Flask]:
    application = create_app(web_settings, {"TESTING": True})
    yield application
    application.extensions["mspmon"].engine.dispose()


@pytest.fixture
def seeded(app: Flask, analysed: Engine) -> Flask:
    """The app with the analysed demo data in its database."""
    copy_analysis(analysed, app.extensions["mspmon"].engine)
    return app


@pytest.fixture
def with_threshold(web_settings: Settings, analysed: Engine, people: People) -> Iterator[Callable[[int], Flask]]:
    """Seeded apps with another anonymity threshold (people share their database)."""
    made: list[Flask] = []

    def make(k: int) -> Flask:
        application = create_app(dataclasses.replace(web_settings, anonymity_min_responses=k), {"TESTING": True})
        copy_analysis(analysed, application.extensions["mspmon"].engine)
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["mspmon"].engine.dispose()


@pytest.fixture
def strict(with_threshold: Callable[[int], Flask]) -> Flask:
    """The seeded app with an anonymity threshold of 300 responses."""
    return with_threshold(300)


@dataclass(frozen=True)
class People:
    """Users of each kind and their API tokens."""

    password: str = PASSWORD
    admin: str = "admin@example.com"
    viewer: str = "viewer@example.com"
    scoped: str = "finland@example.com"
    admin_token: str = ""
    viewer_token: str = ""
    scoped_token: str = ""


@pytest.fixture
def people(app: Flask) -> People:
    engine = app.extensions["mspmon"].engine
    tokens = {}
    with db.session_scope(engine) as session:
        add_user(session, People.admin, PASSWORD, role="admin")
        add_user(session, People.viewer, PASSWORD, role="viewer")
        add_user(session, People.scoped, PASSWORD, role="viewer", scope={"country": ["Finland"]})
        for kind in ("admin", "viewer", "scoped"):
            tokens[f"{kind}_token"] = create_token(session, getattr(People, kind), "tests")[1]
    return People(**tokens)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def csrf() -> Callable[[str], str]:
    """Reads the CSRF token out of a page, as a browser form would send it."""
    return csrf_of


@pytest.fixture
def login(app: Flask) -> Callable[..., FlaskClient]:
    """A test client signed in as the given user (through the login form), on ``app`` or another."""

    def sign_in(email: str, on: Flask | None = None) -> FlaskClient:
        client = (on or app).test_client()
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 302, answer.text
        return client

    return sign_in
