"""Pages: the overview, a transition, and its segment drill-down."""

from __future__ import annotations

from flask import Blueprint, render_template

from web import params, queries
from web.cache import cached_page
from web.security import login_required

bp = Blueprint("transitions", __name__)


@bp.route("/")
@login_required
@cached_page
def overview() -> str:
    return render_template("transitions/overview.html", **queries.overview())


@bp.route("/transitions/<int:transition_id>")
@login_required
@cached_page
def show(transition_id: int) -> str:
    transition = params.transition(transition_id)
    metric = params.metric()
    detail = queries.transition_detail(transition, metric)
    return render_template("transitions/show.html", t=detail, metric=metric, it=queries.it_view(transition, {}))


@bp.route("/transitions/<int:transition_id>/segments")
@login_required
@cached_page
def segments(transition_id: int) -> str:
    transition = params.transition(transition_id)
    query = params.segment_query()
    view = queries.segment_view(transition, *query)
    return render_template("transitions/segments.html", v=view, it=queries.it_view(transition, query[0]))
