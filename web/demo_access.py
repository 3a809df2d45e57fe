"""The web part of ``mspmon demo``: a config file with a fresh secret key, an admin with a
random password, and the command that serves the demo."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import Engine

from monitor.store.db import session_scope
from web.accounts import add_user

DEMO_ADMIN = "admin@demo.example"


def demo_access(engine: Engine, directory: Path, database_url: str, command: str = "mspmon") -> list[str]:
    """Write ``mspmon.toml`` (database and a generated secret key) and add the demo admin.

    Returns the lines to print: where to sign in and how to start the server.
    Nothing secret lives in code: the key and the password are generated here.
    """
    config = directory / "mspmon.toml"
    config.write_text(
        f'database_url = "{database_url}"\nsecret_key = "{secrets.token_urlsafe(32)}"\n', encoding="utf-8"
    )
    config.chmod(0o600)
    password = secrets.token_urlsafe(12)
    with session_scope(engine) as session:
        add_user(session, DEMO_ADMIN, password, role="admin")
    return [
        "",
        "Web view:",
        f"  MSPMON_CONFIG={config} {command} serve",
        "  then open http://127.0.0.1:8000/ and sign in as",
        f"  {DEMO_ADMIN} / {password}",
    ]
