"""What a root finding shows of its attribution: other names, other metrics of the same cause."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.analysis.finding_text import root_summary
from monitor.analysis.finding_view import (
    Alias,
    Explanation,
    FindingFormatError,
    FindingView,
)


def _view(explanation: dict) -> FindingView:
    day = dt.date(2025, 3, 3)
    return FindingView(
        id="F1", metric="happiness", segment={"assignment_group": "MSP-L1", "service": "Laptop"}, change_date=day,
        direction="worse", before=30.0, after=5.0, delta=-25.0, ci_low=-31.0, ci_high=-19.0, n_before=400,
        n_after=300, p_value=1e-6, recovered_on=None, found_by="search", known_date=None, shape="step",
        ramp_end=None, slope=None, slope_ci=None, ended_on=None, ended_reason=None, transition=None,
        first_reported=day, last_reported=day, state="new", root=True, root_id=None, scope="localized",
        explains=0.4, impact=-7500.0, explanation=Explanation.from_json(explanation),
    )


def test_alias_text_says_which_window_the_other_name_holds_in():
    assert Alias({"assignment_group": "SD-Internal-DE", "service": "Laptop"}, "before").text() == (
        "= SD-Internal-DE x Laptop before go-live")
    assert Alias({"country": "DE"}, "both").text() == "= DE"


def test_a_root_shows_its_other_names_and_the_other_metrics_folded_under_it():
    view = _view({
        "aliases": [{"segment": {"assignment_group": "SD-Internal-DE", "service": "Laptop"}, "windows": "before"}],
        "related": [{"metric": "lost_time", "segment": {"assignment_group": "MSP-L1", "service": "Laptop"},
                     "before": 38.0, "after": 55.0, "delta": 17.0, "ci_low": 9.0, "ci_high": 26.0,
                     "n_before": 300, "n_after": 220}],
    })
    text = "\n".join(root_summary(view))
    assert "= SD-Internal-DE x Laptop before go-live" in text
    assert "same cause: lost_time 38.0 -> 55.0 (+17.0)" in text
    assert view.as_dict()["related"][0]["metric"] == "lost_time"


def test_an_unknown_key_in_a_related_change_fails_loudly():
    with pytest.raises(FindingFormatError, match="RelatedChange"):
        Explanation.from_json({"related": [{"metric": "lost_time", "segment": {}, "mystery": 1}]})
