"""Charts for digests, drawn from data with matplotlib's Agg canvas into PNG bytes.

``Figure`` plus ``FigureCanvasAgg`` rather than ``pyplot``: no global figure state
and no GUI backend, so the scheduler thread and the web worker can both draw.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, MonthLocator
from matplotlib.figure import Figure

HAPPINESS_COLOUR = "#1d4ed8"
LOST_TIME_COLOUR = "#b45309"
CHANGE_COLOUR = "#dc2626"
MUTED = "#6b7280"


@dataclass(frozen=True)
class ChartSeries:
    """Weekly values of one transition (or slice); NaN where too few answered to show."""

    title: str
    weeks: tuple[dt.date, ...]
    happiness: np.ndarray
    lost_time: np.ndarray
    happiness_baseline: float | None
    lost_time_baseline: float | None
    go_live: dt.date
    changes: tuple[tuple[dt.date, str], ...]  # (change date, metric) of detected changes


def _panel(axes, weeks, values, colour, baseline, label, unit) -> None:  # type: ignore[no-untyped-def]
    axes.plot(weeks, values, color=colour, linewidth=1.6, marker="o", markersize=2.2)
    if baseline is not None and np.isfinite(baseline):
        axes.axhline(baseline, color=MUTED, linewidth=0.8, linestyle=":")
        axes.annotate(
            "baseline", (weeks[0], baseline), xytext=(2, 3), textcoords="offset points", fontsize=7, color=MUTED
        )
    axes.set_ylabel(f"{label}\n({unit})", fontsize=8, color=colour)
    axes.tick_params(labelsize=7, colors="#374151")
    axes.grid(axis="y", color="#e5e7eb", linewidth=0.6)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def transition_chart(series: ChartSeries) -> bytes:
    """Happiness above lost time, go-live and detected changes marked; PNG bytes."""
    figure = Figure(figsize=(6.4, 3.6), dpi=150)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    weeks = np.array(series.weeks, dtype="datetime64[D]")
    _panel(top, weeks, series.happiness, HAPPINESS_COLOUR, series.happiness_baseline, "Happiness", "-100..+100")
    _panel(bottom, weeks, series.lost_time, LOST_TIME_COLOUR, series.lost_time_baseline, "Lost time", "min")
    panels = {"happiness": top, "lost_time": bottom}
    for axes in panels.values():
        axes.axvline(np.datetime64(series.go_live), color="#111827", linewidth=1.0, linestyle="--")
    top.annotate(
        "go-live", (np.datetime64(series.go_live), 1.0), xycoords=("data", "axes fraction"),
        xytext=(3, -9), textcoords="offset points", fontsize=7, color="#111827",
    )
    for change_date, metric in series.changes:
        axes = panels.get(metric)
        if axes is None:
            continue
        axes.axvline(np.datetime64(change_date), color=CHANGE_COLOUR, linewidth=0.9, linestyle=":")
        axes.plot([np.datetime64(change_date)], [1.0], marker="v", color=CHANGE_COLOUR, markersize=5,
                  transform=axes.get_xaxis_transform(), clip_on=False)
    bottom.xaxis.set_major_locator(MonthLocator(bymonth=(1, 4, 7, 10)))
    bottom.xaxis.set_major_formatter(DateFormatter("%b %Y"))
    figure.suptitle(series.title, fontsize=9, x=0.01, ha="left", color="#111827")
    figure.subplots_adjust(left=0.12, right=0.98, top=0.9, bottom=0.09, hspace=0.18)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()
