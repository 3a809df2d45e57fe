"""Status rules and chart helpers, on hand-made inputs."""

from __future__ import annotations

from web.charts import heat_class, sparkline, trend_chart
from web.figures import status


def window(delta: float, low: float, high: float, direction: str) -> dict:
    return {"delta": delta, "ci_low": low, "ci_high": high, "direction": direction}


WORSE = window(-20, -25, -15, "worse")
SLIGHT = window(-2, -6, 2, "worse")


def test_status_reads_the_windows_and_recovery():
    steady = {"happiness": {"early": SLIGHT, "since_go_live": SLIGHT}, "lost_time": {}}
    assert status(steady) == "on_target"
    back = {"happiness": {"early": WORSE, "recent": SLIGHT, "recovered_from": "2025-11-03"}, "lost_time": {}}
    assert status(back) == "recovered"
    better = {"happiness": {"early": WORSE, "recent": SLIGHT, "recovered_from": None}, "lost_time": {}}
    assert status(better) == "recovering"
    still = {"happiness": {"early": WORSE, "recent": window(-18, -22, -14, "worse"), "recovered_from": None}, "lost_time": {}}
    assert status(still) == "dipping"
    lost_time_up = {"happiness": {}, "lost_time": {"settled": window(20, 10, 30, "worse"), "recent": window(19, 9, 29, "worse")}}
    assert status(lost_time_up) == "dipping"


def test_heat_classes_follow_each_metrics_polarity():
    assert heat_class("happiness", 50, -16) == "heat-bad-3"
    assert heat_class("happiness", 50, 6) == "heat-good-1"
    assert heat_class("happiness", 50, 2) == "heat-0"
    assert heat_class("lost_time", 60, 15) == "heat-bad-2"  # +25%
    assert heat_class("lost_time", 60, -7) == "heat-good-1"


def test_hidden_weeks_break_the_lines():
    assert sparkline([1.0, None]) is None
    line = sparkline([1.0, 2.0, None, None, 3.0, 4.0])
    assert line is not None and line["path"].count("M") == 2
    points = [
        {"week": week, "value": 50.0, "ci_low": 45.0, "ci_high": 55.0, "n": 100}
        for week in ("2025-01-06", "2025-01-13", "2025-02-03", "2025-02-10")
    ]
    chart = trend_chart(points, go_live="2025-01-20", baseline={"value": 50.0, "ci": [48.0, 52.0]}, changes=[])
    assert chart is not None and len(chart.lines) == 2 and chart.go_live is not None and chart.baseline
