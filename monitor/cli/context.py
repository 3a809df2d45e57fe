"""What every ``mspmon`` command needs: validated settings and a lazily built engine.

Its own module so that command groups defined in other areas (``web.cli``,
``notifications.cli``) can take it without importing the main command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from config import Settings
from config.settings import database_error
from monitor.scope import Scope, ScopeError
from monitor.store import db


@dataclass
class AppContext:
    """What every command needs, built once from the validated settings."""

    settings: Settings
    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The engine, connected once: a database that cannot be opened is a one-line error naming database_url."""
        if self._engine is None:
            url = self.settings.database_url
            try:
                engine = db.make_engine(url)
                with engine.connect():
                    pass
            except (ArgumentError, ImportError, OperationalError, InterfaceError) as exc:
                raise click.ClickException(str(database_error(url, exc))) from None
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def ready_engine(self) -> Engine:
        """The engine, after checking that migrations have been applied."""
        try:
            db.require_current_schema(self.engine)
        except db.SchemaOutOfDate as exc:
            raise click.ClickException(str(exc)) from None
        return self.engine


pass_app = click.make_pass_decorator(AppContext)


def print_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def parse_scope_option(items: tuple[str, ...]) -> dict[str, list[str]]:
    """``--scope name=value`` options as the stored scope; a bad item is a usage error."""
    try:
        return Scope.parse(items).as_dict()
    except ScopeError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
