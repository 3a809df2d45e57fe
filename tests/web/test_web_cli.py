"""``mspmon users``, ``mspmon tokens`` and ``mspmon serve``'s refusals."""

from __future__ import annotations

import json

from monitor.cli.commands import main
from monitor.store import db
from web.accounts import authenticate, verify_token


def test_users_add_reads_the_password_from_stdin_and_stores_only_its_hash(cli, database_url):
    answer = cli.invoke(main, ["users", "add", "Ops@Example.com", "--role", "admin", "--password-stdin"], input="s3cret-enough-pw\n")
    assert answer.exit_code == 0, answer.output
    assert "ops@example.com added as admin" in answer.output
    engine = db.make_engine(database_url)
    with db.session_scope(engine) as session:
        user = authenticate(session, "ops@example.com", "s3cret-enough-pw")
        assert user is not None and "s3cret" not in user.password_hash
        assert authenticate(session, "ops@example.com", "wrong") is None
    engine.dispose()
    again = cli.invoke(main, ["users", "add", "ops@example.com", "--password-stdin"], input="s3cret-enough-pw\n")
    assert again.exit_code != 0 and "already exists" in again.output


def test_users_add_refuses_short_passwords_and_scoped_admins(cli):
    short = cli.invoke(main, ["users", "add", "a@example.com", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    scoped = cli.invoke(
        main, ["users", "add", "b@example.com", "--role", "admin", "--scope", "country=Finland", "--password-stdin"],
        input="long-enough-pw\n",
    )
    assert scoped.exit_code != 0 and "limits viewers" in scoped.output
    viewer = cli.invoke(
        main, ["users", "add", "c@example.com", "--scope", "country=Finland", "--password-stdin"], input="long-enough-pw\n"
    )
    assert viewer.exit_code == 0
    malformed = cli.invoke(main, ["users", "add", "d@example.com", "--scope", "Finland", "--password-stdin"], input="x" * 12 + "\n")
    assert malformed.exit_code != 0 and "dimension=value" in malformed.output
    listed = cli.invoke(main, ["users", "list", "--json"])
    assert json.loads(listed.output)[0]["scope"] == {"country": ["Finland"]}


def test_tokens_are_shown_once_listed_by_hint_and_revocable(cli, database_url):
    cli.invoke(main, ["users", "add", "feed@example.com", "--role", "admin", "--password-stdin"], input="long-enough-pw\n")
    created = cli.invoke(main, ["tokens", "create", "feed@example.com", "--name", "survey feed"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("mspm_") and len(token) > 40
    listed = cli.invoke(main, ["tokens", "list"])
    assert token not in listed.output and token[:9] in listed.output and "active" in listed.output
    engine = db.make_engine(database_url)
    with db.session_scope(engine) as session:
        assert verify_token(session, token).email == "feed@example.com"
    assert cli.invoke(main, ["tokens", "revoke", "1"]).exit_code == 0
    with db.session_scope(engine) as session:
        assert verify_token(session, token) is None
    engine.dispose()
    assert "revoked" in cli.invoke(main, ["tokens", "list"]).output
    assert cli.invoke(main, ["tokens", "revoke", "99"]).exit_code != 0
    unknown = cli.invoke(main, ["tokens", "create", "nobody@example.com", "--name", "x"])
    assert unknown.exit_code != 0 and "no user" in unknown.output


def test_serve_refuses_to_start_without_a_secret_key(cli):
    answer = cli.invoke(main, ["serve", "--port", "8999"])
    assert answer.exit_code != 0
    assert "secret_key" in answer.output and "MSPMON_SECRET_KEY" in answer.output
