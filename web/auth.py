"""Login and logout."""

from __future__ import annotations

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

from web.accounts import authenticate
from web.db import get_db
from web.security import log_in, safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if request.method == "GET" and g.user is not None:
        return redirect(safe_next(request.args.get("next")))
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        user = authenticate(get_db(), email, request.form.get("password", ""))
        if user is not None:
            get_db().commit()
            return log_in(user)
        error = "Wrong email or password."
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, email=request.form.get("email", "")), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
