"""Chart helpers, on hand-made inputs."""

from __future__ import annotations

from web.charts import heat_class, sparkline, trend_chart


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
