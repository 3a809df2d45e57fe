"""People and programs allowed into the web view and the API.

Users sign in with a password (stored as a salted scrypt hash, never the password)
and have a role: viewers read, admins also label, silence and manage. A viewer can be
limited to a segment scope (e.g. an MSP sees only its own assignment groups).
Programs use bearer tokens; only a SHA-256 digest of each token is stored, so a
database dump does not hand out working tokens. The token's text is shown once, at
creation.

Signing in is throttled per account and per client address, with the failures
stored in the database (``login_failures``) so that every gunicorn worker sees
the same count; an unknown email costs the same password check as a known one,
so timing does not tell which addresses have accounts. A session carries its
user's ``session_generation``: signing out, disabling or removing a user bumps
it (or deletes the user), which ends every session of that user at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from monitor.store.app_models import ApiToken, LoginFailure, Role, User

TOKEN_PREFIX = "mspm_"
MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class AccountError(ValueError):
    """A user or token that cannot be created or used; the message says why."""


@dataclass(frozen=True)
class Throttle:
    """At most ``limit`` failures per ``window`` for one key; then wait until the oldest expires."""

    limit: int
    window: dt.timedelta


# An account: 5 wrong passwords in 15 minutes lock it for the rest of the window.
# An address: 30 (several people behind one NAT may mistype).
ACCOUNT_THROTTLE = Throttle(5, dt.timedelta(minutes=15))
ADDRESS_THROTTLE = Throttle(30, dt.timedelta(minutes=15))


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AccountError(f"not an email address: {email!r}")
    return email


def add_user(
    session: Session,
    email: str,
    password: str,
    *,
    role: str = Role.VIEWER,
    scope: dict[str, list[str]] | None = None,
    now: dt.datetime | None = None,
) -> User:
    """Register a user; the password is hashed here and never stored as given."""
    email = normalise_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}; use viewer or admin") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if role is Role.ADMIN and scope:
        raise AccountError("a segment scope limits viewers; an admin sees everything")
    if find_user(session, email) is not None:
        raise AccountError(f"a user {email!r} already exists")
    user = User(
        email=email,
        password_hash=generate_password_hash(password),
        role=role.value,
        scope=scope or {},
        created_at=_now(now),
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(func.lower(User.email) == email.strip().lower())).one_or_none()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown emails against, so that they cost what a known one costs."""
    return generate_password_hash(secrets.token_urlsafe(16))


def _throttle_keys(email: str, address: str | None) -> list[tuple[str, Throttle]]:
    keys = [(f"account:{email.strip().lower()[:320]}", ACCOUNT_THROTTLE)]
    if address:
        keys.append((f"address:{address[:64]}", ADDRESS_THROTTLE))
    return keys


def throttled_for(session: Session, email: str, address: str | None, *, now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long until sign-in may be tried again for this email or address; None when it may now."""
    moment = _now(now)
    waits = []
    for key, throttle in _throttle_keys(email, address):
        recent = list(
            session.scalars(
                select(LoginFailure.failed_at)
                .where(LoginFailure.key == key, LoginFailure.failed_at > moment - throttle.window)
                .order_by(LoginFailure.failed_at.desc())
                .limit(throttle.limit)
            )
        )
        if len(recent) >= throttle.limit:
            waits.append(recent[-1] + throttle.window - moment)
    return max(waits) if waits else None


def authenticate(
    session: Session, email: str, password: str, *, address: str | None = None, now: dt.datetime | None = None
) -> User | None:
    """The user when the password matches and the account is active, else None.

    The same answer, and the same work (one scrypt check), for unknown emails,
    disabled users and wrong passwords. Failures are recorded for throttling
    (``throttled_for``); a success clears the account's failures.
    """
    moment = _now(now)
    user = find_user(session, email)
    ok = check_password_hash(user.password_hash if user is not None else _dummy_hash(), password)
    if user is None or not ok or not user.active:
        for key, throttle in _throttle_keys(email, address):
            session.execute(delete(LoginFailure).where(LoginFailure.key == key, LoginFailure.failed_at <= moment - throttle.window))
            session.add(LoginFailure(key=key, failed_at=moment))
        session.flush()
        return None
    account_key = _throttle_keys(email, None)[0][0]
    session.execute(delete(LoginFailure).where(LoginFailure.key == account_key))
    user.last_login_at = moment
    return user


def end_sessions(user: User) -> None:
    """Every session of this user stops working at its next request."""
    user.session_generation = (user.session_generation or 0) + 1


def disable_user(session: Session, email: str, *, now: dt.datetime | None = None) -> User:
    """No more sign-ins, sessions or tokens for this user; the record (and its history) stays."""
    user = find_user(session, email)
    if user is None:
        raise AccountError(f"no user {email!r}")
    if user.disabled_at is None:
        user.disabled_at = _now(now)
    end_sessions(user)
    session.flush()
    return user


def remove_user(session: Session, email: str) -> None:
    """Delete a user and their tokens; their sessions end with them."""
    user = find_user(session, email)
    if user is None:
        raise AccountError(f"no user {email!r}")
    session.delete(user)
    session.flush()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, email: str, name: str, *, days: int | None = None, now: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for a user; returns the row and the token text (shown only now)."""
    user = find_user(session, email)
    if user is None:
        raise AccountError(f"no user {email!r}: add one with `mspmon users add`")
    if not name.strip():
        raise AccountError("a token needs a name saying what uses it")
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = _now(now)
    token = ApiToken(
        user=user,
        name=name.strip(),
        digest=_digest(text),
        hint=text[: len(TOKEN_PREFIX) + 4],
        created_at=created,
        expires_at=None if days is None else created + dt.timedelta(days=days),
    )
    session.add(token)
    session.flush()
    return token, text


def verify_token(session: Session, text: str, *, now: dt.datetime | None = None) -> User | None:
    """The user behind a valid, unrevoked, unexpired token, else None."""
    if not text.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.digest == _digest(text))).one_or_none()
    moment = _now(now)
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= moment):
        return None
    if not token.user.active:
        return None
    token.last_used_at = moment
    return token.user


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int, *, now: dt.datetime | None = None) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise AccountError(f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = _now(now)
    return token

