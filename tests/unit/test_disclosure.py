"""The disclosure rules on small tables whose answers are known."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

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


def _qr_determined(matrix: np.ndarray) -> set[int]:
    """The audit's former definition, kept as the reference: an unknown is determined when its unit
    vector lies in the row space, i.e. its row of an orthonormal basis (pivoted dense QR) has norm one."""
    q, r, _ = scipy.linalg.qr(matrix.T, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = int((diagonal > max(float(diagonal.max()), 1.0) * 1e-10).sum()) if len(diagonal) else 0
    return {int(j) for j in np.flatnonzero((q[:, :rank] ** 2).sum(axis=1) > 1 - 1e-8)}


@st.composite
def _systems(draw: st.DrawFn) -> np.ndarray:
    """Small sparse 0/+-1 systems, some rows sums or differences of others (dependent equations,
    cells that only a combination gives away)."""
    unknowns = draw(st.integers(1, 9))
    base = draw(arrays(np.int64, (draw(st.integers(1, 9)), unknowns), elements=st.sampled_from([0, 0, 0, 1, 1, -1])))
    pairs = draw(st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, len(base) - 1), st.sampled_from([1, -1])), max_size=4))
    extra = [base[a] + sign * base[b] for a, b, sign in pairs]
    return np.vstack([base, *extra]) if extra else base


@settings(max_examples=400, deadline=None)
@given(_systems())
def test_the_exact_audit_finds_what_the_dense_qr_finds(matrix: np.ndarray) -> None:
    rows = [{int(j): int(v) for j, v in enumerate(row) if v} for row in matrix]
    system = disclosure._Elimination(rows)
    assert set(system.determined) == _qr_determined(matrix.astype(float))
    if system.determined:
        # The derivation behind a leak is the least-squares (least-norm) one.
        targets = np.zeros((matrix.shape[1], len(system.determined)))
        targets[system.determined, range(len(system.determined))] = 1.0
        expected, *_ = np.linalg.lstsq(matrix.T.astype(float), targets, rcond=None)
        assert np.allclose(system.least_norm(system.determined), expected, atol=1e-9)


def test_a_cell_that_only_two_equations_together_give_is_determined():
    # x + y + z and y + z published: x follows, y and z do not.
    system = disclosure._Elimination([{0: 1, 1: 1, 2: 1}, {1: 1, 2: 1}])
    assert system.determined == [0]
    assert np.allclose(system.least_norm([0])[:, 0], [1.0, -1.0])
