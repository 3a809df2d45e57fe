"""Issue 13, sign-in: throttling stored in the database, constant-time failures, sign-out that ends
the session on the server, and `mspmon users disable/remove`."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from monitor.cli.commands import main
from web import create_app
from web.accounts import ACCOUNT_THROTTLE, ADDRESS_THROTTLE


def _try(client, csrf, email: str, password: str, address: str = "203.0.113.7"):
    token = csrf(client.get("/login").text)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}, environ_base={"REMOTE_ADDR": address}
    )


def test_wrong_passwords_lock_the_account_and_the_right_one_then_waits(app, people, csrf):
    client = app.test_client()
    for _ in range(ACCOUNT_THROTTLE.limit):
        assert _try(client, csrf, people.admin, "wrong password!").status_code == 401
    locked = _try(client, csrf, people.admin, people.password)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert int(locked.headers["Retry-After"]) > 0
    # from another address too: the account is what is locked
    assert _try(app.test_client(), csrf, people.admin, people.password, address="198.51.100.1").status_code == 429
    # other accounts are not locked
    assert _try(app.test_client(), csrf, people.viewer, people.password).status_code == 302


def test_the_lock_holds_across_workers(app, web_settings, people, csrf):
    """Two apps (two gunicorn workers) share the count through the database."""
    other = create_app(web_settings, {"TESTING": True})
    try:
        for index in range(ACCOUNT_THROTTLE.limit):
            worker = app if index % 2 else other
            assert _try(worker.test_client(), csrf, people.admin, "wrong password!").status_code == 401
        assert _try(other.test_client(), csrf, people.admin, people.password).status_code == 429
        assert _try(app.test_client(), csrf, people.admin, people.password).status_code == 429
    finally:
        other.extensions["mspmon"].engine.dispose()


def test_one_address_trying_many_accounts_is_throttled(app, people, csrf):
    client = app.test_client()
    for index in range(ADDRESS_THROTTLE.limit):
        assert _try(client, csrf, f"guess{index}@example.com", "wrong password!").status_code == 401
    assert _try(client, csrf, people.viewer, people.password).status_code == 429
    assert _try(client, csrf, people.viewer, people.password, address="198.51.100.2").status_code == 302


def test_unknown_and_known_emails_take_the_same_time(app, people, csrf):
    client = app.test_client()

    def timed(email: str) -> float:
        token = csrf(client.get("/login").text)
        start = time.perf_counter()
        client.post("/login", data={"email": email, "password": "wrong password!", "csrf_token": token},
                    environ_base={"REMOTE_ADDR": f"192.0.2.{len(email)}"})
        return time.perf_counter() - start

    known = min(timed(people.viewer) for _ in range(3))
    unknown = min(timed(f"nobody{i}@example.com") for i in range(3))
    # Both run one scrypt check (tens of milliseconds); before, the unknown one skipped it.
    assert unknown > 0.5 * known, (known, unknown)


def test_signing_out_ends_the_session_on_the_server(app, people, login, csrf):
    client = login(people.viewer)
    cookie = client.get_cookie("session").value
    token = csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    answer = replay.get("/findings")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


@pytest.fixture
def runner(database_url) -> CliRunner:
    return CliRunner(env={"MSPMON_DATABASE_URL": database_url, "MSPMON_CONFIG": None})


def test_users_disable_ends_sessions_tokens_and_sign_in(app, people, login, csrf, runner):
    client = login(people.viewer)
    assert client.get("/findings").status_code == 200
    result = runner.invoke(main, ["users", "disable", people.viewer])
    assert result.exit_code == 0, result.output
    assert client.get("/findings").status_code == 302
    api = app.test_client().get("/api/transitions", headers={"Authorization": f"Bearer {people.viewer_token}"})
    assert api.status_code == 401
    assert _try(app.test_client(), csrf, people.viewer, people.password).status_code == 401
    assert "(disabled)" in runner.invoke(main, ["users", "list"]).output
    assert runner.invoke(main, ["users", "disable", "nobody@example.com"]).exit_code == 1


def test_users_remove_deletes_the_user_and_ends_their_session(app, people, login, runner):
    client = login(people.admin)
    assert runner.invoke(main, ["users", "remove", people.admin, "--yes"]).exit_code == 0
    assert client.get("/findings").status_code == 302
    assert people.admin not in runner.invoke(main, ["users", "list"]).output
    assert runner.invoke(main, ["users", "remove", people.admin, "--yes"]).exit_code == 1
