"""Who is asking, and may they: sessions for pages, bearer tokens for the API, CSRF.

Pages use a signed session cookie holding the user id; every unsafe request to a
page must carry the session's CSRF token in a form field. The API never reads the
session cookie, only an ``Authorization: Bearer`` token, so a third-party site
cannot make a browser call it: that is why it needs no CSRF token.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from monitor.store.app_models import User
from web.accounts import verify_token
from web.db import get_db

CSRF_FIELD = "csrf_token"
SESSION_GENERATION = "generation"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
View = TypeVar("View", bound=Callable[..., Any])

# Pages may only load what the app serves itself; charts are inline SVG markup.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app: Flask) -> None:
    app.before_request(_load_user)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token


def is_api_request() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def _load_user() -> None:
    g.user = None
    if is_api_request():
        header = request.headers.get("Authorization", "")
        scheme, _, text = header.partition(" ")
        if scheme.lower() == "bearer" and text.strip():
            g.user = verify_token(get_db(), text.strip())
            get_db().commit()  # last_used_at
        return
    user_id = session.get("user_id")
    if isinstance(user_id, int):
        user = get_db().get(User, user_id)
        # Signed out, disabled or removed since: the cookie is still signed, but dead.
        if user is not None and user.active and session.get(SESSION_GENERATION) == user.session_generation:
            g.user = user
        else:
            session.pop("user_id", None)


def csrf_token() -> str:
    """The session's CSRF token, created on first use.

    While a page is rendered to be kept (``web.cache``), forms get a placeholder
    instead, which each response replaces with its own session's token.
    """
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return g.get("csrf_placeholder") or session[CSRF_FIELD]


def _check_csrf() -> None:
    if request.method not in UNSAFE_METHODS or is_api_request():
        return
    if request.routing_exception is not None:
        return  # no such page or method (404/405): say that, not "bad form token"
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(str(expected), given):
        abort(400, description="The form's security token is missing or out of date: reload the page and try again.")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not is_api_request() and request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def login_required(view: View) -> View:
    """Pages: send anonymous visitors to the login page; API: 401."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            if is_api_request():
                abort(401, description="a valid bearer token is required: Authorization: Bearer mspm_...")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def admin_required(view: View) -> View:
    """Like ``login_required``, and the user must be an admin (403 otherwise)."""

    @functools.wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not g.user.is_admin:
            abort(403, description="only admins can do this")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after login; anything else goes to the overview.

    Browsers drop tabs and line breaks from URLs and read a backslash as ``/``, so
    ``/%09/evil.example`` or ``/%5Cevil.example`` would leave the site: any control
    character is refused, and the check runs on the form a browser would follow.
    """
    if not target or any(unicodedata.category(ch) == "Cc" for ch in target):
        return url_for("transitions.overview")
    followed = target.replace("\\", "/")
    parts = urlsplit(followed)
    if not followed.startswith("/") or followed.startswith("//") or parts.scheme or parts.netloc:
        return url_for("transitions.overview")
    return target


def log_in(user: User) -> Response:
    session.clear()
    session["user_id"] = user.id
    session[SESSION_GENERATION] = user.session_generation
    session.permanent = True
    return redirect(safe_next(request.args.get("next")))
