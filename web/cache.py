"""Rendered pages, kept per process until anything they show may have changed.

A page depends on the latest analysis (findings, report, cubes), on labels,
silences (and the date, as silences expire), imports, transitions, and on who
asks (role, scope, and the session's CSRF token, filled in on the way out). One small query
reads the versions of all of them; a page is served again from memory only when
every one is unchanged. Rendering a large page costs 5-15 ms of CPU, the check
about one; under load that is the difference between queueing and not.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, make_response, request, session
from sqlalchemy import func, select

from monitor.analysis.cube import SegmentCube
from monitor.store.models import (
    AnalysisRun,
    FindingLabel,
    ImportRun,
    Silence,
    Transition,
)
from web.db import get_db
from web.security import csrf_token

MAX_PAGES = 512
PLACEHOLDER = "csrf-" + secrets.token_hex(16)  # stands for the session's token in kept pages
View = TypeVar("View", bound=Callable[..., Any])


class PageCache:
    """The most recently used rendered pages of one application (per process)."""

    def __init__(self, size: int = MAX_PAGES) -> None:
        self._size = size
        self._pages: OrderedDict[tuple[Any, ...], tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[bytes, str] | None:
        with self._lock:
            hit = self._pages.get(key)
            if hit is not None:
                self._pages.move_to_end(key)
            return hit

    def put(self, key: tuple[Any, ...], page: tuple[bytes, str]) -> None:
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)


def init_app(app: Flask) -> None:
    app.extensions["mspmon.pages"] = PageCache()


def _versions() -> tuple[Any, ...]:
    row = get_db().execute(
        select(
            select(func.max(AnalysisRun.id)).scalar_subquery(),
            select(func.max(SegmentCube.built_at)).scalar_subquery(),
            select(func.max(FindingLabel.id)).scalar_subquery(),
            select(func.max(Silence.id)).scalar_subquery(),
            select(func.max(ImportRun.id)).scalar_subquery(),
            select(func.max(Transition.id)).scalar_subquery(),
        )
    ).one()
    return (*row, dt.date.today())


def cached_page(view: View) -> View:
    """Serve a GET page from memory while nothing it shows has changed.

    Pages are kept per user, not per session: the session's CSRF token is put
    into the kept page's forms on the way out.
    """

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "_flashes" in session:  # a one-off message: render it, do not keep it
            return view(*args, **kwargs)
        user = g.user
        token = csrf_token().encode()
        key = (request.full_path, user.id, user.role, json.dumps(user.scope, sort_keys=True), _versions())
        pages: PageCache = current_app.extensions["mspmon.pages"]
        hit = pages.get(key)
        if hit is None:
            g.csrf_placeholder = PLACEHOLDER
            try:
                response = make_response(view(*args, **kwargs))
            finally:  # error pages rendered after an abort get the real token
                g.csrf_placeholder = None
            if response.status_code != 200:
                response.set_data(response.get_data().replace(PLACEHOLDER.encode(), token))
                return response
            hit = (response.get_data(), response.mimetype or "text/html")
            pages.put(key, hit)
        return Response(hit[0].replace(PLACEHOLDER.encode(), token), mimetype=hit[1])

    return wrapped  # type: ignore[return-value]
