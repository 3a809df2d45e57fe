"""The database for one web application: an engine per process, a session per request.

Like flaskr's ``get_db``: a request opens a session on first use and the teardown
closes it, rolling back anything not committed. The cube cache lives here too, as
it is per process and per database.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config import ConfigError, Settings
from config.settings import database_error
from monitor.analysis.cube import CubeSet, CubeStore
from monitor.store import db


@dataclass(frozen=True)
class WebState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cubes: CubeStore


def init_app(app: Flask, settings: Settings) -> None:
    """Connect, refuse an out-of-date schema at start, and close sessions on teardown."""
    try:
        engine = db.make_engine(settings.database_url)
    except (ArgumentError, ImportError) as exc:
        raise database_error(settings.database_url, exc) from None
    try:
        db.require_current_schema(engine)
    except db.SchemaOutOfDate as exc:
        engine.dispose()
        raise ConfigError(str(exc)) from None
    except (OperationalError, InterfaceError) as exc:
        engine.dispose()
        raise database_error(settings.database_url, exc) from None
    app.extensions["mspmon"] = WebState(settings, engine, db.make_session_factory(engine), CubeStore())
    app.teardown_appcontext(close_db)


def state() -> WebState:
    return current_app.extensions["mspmon"]


def settings() -> Settings:
    return state().settings


def get_db() -> Session:
    if "db" not in g:
        g.db = state().sessions()
    return g.db


def get_cubes() -> CubeSet | None:
    """The latest analysis's cubes (checked once per request), None before any analysis."""
    if "cubes" not in g:
        g.cubes = state().cubes.current(get_db())
    return g.cubes


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
