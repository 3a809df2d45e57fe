"""The web view and JSON API: a Flask application factory, one blueprint per area.

Pages and the API only read stored analysis results (the latest run's report,
findings and the per-segment cubes); the only writes are labels, silences and
subscriptions, through the modules that own them, and ``POST /api/responses``,
through the same import path as files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from config import ConfigError, Settings, load_settings
from config.settings import MIN_SECRET_KEY_LENGTH

MAX_BODY_BYTES = 32 << 20  # a JSON import of ~100k responses; larger batches go through files


MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` limited to the ids the id columns can hold.

    The columns are ``Integer``: 32-bit on PostgreSQL, which refuses a larger
    parameter ("integer out of range"), 64-bit on SQLite, so 2**31 - 1 bounds both.
    """

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits, min, max, signed)


def create_app(settings: Settings | None = None, test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application from validated settings (read from the environment if none)."""
    settings = settings or load_settings()
    if len(settings.secret_key.strip()) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            "secret_key: the web view signs its session cookies with it and it is "
            f"{'not set' if not settings.secret_key else 'too short'}; set MSPMON_SECRET_KEY (or "
            f"secret_key in the MSPMON_CONFIG file) to at least {MIN_SECRET_KEY_LENGTH} random characters, "
            "e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    app = Flask(__name__)
    # Every <int:...> in a route is an id: a number no id column can hold is no page
    # (404), instead of an overflow in the database driver (500).
    app.url_map.converters["int"] = IdConverter
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Browsers drop Secure cookies over plain http, so the flag follows the
        # public address: on behind https in production, off for a local demo.
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),
        SESSION_REFRESH_EACH_REQUEST=False,  # no new cookie on every page: less work per request
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order

    from web import (
        api,
        auth,
        cache,
        db,
        errors,
        findings,
        security,
        subscriptions,
        templating,
        transitions,
    )

    db.init_app(app, settings)
    cache.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(transitions.bp)
    app.register_blueprint(findings.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(subscriptions.bp)
    return app
