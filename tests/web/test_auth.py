"""Sign-in, roles, CSRF and the application's refusals to start."""

from __future__ import annotations

import dataclasses

import pytest

from config import ConfigError, load_settings
from web import create_app

PAGES = ["/", "/transitions/1", "/transitions/1/segments", "/findings", "/findings/F000"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(app, path):
    answer = app.test_client().get(path)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=")


def test_login_with_the_right_password_opens_the_overview_and_logout_closes_it(app, people, csrf):
    client = app.test_client()
    page = client.get("/login?next=/findings")
    answer = client.post(
        "/login?next=/findings", data={"email": "ADMIN@example.com ", "password": people.password, "csrf_token": csrf(page.text)}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/findings"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    overview = client.get("/")
    assert overview.status_code == 200 and "admin@example.com" in overview.text
    assert client.post("/logout", data={"csrf_token": csrf(overview.text)}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_answer(app, people, csrf):
    client = app.test_client()
    token = csrf(client.get("/login").text)
    wrong = client.post("/login", data={"email": people.admin, "password": "nope", "csrf_token": token})
    unknown = client.post("/login", data={"email": "who@example.com", "password": people.password, "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert client.get("/").status_code == 302


def test_login_never_redirects_to_another_site(app, people, csrf):
    client = app.test_client()
    token = csrf(client.get("/login").text)
    answer = client.post(
        "/login?next=//evil.example/x", data={"email": people.admin, "password": people.password, "csrf_token": token}
    )
    assert answer.headers["Location"] == "/"


def test_forms_without_the_csrf_token_are_refused(app, people, login):
    client = login(people.admin)
    for path in ("/logout", "/findings/F000/label", "/findings/F000/silence"):
        answer = client.post(path, data={"label": "confirmed"})
        assert answer.status_code == 400, path
        assert "security token" in answer.text
    wrong = client.post("/logout", data={"csrf_token": "forged"})
    assert wrong.status_code == 400
    assert app.test_client().post("/login", data={"email": people.admin, "password": people.password}).status_code == 400


def test_pages_send_security_headers(app, people, login):
    answer = login(people.viewer).get("/")
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_the_app_refuses_to_start_without_a_secret_key(database_url):
    with pytest.raises(ConfigError, match="secret_key"):
        create_app(load_settings(environ={}, overrides={"database_url": database_url}))
    with pytest.raises(ConfigError, match="secret_key: must have at least 16"):  # refused when loaded
        create_app(load_settings(environ={}, overrides={"database_url": database_url, "secret_key": "short"}))
    with pytest.raises(ConfigError, match="too short"):  # settings built in code are checked too
        create_app(dataclasses.replace(load_settings(environ={}, overrides={"database_url": database_url}), secret_key=" " * 20))


def test_the_app_refuses_an_unmigrated_database(tmp_path, web_settings):
    settings = load_settings(environ={}, overrides={"database_url": f"sqlite:///{tmp_path / 'new.db'}", "secret_key": web_settings.secret_key})
    with pytest.raises(ConfigError, match="mspmon db upgrade"):
        create_app(settings)


def test_session_cookies_are_secure_behind_https(web_settings):
    settings = dataclasses.replace(web_settings, base_url="https://mspmon.example")
    app = create_app(settings)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["mspmon"].engine.dispose()
