"""The disclosure rules on small tables whose answers are known."""

from __future__ import annotations

import numpy as np

from monitor.analysis import disclosure


def _counts(rows: dict[str, list[int]]) -> disclosure.CellCounts:
    """One dimension, ``country``, with per-period counts."""
    keys = list(rows)
    stats = np.array([rows[key] for key in keys], dtype=float)

    def counts(by: tuple[str, ...]) -> tuple[list[tuple[str, ...]], np.ndarray]:
        if not by:
            return [()], stats.sum(axis=0, keepdims=True)
        return [(key,) for key in keys], stats

    return disclosure.CellCounts.read(["country"], counts)


def test_one_small_segment_takes_the_smallest_other_with_it():
    cells = _counts({"Finland": [60, 60], "Sweden": [20, 20], "Iceland": [2, 2], "Spain": [90, 90]})
    pattern = disclosure.protection(cells, {"baseline": (0, 0), "since_go_live": (1, 1)}, 0, 10).pattern
    assert not pattern.shown((("country", "Iceland"),))
    assert not pattern.shown((("country", "Sweden"),))  # the complement: Iceland is not everyone minus the rest
    assert pattern.shown((("country", "Finland"),)) and pattern.shown((("country", "Spain"),))
    assert pattern.view_shown({}) and not pattern.view_shown({"country": ("Finland", "Iceland")})


def test_a_table_with_nothing_small_hides_nothing():
    cells = _counts({"Finland": [60, 60], "Sweden": [20, 20]})
    pattern = disclosure.protection(cells, {"baseline": (0, 0), "since_go_live": (1, 1)}, 0, 10).pattern
    assert pattern.view_shown({"country": ("Finland",)}) and pattern.view_shown({"country": ("Sweden",)})


def test_a_lone_small_week_inside_a_window_takes_another_week_with_it():
    weekly = np.array([40, 40, 3, 40, 40, 40])
    shown = disclosure.protect_series(weekly, [(0, 5)], 0, 10)
    assert not shown[2] and (~shown).sum() == 2
    # Outside every window a small week gives nothing away.
    assert disclosure.protect_series(weekly, [(3, 5)], 0, 10).tolist() == [True, True, False, True, True, True]


def test_a_tree_leaves_no_small_remainder():
    entry = {
        "n_before": 100, "n_after": 100, "segments": [],
        "tree": {"segment": {}, "n_before": 100, "n_after": 100, "children": [
            {"segment": {"country": "Finland"}, "n_before": 60, "n_after": 60},
            {"segment": {"country": "Sweden"}, "n_before": 35, "n_after": 35},
            {"segment": {"country": "other"}, "n_before": 5, "n_after": 5},
        ]},
    }
    shown = disclosure.protect_finding(entry, 10)
    assert shown is not None
    names = [c["segment"]["country"] for c in shown["tree"]["children"]]
    # Sweden goes (5 left over would be "other" alone); "other" is no longer all that is left: not shown.
    assert names == ["Finland"]
    assert disclosure.protect_finding({**entry, "n_after": 9}, 10) is None
