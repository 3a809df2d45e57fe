"""``mspmon serve``, ``mspmon users`` and ``mspmon tokens``: run and open the web view.

``serve`` runs gunicorn in this process (never Flask's development server); each
worker builds its own application, engine and cube cache. No scheduler runs in
web workers: digests have their own process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from config import ConfigError, Settings
from monitor.cli.context import AppContext, parse_scope_option, pass_app, print_json
from monitor.store.db import session_scope
from web.accounts import (
    AccountError,
    add_user,
    create_token,
    disable_user,
    list_tokens,
    list_users,
    remove_user,
    revoke_token,
)
from web.demo import run_demo


class _Server(BaseApplication):  # type: ignore[misc]
    """gunicorn with its options from the command line and the app from our factory."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from web import create_app

        return create_app(self._settings)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="gunicorn worker processes.")
@pass_app
def serve(app: AppContext, host: str, port: int, workers: int) -> None:
    """Run the web view and API with gunicorn."""
    from web import create_app

    app.ready_engine()
    try:
        create_app(app.settings)  # refuses early, with the reason, what workers would refuse
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    app.close()
    click.echo(f"mspmon web view on http://{host}:{port}/ ({workers} workers); Ctrl+C stops it")
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "timeout": 60,
        "accesslog": "-",
        "errorlog": "-",
        "forwarded_allow_ips": "127.0.0.1",
    }
    _Server(app.settings, options).run()


@click.group("users")
def users_group() -> None:
    """People who may sign in to the web view."""


@users_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["viewer", "admin"]), default="viewer", show_default=True)
@click.option("--scope", "scope_items", multiple=True, metavar="DIM=VALUE", help="Limit a viewer to these segments; repeatable.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of a prompt.")
@pass_app
def users_add(app: AppContext, email: str, role: str, scope_items: tuple[str, ...], password_stdin: bool) -> None:
    """Add a user; the password is asked for (never given on the command line)."""
    scope = parse_scope_option(scope_items)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(app.ready_engine()) as session:
            user = add_user(session, email, password, role=role, scope=scope)
            click.echo(f"user {user.email} added as {user.role}")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def users_list(app: AppContext, as_json: bool) -> None:
    """List users."""
    with session_scope(app.ready_engine()) as session:
        rows = [
            {"email": u.email, "role": u.role, "scope": u.scope, "last_login_at": u.last_login_at, "disabled": not u.active}
            for u in list_users(session)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['email']}  {row['role']}{'  (disabled)' if row['disabled'] else ''}  {row['scope'] or ''}")


@users_group.command("disable")
@click.argument("email")
@pass_app
def users_disable(app: AppContext, email: str) -> None:
    """Stop EMAIL signing in: their sessions end now and their tokens stop working."""
    try:
        with session_scope(app.ready_engine()) as session:
            disable_user(session, email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {email} disabled; their sessions and tokens no longer work")


@users_group.command("remove")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def users_remove(app: AppContext, email: str, yes: bool) -> None:
    """Delete EMAIL and their tokens; their sessions end now."""
    if not yes:
        click.confirm(f"Remove {email} and their API tokens?", abort=True)
    try:
        with session_scope(app.ready_engine()) as session:
            remove_user(session, email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {email} removed")


@click.group("tokens")
def tokens_group() -> None:
    """Bearer tokens for the JSON API."""


@tokens_group.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What uses the token, e.g. 'survey feed'.")
@click.option("--days", type=click.IntRange(1, 3650), default=None, help="Expire after this many days.")
@pass_app
def tokens_create(app: AppContext, email: str, name: str, days: int | None) -> None:
    """Create a token acting as the user EMAIL; it is printed once, store it safely."""
    try:
        with session_scope(app.ready_engine()) as session:
            token, text = create_token(session, email, name, days=days)
            click.echo(f"token {token.id} for {email} ({name}):", err=True)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text)


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def tokens_list(app: AppContext, as_json: bool) -> None:
    """List tokens (their first characters only)."""
    with session_scope(app.ready_engine()) as session:
        rows = [
            {
                "id": t.id,
                "user": t.user.email,
                "name": t.name,
                "hint": t.hint + "...",
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "expires_at": t.expires_at,
                "revoked": t.revoked_at is not None,
            }
            for t in list_tokens(session)
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        click.echo(f"{row['id']}  {row['hint']}  {row['user']}  {row['name']}  {state}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@pass_app
def tokens_revoke(app: AppContext, token_id: int) -> None:
    """Revoke a token by its id (see `mspmon tokens list`)."""
    try:
        with session_scope(app.ready_engine()) as session:
            revoke_token(session, token_id)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"token {token_id} revoked")


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("mspmon-demo"), show_default=True, help="Folder for the demo database and files (recreated).")
@click.option("--rows", type=click.IntRange(1000, 5_000_000), default=60_000, show_default=True, help="Responses to generate.")
@click.option("--seed", type=int, default=42, show_default=True)
def demo(directory: Path, rows: int, seed: int) -> None:
    """Generate two years of realistic survey data into a fresh SQLite database."""
    run_demo(directory, rows=rows, seed=seed, echo=click.echo)
