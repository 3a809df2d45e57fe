"""Login and logout."""

from __future__ import annotations

import math

from flask import (
    Blueprint,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from web.accounts import authenticate, end_sessions, throttled_for
from web.db import get_db
from web.security import log_in, safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int, dict[str, str]]:
    if request.method == "GET" and g.user is not None:
        return redirect(safe_next(request.args.get("next")))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        email = request.form.get("email", "")
        db = get_db()
        wait = throttled_for(db, email, request.remote_addr)
        if wait is not None:
            # Refused before the password is checked: during a lockout even the right one waits.
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            error, status = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.", 429
            headers = {"Retry-After": str(math.ceil(wait.total_seconds()))}
        else:
            user = authenticate(db, email, request.form.get("password", ""), address=request.remote_addr)
            db.commit()  # the failure counts as much as the success
            if user is not None:
                return log_in(user)
            error, status = "Wrong email or password.", 401
    return render_template("auth/login.html", error=error, email=request.form.get("email", "")), status, headers


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    if g.user is not None:
        end_sessions(g.user)  # the cookie, if kept or copied, no longer works
        get_db().commit()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
