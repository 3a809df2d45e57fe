"""The transition status the web view and the digests share, on hand-made inputs."""

from __future__ import annotations

from monitor.analysis.transitions import TransitionStatus, transition_status


def window(delta: float, low: float, high: float, direction: str) -> dict:
    return {"delta": delta, "ci_low": low, "ci_high": high, "direction": direction}


WORSE = window(-20, -25, -15, "worse")
SLIGHT = window(-2, -6, 2, "worse")


def window(delta: float, low: float, high: float, direction: str) -> dict:
    return {"delta": delta, "ci_low": low, "ci_high": high, "direction": direction}


WORSE = window(-20, -25, -15, "worse")
SLIGHT = window(-2, -6, 2, "worse")


def test_status_reads_the_windows_and_recovery():
    steady = {"happiness": {"early": SLIGHT, "since_go_live": SLIGHT}, "lost_time": {}}
    assert transition_status(steady) == "on_target"
    back = {"happiness": {"early": WORSE, "recent": SLIGHT, "recovered_from": "2025-11-03"}, "lost_time": {}}
    assert transition_status(back) == "recovered"
    better = {"happiness": {"early": WORSE, "recent": SLIGHT, "recovered_from": None}, "lost_time": {}}
    assert transition_status(better) == "recovering"
    still = {"happiness": {"early": WORSE, "recent": window(-18, -22, -14, "worse"), "recovered_from": None}, "lost_time": {}}
    assert transition_status(still) == "dipping"
    lost_time_up = {"happiness": {}, "lost_time": {"settled": window(20, 10, 30, "worse"), "recent": window(19, 9, 29, "worse")}}
    assert transition_status(lost_time_up) == "dipping"


def test_open_root_findings_keep_a_transition_recovering():
    # Everyone back, but a root finding inside the transition is still open: a segment is still worse.
    back = {"happiness": {"early": WORSE, "recent": SLIGHT, "recovered_from": "2025-11-03"}, "lost_time": {}}
    assert transition_status(back, open_findings=1) == TransitionStatus.RECOVERING
    steady = {"happiness": {"early": SLIGHT, "since_go_live": SLIGHT}, "lost_time": {}}
    assert transition_status(steady, open_findings=2) == TransitionStatus.RECOVERING
    assert not TransitionStatus.RECOVERING.on_track and TransitionStatus.RECOVERED.on_track


def test_no_figures_is_no_data():
    assert transition_status({}) == TransitionStatus.NO_DATA
