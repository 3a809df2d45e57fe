"""Every failure answers with a status and a clear message, never a traceback.

API requests get ``{"error": {"status", "title", "message"}}``; pages get the
site's error page. Unexpected exceptions are logged in full and answered with a
plain 500.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from monitor.analysis.cube import CubeUnavailable
from web.figures import NotShown
from web.security import is_api_request


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CubeUnavailable, _unavailable)
    app.register_error_handler(NotShown, _unavailable)
    app.register_error_handler(Exception, _unexpected)


def respond(status: int, title: str, message: str) -> tuple[Response | str, int]:
    if is_api_request():
        return jsonify({"error": {"status": status, "title": title, "message": message}}), status
    return render_template("error.html", status=status, title=title, message=message), status


def _http_error(exc: HTTPException) -> tuple[Response | str, int] | Response:
    if exc.code is not None and exc.code < 400:  # redirects raised as exceptions
        return exc.get_response()
    response, status = respond(exc.code or 500, exc.name, exc.description or exc.name)
    if exc.code == 401 and is_api_request():
        response.headers["WWW-Authenticate"] = 'Bearer realm="mspmon"'  # type: ignore[union-attr]
    return response, status


def _unavailable(exc: LookupError) -> tuple[Response | str, int]:
    return respond(404, "Not available", str(exc))


def _unexpected(exc: Exception) -> tuple[Response | str, int]:
    current_app.logger.exception("unhandled error")
    error = InternalServerError()
    return respond(500, error.name, "Something went wrong on our side; the error has been logged.")
