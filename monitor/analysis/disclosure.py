"""Disclosure control: which cells of the published tables may be shown, for every publisher.

Hiding the segments under ``anonymity_min_responses`` is not enough: a table that
shows its total and all but one segment shows the hidden one too, by subtraction
(Finland minus its visible departments is Legal; everyone's weekly series minus
seven countries' is the eighth's). This module is the statistical disclosure
control every publisher goes through (web pages, the API, ``analyze --json``,
``explain``, digests, charts); it only decides *what* may be shown, from counts.

Method (primary and secondary suppression, as tau-argus and sdcTable do it, with
one suppression pattern shared by every viewer and every table):

* **One family of cells** per set of windows: everyone, each segment of one
  dimension, each pair of dimensions (what the analysis keeps), and for every
  dimension its responses *without* a value (never named, but cells all the same).
  Every published before/after figure is a union of cells of this family, so the
  pattern decides them all at once, whatever the filters, the viewer's scope or the
  publisher: two tables can never disagree about a cell.
* **Primary suppression**: a cell with fewer than ``k`` responses in either window
  is not shown; it is *sensitive* when a window holds 1 to ``k - 1`` of its
  responses (an empty window discloses nobody).
* **Secondary suppression**, repeated until nothing changes: in every published
  partition (everyone split by one dimension; a shown segment split by another
  dimension, both ways round for each pair; a segment split into the finer segments
  nested in it within a window: a country into its locations, before go-live a
  service into the in-house groups that alone handled it) and in each window, the
  hidden cells with responses are none, or at least two that add up to ``k`` or more
  whenever one is sensitive. A fast pass then looks for hidden cells that lie on no
  cycle of a two-way table's hidden cells (those are solvable, Gusfield's criterion);
  last, an exact audit solves every equation at once (the hidden cells as unknowns,
  each partition an equation; sparse Gauss-Jordan elimination in rational arithmetic,
  so "comes out exactly" has no tolerance) and, for each sensitive cell that comes
  out exactly, hides the smallest shown cell of the equations it came from (its
  least-norm derivation). A cell is hidden for
  both windows at once; the smallest shown cell goes first.
* **Weekly series**: everyone's weeks under ``k`` are hidden, and more, until no
  union of hidden weeks with 1 to ``k - 1`` responses follows from the shown weeks
  and windows. Per dimension the segments' weeks form a (segments x weeks) table
  whose margins are everyone's shown weeks and the segments' before/after totals; it
  gets the same rules and the two-way check. Series of two dimensions are not shown;
  a view's other windows (early, settled, recent) only when its shown weeks give them.
* **Findings**: a finding is shown only with ``k`` responses on each side; in its
  drill-down tree and named segments, what a node's shown children leave over
  (the node minus them, "other" and responses without a value included) is none
  or at least ``k`` on each side, and "other" is shown only when it is all of that.

What it guarantees, and what it does not, is written in the README ("Anonymity").
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.sparse import bmat, coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

Cell = tuple[tuple[str, str | None], ...]
"""``()`` everyone; ``(("country", "Finland"),)``; ``(("country", "Finland"), ("department", None))`` with no
department. Dimensions in the family's order; ``None`` is "no value"."""

NOT_SHOWN = "not shown: too few responses here, or none"
"""The one message for a segment that has no responses, too few, or is hidden to protect another."""

Counts = Callable[[tuple[str, ...]], tuple[list[tuple[str, ...]], np.ndarray]]
"""``by -> (value combinations, responses per combination and period)``: a cube's ``n`` column."""


@dataclass(frozen=True)
class CellCounts:
    """Responses per period of every cell of the family (read from the cubes or a response table)."""

    dimensions: tuple[str, ...]
    total: np.ndarray  # (periods,)
    cells: dict[Cell, np.ndarray]  # every one- and two-dimension cell, "no value" cells included
    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def read(cls, dimensions: Sequence[str], counts: Counts, pairs: Iterable[tuple[str, str]] = ()) -> CellCounts:
        """Every cell from ``counts``, each "no value" cell as the difference of its margins."""
        dims = tuple(sorted(dimensions))  # one order, whoever reads: the same cells, the same pattern
        _, total = counts(())
        total = np.asarray(total[0], dtype=float)
        cells: dict[Cell, np.ndarray] = {}
        for name in dims:
            keys, stats = counts((name,))
            rows = {((name, key[0]),): np.asarray(stats[i], dtype=float) for i, key in enumerate(keys)}
            cells.update(rows)
            cells[((name, None),)] = _clip(total - sum(rows.values(), np.zeros_like(total)))
        kept = []
        for first, second in pairs:
            if dims.index(first) > dims.index(second):
                first, second = second, first
            kept.append((first, second))
            keys, stats = counts((first, second))
            inside: dict[Cell, np.ndarray] = {
                ((first, a), (second, b)): np.asarray(stats[i], dtype=float) for i, (a, b) in enumerate(keys)
            }
            for (name, other, position) in ((first, second, 0), (second, first, 1)):
                for (cell,) in [c for c in list(cells) if len(c) == 1 and c[0][0] == name]:
                    value = cell[1]
                    if value is None:
                        continue
                    part = sum(
                        (v for key, v in inside.items() if key[position][1] == value and key[1 - position][1] is not None),
                        np.zeros_like(total),
                    )
                    key = ((first, value), (second, None)) if position == 0 else ((first, None), (second, value))
                    inside[key] = _clip(cells[(cell,)] - part)
            known = sum((v for key, v in inside.items() if not (key[0][1] is None and key[1][1] is None)), np.zeros_like(total))
            inside[((first, None), (second, None))] = _clip(total - known)
            cells.update(inside)
        return cls(dims, total, cells, tuple(kept))

    def window(self, first: int, last: int, offset: int) -> dict[Cell, float]:
        """Responses of every cell (everyone as ``()``) between two periods, inclusive."""
        lo, hi = max(first - offset, 0), max(last - offset + 1, 0)
        sums = {cell: float(series[lo:hi].sum()) for cell, series in self.cells.items()}
        sums[()] = float(self.total[lo:hi].sum())
        return sums


def _clip(values: np.ndarray) -> np.ndarray:
    return np.where(np.abs(values) < 1e-9, 0.0, values)


def _order(cell: Cell) -> tuple[Any, ...]:
    return tuple((name, value is None, value or "") for name, value in cell)


@dataclass
class _Tables:
    """The published partitions of a family: (parent cell, its cells)."""

    parts: list[tuple[Cell, list[Cell]]] = field(default_factory=list)
    graphs: list[tuple[str, str, list[Cell], list[Cell], list[Cell]]] = field(default_factory=list)


def _tables(counts: CellCounts) -> _Tables:
    tables = _Tables()
    by_dim: dict[str, list[Cell]] = {}
    for cell in counts.cells:
        if len(cell) == 1:
            by_dim.setdefault(cell[0][0], []).append(cell)
    for name in counts.dimensions:
        tables.parts.append(((), sorted(by_dim.get(name, []), key=_order)))
    for first, second in counts.pairs:
        pair_cells = [c for c in counts.cells if len(c) == 2 and c[0][0] == first and c[1][0] == second]
        for cell in by_dim.get(first, []):
            if cell[0][1] is not None:
                tables.parts.append((cell, sorted((c for c in pair_cells if c[0] == cell[0]), key=_order)))
        for cell in by_dim.get(second, []):
            if cell[0][1] is not None:
                tables.parts.append((cell, sorted((c for c in pair_cells if c[1] == cell[0]), key=_order)))
        tables.graphs.append((first, second, by_dim.get(first, []), by_dim.get(second, []), pair_cells))
    return tables


def _cell(values: Mapping[str, str | None], dimensions: Sequence[str]) -> Cell:
    return tuple((name, values[name]) for name in sorted(values, key=dimensions.index))


def _nested(counts: CellCounts, size: Callable[[Cell], float]) -> list[tuple[Cell, list[Cell]]]:
    """A dimension nested in another within a window (every location in one country; before
    go-live, every in-house group on one service) adds equations the generic tables do not
    have: a country is the sum of its locations, Finland x Legal the sum of Helsinki x Legal,
    Espoo x Legal...; each is a partition like the others."""
    by_dim: dict[str, list[Cell]] = {}
    for cell in counts.cells:
        if len(cell) == 1:
            by_dim.setdefault(cell[0][0], []).append(cell)
    nested: list[tuple[Cell, list[Cell]]] = []
    pair_set = set(counts.pairs)
    for coarse, fine, inside in _nestings(counts, size):
        for a, members in inside.items():
            nested.append((((coarse, a),), [((fine, b),) for b in members]))
            for other in counts.dimensions:
                if other in (coarse, fine):
                    continue
                keys = [tuple(sorted(pair, key=counts.dimensions.index)) for pair in ((coarse, other), (fine, other))]
                if not all(key in pair_set for key in keys):
                    continue
                for (_, x), in by_dim.get(other, []):
                    parent = _cell({coarse: a, other: x}, counts.dimensions)
                    parts = [_cell({fine: b, other: x}, counts.dimensions) for b in members]
                    if parent in counts.cells:
                        nested.append((parent, [c for c in parts if c in counts.cells]))
    return nested


def _nestings(counts: CellCounts, size: Callable[[Cell], float]) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(coarse, fine, coarse value -> its fine values) for each dimension whose every value lies in one
    value of another (and both always have a value together)."""
    found = []
    for first, second in counts.pairs:
        for coarse, fine, position in ((first, second, 0), (second, first, 1)):
            owner: dict[str | None, set[str | None]] = {}
            for cell in counts.cells:
                if len(cell) == 2 and cell[0][0] == first and cell[1][0] == second and size(cell) > 0:
                    owner.setdefault(cell[1 - position][1], set()).add(cell[position][1])
            if owner and all(len(v) == 1 and None not in v for v in owner.values()) and None not in owner:
                inside: dict[str, list[str]] = {}
                for b, (a,) in owner.items():
                    inside.setdefault(a, []).append(b)  # type: ignore[arg-type]
                if any(len(v) > 1 for v in inside.values()) or len(inside) < len(owner):
                    found.append((coarse, fine, {a: sorted(v) for a, v in inside.items()}))  # type: ignore[misc]
    return found


def _bridges(edges: list[tuple[Any, Any]]) -> set[int]:
    """Indices of the edges that lie on no cycle (Tarjan, iterative)."""
    adjacency: dict[Any, list[tuple[Any, int]]] = {}
    for index, (u, v) in enumerate(edges):
        adjacency.setdefault(u, []).append((v, index))
        adjacency.setdefault(v, []).append((u, index))
    order: dict[Any, int] = {}
    low: dict[Any, int] = {}
    found: set[int] = set()
    for start in adjacency:
        if start in order:
            continue
        order[start] = low[start] = len(order)
        stack = [(start, -1, iter(adjacency[start]))]
        while stack:
            node, via, neighbours = stack[-1]
            advanced = False
            for nxt, index in neighbours:
                if index == via:
                    continue
                if nxt in order:
                    low[node] = min(low[node], order[nxt])
                else:
                    order[nxt] = low[nxt] = len(order)
                    stack.append((nxt, index, iter(adjacency[nxt])))
                    advanced = True
                    break
            if not advanced:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        found.add(via)
    return found


@dataclass(frozen=True)
class Pattern:
    """Which cells of a family are shown in a set of windows (the same for every viewer)."""

    k: int
    hidden: frozenset[Cell]
    cells: frozenset[Cell]
    dimensions: tuple[str, ...]
    everyone: bool  # everyone is shown

    def shown(self, cell: Cell) -> bool:
        if cell == ():
            return self.everyone
        return cell in self.cells and cell not in self.hidden

    def view_cells(self, conditions: Mapping[str, Collection[str]]) -> list[Cell] | None:
        """The family's cells a view is the union of; None when it is deeper than the family."""
        names = sorted(conditions, key=self._rank)
        if len(names) > 2:
            return None
        combos = itertools.product(*[[(name, value) for value in sorted(conditions[name])] for name in names])
        return [tuple(combo) for combo in combos if tuple(combo) in self.cells or not combo]

    def view_shown(self, conditions: Mapping[str, Collection[str]]) -> bool:
        """A view (everyone, or values of one or two dimensions) is shown when all its cells are."""
        cells = self.view_cells(conditions)
        return bool(cells) and all(self.shown(cell) for cell in cells)

    def _rank(self, name: str) -> int:
        return self.dimensions.index(name) if name in self.dimensions else len(self.dimensions)


def _determined(edges: list[tuple[Any, Any]], free: Collection[Any]) -> set[int]:
    """Edges whose value the node sums give away: bridges once the nodes without a known sum are one node.

    Every variable is an edge between the two sums it is part of; with all sums known
    a variable can be solved for exactly when it lies on no cycle (Gusfield 1988); a
    sum nobody published is a free end, so all of them are merged into one node.
    """
    merged = [tuple("FREE" if node in free else node for node in edge) for edge in edges]
    return _bridges(merged)


def suppress(sums: Sequence[Mapping[Cell, float]], counts: CellCounts, k: int) -> Pattern:
    """The suppression pattern of a family over windows whose cell totals are ``sums``."""
    cells = list(counts.cells)
    everyone = all(side.get((), 0.0) >= k for side in sums)

    def n(cell: Cell, side: int) -> float:
        return sums[side].get(cell, 0.0)

    sides = range(len(sums))
    hidden: set[Cell] = {c for c in cells if any(value is None for _, value in c) or min(n(c, s) for s in sides) < k}
    sensitive = {c for c in cells if any(0 < n(c, s) < k for s in sides)}
    tables = _tables(counts)
    nested = [_nested(counts, lambda c, side=side: n(c, side)) for side in sides]

    def hide_smallest(candidates: Iterable[Cell], side: int) -> bool:
        shown = [c for c in candidates if c not in hidden and n(c, side) > 0]
        if not shown:
            return False
        hidden.add(min(shown, key=lambda c: (n(c, side), _order(c))))
        return True

    changed = True
    while changed:
        changed = _rules(tables, nested, hidden, sensitive, n, hide_smallest, everyone, k, sides)
        if not changed:
            # The rules hold; now the exact check over every equation at once.
            for side in sides:
                changed = _audit(tables.parts + nested[side], hidden, sensitive, lambda c, side=side: n(c, side), everyone, k, hide_smallest, side) or changed
    return Pattern(k, frozenset(hidden), frozenset(cells), counts.dimensions, everyone)


def _audit(
    equations: Sequence[tuple[Cell, list[Cell]]],
    hidden: set[Cell],
    sensitive: Collection[Cell],
    n: Callable[[Cell], float],
    everyone: bool,
    k: int,
    hide_smallest: Callable[[Iterable[Cell], int], bool],
    side: int,
) -> bool:
    """Solve the published equations for the hidden cells: every sensitive one that comes out
    exactly gets the smallest shown cell of one of its equations hidden too. True if any did.

    The unknowns are the hidden cells with responses in the window (an empty one is known to
    be empty); each partition (everyone or a shown or hidden cell = the cells it splits into)
    is an equation. A cell is determined when its unit vector lies in the equations' row space,
    that is when every solution of the homogeneous system leaves it at zero.
    """
    unknown = sorted({c for c in hidden if n(c) > 0} | ({()} if not everyone else set()), key=_order)
    index = {c: i for i, c in enumerate(unknown)}
    rows: list[dict[int, int]] = []
    used = []
    for parent, members in equations:
        row: dict[int, int] = {}
        for cell in members:
            if cell in index:
                row[index[cell]] = row.get(index[cell], 0) + 1
        if parent in index:
            row[index[parent]] = row.get(index[parent], 0) - 1
        row = {column: value for column, value in row.items() if value}
        if row:
            rows.append(row)
            used.append((parent, members))
    if not rows:
        return False
    system = _Elimination(rows)
    leaks = [j for j in system.determined if unknown[j] in sensitive and 0 < n(unknown[j]) < k]
    if not leaks:
        return False
    # One leak after another, as the blocks of equations (by their first equation) and then the unknowns
    # come: each hides a cell, and what the next one may hide depends on it.
    block = _block_of_columns(rows, len(unknown))
    leaks.sort(key=lambda j: (block[j], j))
    # The equations each value is solved from (the least-norm combination, one projection for all):
    # one more unknown in the smallest of them breaks that derivation; the next audit looks again.
    weights = system.least_norm(leaks)
    moved = False
    for column in range(len(leaks)):
        chosen = [used[i] for i in np.flatnonzero(np.abs(weights[:, column]) > 1e-9)]
        members = [c for _, cells in chosen for c in cells if c not in hidden and n(c) > 0]
        parents = [p for p, _ in chosen if p != () and p not in hidden and n(p) > 0]
        moved = hide_smallest(members or parents, side) or moved
    return moved


class _Elimination:
    """Gauss-Jordan elimination of the equations in exact rational arithmetic, keeping for every
    row the combination of the original equations it is.

    Why not a floating-point factorisation: the equations are 0/+-1 and each touches a handful
    of unknowns, so pivoting on the shortest row first keeps the rows short (a dense QR spent
    seconds on what this does in milliseconds), and exact arithmetic needs no tolerance. The
    reduced row echelon form spans the same rows and is unique, so an unknown is determined
    exactly when its pivot row is its unit vector.
    """

    def __init__(self, rows: Sequence[Mapping[int, int]]) -> None:
        self.rows: list[dict[int, Fraction | int]] = [dict(row) for row in rows]
        self.combinations: list[dict[int, Fraction | int]] = [{i: 1} for i in range(len(rows))]
        self.pivots: dict[int, int] = {}  # unknown -> the row it was solved from
        self.dependent: list[int] = []  # rows that came out empty: dependencies between the equations
        holders: dict[int, set[int]] = {}
        for i, row in enumerate(self.rows):
            for column in row:
                holders.setdefault(column, set()).add(i)
        queue = [(len(row), i) for i, row in enumerate(self.rows)]
        heapq.heapify(queue)
        done = [False] * len(rows)
        while queue:
            length, i = heapq.heappop(queue)
            if done[i] or length != len(self.rows[i]):
                continue  # a stale entry: the row was shortened since
            done[i] = True
            if not self.rows[i]:
                self.dependent.append(i)
                continue
            pivot = min(self.rows[i], key=lambda c: (len(holders[c]), c))
            self.pivots[pivot] = i
            self._scale(i, self.rows[i][pivot])
            for other in holders[pivot] - {i}:
                self._subtract(other, i, pivot, holders)
                if not done[other]:
                    heapq.heappush(queue, (len(self.rows[other]), other))
            holders[pivot] = {i}
        self.determined = sorted(j for j, i in self.pivots.items() if len(self.rows[i]) == 1)

    def _scale(self, i: int, pivot: Fraction | int) -> None:
        if pivot != 1:
            self.rows[i] = {c: _divide(v, pivot) for c, v in self.rows[i].items()}
            self.combinations[i] = {c: _divide(v, pivot) for c, v in self.combinations[i].items()}

    def _subtract(self, target: int, source: int, pivot: int, holders: dict[int, set[int]]) -> None:
        """Row ``target`` minus the multiple of row ``source`` that clears the pivot's unknown."""
        row, factor = self.rows[target], self.rows[target][pivot]
        for column, value in self.rows[source].items():
            result = row.get(column, 0) - factor * value
            if result:
                if column not in row:
                    holders[column].add(target)
                row[column] = result
            else:
                del row[column]
                if column != pivot:
                    holders[column].discard(target)
        combination = self.combinations[target]
        for equation, value in self.combinations[source].items():
            result = combination.get(equation, 0) - factor * value
            if result:
                combination[equation] = result
            else:
                combination.pop(equation, None)

    def least_norm(self, unknowns: Sequence[int]) -> np.ndarray:
        """(equations x unknowns): for each determined unknown, the combination of the equations
        with the least norm that gives its value (what a least-squares solve returns).

        Every combination that gives it is its pivot row's plus any dependency, so the least
        one is that combination less its projection on the dependencies (normal equations of the
        dependencies, sparse: a few hundred short vectors).
        """
        particular = _matrix([self.combinations[self.pivots[unknown]] for unknown in unknowns], len(self.rows)).toarray()
        if not self.dependent:
            return particular
        dependencies = _matrix([self.combinations[i] for i in self.dependent], len(self.rows)).tocsc()
        gram = (dependencies.T @ dependencies).tocsc()
        return particular - dependencies @ splu(gram).solve(dependencies.T @ particular)


def _matrix(columns: Sequence[Mapping[int, Fraction | int]], size: int) -> coo_matrix:
    """Sparse (size x columns) matrix of rational columns given as {row: value}."""
    entries = [(row, column, float(value)) for column, vector in enumerate(columns) for row, value in vector.items()]
    rows, cols, values = zip(*entries, strict=True) if entries else ((), (), ())
    return coo_matrix((values, (rows, cols)), shape=(size, len(columns)))


def _divide(value: Fraction | int, by: Fraction | int) -> Fraction | int:
    """Exact quotient, kept an int when it is one (int arithmetic is what keeps the elimination fast)."""
    if isinstance(value, int) and isinstance(by, int) and value % by == 0:
        return value // by
    return Fraction(value) / by


def _block_of_columns(rows: Sequence[Mapping[int, int]], unknowns: int) -> np.ndarray:
    """Per unknown, a label of the block of equations it is in (linked through shared unknowns),
    ordered as the blocks' first equations."""
    link = _matrix(rows, unknowns).T
    _, labels = connected_components(bmat([[None, link], [link.T, None]]), directed=False)
    return labels[len(rows):]


def _rules(tables: _Tables, nested: Sequence[Sequence[tuple[Cell, list[Cell]]]], hidden: set[Cell], sensitive: Collection[Cell],
           n: Callable[[Cell, int], float], hide_smallest: Callable[[Iterable[Cell], int], bool], everyone: bool, k: int,
           sides: Iterable[int]) -> bool:
    """One pass of the table rules and the two-way bridge check; True if it hid anything."""
    changed = False
    sides = list(sides)
    for parent, members in tables.parts:
        if (parent == () and not everyone) or (parent != () and parent in hidden):
            continue  # an unpublished total: nothing to subtract from
        for side in sides:
            while _short(members, hidden, sensitive, lambda c, side=side: n(c, side), k):
                if not hide_smallest(members, side):
                    break
                changed = True
    for side in sides:
        for parent, members in nested[side]:
            if parent in hidden:
                # Its finer cells add up to it: a hidden cell (maybe another's complement)
                # must not be the sum of shown ones.
                if n(parent, side) > 0 and all(c not in hidden for c in members if n(c, side) > 0):
                    changed = hide_smallest(members, side) or changed
                continue
            while _short(members, hidden, sensitive, lambda c, side=side: n(c, side), k):
                if not hide_smallest(members, side):
                    break
                changed = True
    for first, _second, rows, columns, pair_cells in tables.graphs:
        for side in sides:
            edges: list[tuple[Any, Any]] = []
            labels: list[Cell] = []
            for cell in pair_cells:
                if cell in hidden and n(cell, side) > 0:
                    edges.append(((cell[0]), (cell[1])))
                    labels.append(cell)
            for margin, star in ((rows, "R*"), (columns, "C*")):
                for cell in margin:
                    if cell in hidden and n(cell, side) > 0:
                        edges.append((cell[0], star))
                        labels.append(cell)
            free = {c[0] for c in (*rows, *columns) if c in hidden} | (set() if everyone else {"R*", "C*"})
            for index in sorted(_determined(edges, free), key=lambda i: _order(labels[i])):
                cell = labels[index]
                if cell not in sensitive or not 0 < n(cell, side) < k:
                    continue  # a big cell hidden for want of the other window: no one to protect
                if len(cell) == 2:
                    moved = hide_smallest([c for c in pair_cells if c[0] == cell[0]], side)
                    moved = hide_smallest([c for c in pair_cells if c[1] == cell[1]], side) or moved
                    moved = moved or hide_smallest(rows, side) or hide_smallest(columns, side)
                else:
                    moved = hide_smallest([c for c in pair_cells if cell[0] in c], side)
                    moved = moved or hide_smallest(rows if cell[0][0] == first else columns, side)
                if moved:
                    changed = True
                    break
    return changed


def _short(members: Sequence[Any], hidden: Collection[Any], sensitive: Collection[Any], n: Callable[[Any], float], k: int) -> bool:
    """A partition's hidden part gives a sensitive member away: it is one member, or fewer than ``k`` responses."""
    rest = [c for c in members if c in hidden and n(c) > 0]
    if not any(c in sensitive and n(c) < k for c in rest):
        return False
    return len(rest) < 2 or sum(n(c) for c in rest) < k


@dataclass(frozen=True)
class WeeklyPattern:
    """Which weeks of everyone's and each one-dimension segment's series are shown (periods from ``first_period``)."""

    k: int
    first_period: int
    everyone: np.ndarray  # bool per period
    cells: dict[Cell, np.ndarray]  # bool per period; a cell missing here has no week shown

    def view_weeks(self, conditions: Mapping[str, Collection[str]], length: int) -> np.ndarray:
        """The weeks a view's series may show: everyone's, or the weeks all its segments show; none deeper."""
        if not conditions:
            return self.everyone[:length]
        if len(conditions) > 1:
            return np.zeros(length, dtype=bool)
        ((name, values),) = conditions.items()
        masks = [self.cells.get(((name, value),)) for value in values]
        if not masks or any(m is None for m in masks):
            return np.zeros(length, dtype=bool)
        return np.logical_and.reduce(masks)[:length]


def weekly_pattern(
    counts: CellCounts,
    windows: Sequence[tuple[int, int]],
    first_period: int,
    k: int,
    everyone_windows: Sequence[tuple[int, int]] | None = None,
) -> WeeklyPattern:
    """Which weeks may be shown, with the cells' window totals (``windows``, shown per ``suppress``) in view.

    Everyone's series hides its weeks under ``k`` and then more, until no union of
    hidden weeks under ``k`` follows from the shown weeks and windows. Per dimension,
    the segments' series form a table (segments x weeks) whose row sums are the
    windows and whose column sums are everyone's shown weeks; it gets the same
    primary and secondary suppression as the before/after tables.
    """
    total = counts.total
    everyone = protect_series(total, windows if everyone_windows is None else everyone_windows, first_period, k)
    singles: dict[str, list[Cell]] = {}
    for cell in counts.cells:
        if len(cell) == 1:
            singles.setdefault(cell[0][0], []).append(cell)
    shown_cells: dict[Cell, np.ndarray] = {}
    length = len(total)
    window_of = np.full(length, -1)
    for index, (first, last) in enumerate(windows):
        window_of[max(first - first_period, 0): max(last - first_period + 1, 0)] = index
    for name in counts.dimensions:
        members = sorted(singles.get(name, []), key=_order)
        if not members:
            continue
        matrix = np.array([counts.cells[c] for c in members])
        shown = (matrix >= k) & np.array([c[0][1] is not None for c in members])[:, None]
        sensitive = (matrix > 0) & (matrix < k)
        changed = True
        while changed:
            changed = False
            for week in np.flatnonzero(everyone):
                column = matrix[:, week]
                while True:
                    rest = (~shown[:, week]) & (column > 0)
                    if not (rest & sensitive[:, week]).any() or (rest.sum() >= 2 and column[rest].sum() >= k):
                        break
                    candidates = np.flatnonzero(shown[:, week] & (column > 0))
                    if not len(candidates):
                        break
                    shown[candidates[np.argmin(column[candidates])], week] = False
                    changed = True
            edges, labels = [], []
            for row, week in zip(*np.nonzero((~shown) & (matrix > 0)), strict=True):
                edges.append((("row", int(row), int(window_of[week])), ("week", int(week))))
                labels.append((int(row), int(week)))
            free = {("week", int(w)) for w in np.flatnonzero(~everyone)} | {
                ("row", r, w) for r in range(len(members)) for w in range(-1, len(windows))
                if w < 0 or members[r][0][1] is None
            }
            for index in sorted(_determined(edges, free)):
                row, week = labels[index]
                if not sensitive[row, week]:
                    continue
                same_row = np.flatnonzero(shown[row] & (window_of == window_of[week]) & (matrix[row] > 0))
                same_week = np.flatnonzero(shown[:, week] & (matrix[:, week] > 0))
                if len(same_row):
                    shown[row, same_row[np.argmin(matrix[row, same_row])]] = False
                    changed = True
                if len(same_week):
                    shown[same_week[np.argmin(matrix[same_week, week])], week] = False
                    changed = True
                if changed:
                    break
        for row, cell in enumerate(members):
            shown_cells[cell] = shown[row]
    return WeeklyPattern(k, first_period, everyone, shown_cells)


def protect_series(weekly: np.ndarray, windows: Sequence[tuple[int, int]], first_period: int, k: int) -> np.ndarray:
    """The weeks of one series that may be shown beside its window totals.

    Weeks under ``k`` are hidden; then, while a union of hidden weeks with 1 to
    ``k - 1`` responses follows from the windows and the shown weeks, the smallest
    shown week in a window holding it is hidden too.
    """
    weekly = np.asarray(weekly, dtype=float)
    shown = weekly >= k
    spans = [(max(first - first_period, 0), max(last - first_period + 1, 0)) for first, last in windows]
    while True:
        hidden = np.flatnonzero((~shown) & (weekly > 0))
        leak = _leak(hidden, weekly, spans, k)
        if leak is None:
            return shown
        lo, hi = next(((lo, hi) for lo, hi in spans if any(lo <= t < hi for t in leak)), (0, len(weekly)))
        candidates = [t for t in range(lo, hi) if shown[t] and weekly[t] > 0]
        if not candidates:
            shown[:] = False
            return shown
        shown[min(candidates, key=lambda t: (weekly[t], t))] = False


def _leak(hidden: np.ndarray, weekly: np.ndarray, spans: Sequence[tuple[int, int]], k: int) -> list[int] | None:
    """Hidden weeks whose union (1 to k - 1 responses) the windows give away, if any."""
    if not len(hidden):
        return None
    matrix = np.array([[1.0 if lo <= t < hi else 0.0 for t in hidden] for lo, hi in spans]) if spans else np.zeros((0, len(hidden)))
    rank = np.linalg.matrix_rank(matrix) if len(matrix) else 0
    if rank == 0:
        return None
    # Only weeks inside some window can be given away; look at at most 12 of them at once.
    inside = [i for i in range(len(hidden)) if matrix[:, i].any()][:12]
    for size in range(1, len(inside) + 1):
        for subset in itertools.combinations(inside, size):
            total = float(weekly[hidden[list(subset)]].sum())
            if not 0 < total < k:
                continue
            vector = np.zeros(len(hidden))
            vector[list(subset)] = 1.0
            if np.linalg.matrix_rank(np.vstack([matrix, vector])) == rank:
                return [int(hidden[i]) for i in subset]
    return None


def protect_finding(entry: dict[str, Any], k: int) -> dict[str, Any] | None:
    """A finding's JSON form with nothing that gives away fewer than ``k`` responses; None to hide it.

    The finding itself needs ``k`` responses on each side. Under each tree node, per
    dimension, the shown children (tree children and named segments alike) leave over
    none or at least ``k`` responses on each side; the smallest go until they do.
    """
    if min(entry.get("n_before") or 0, entry.get("n_after") or 0) < k:
        return None
    result = dict(entry)
    tree = entry.get("tree")
    segments = [s for s in entry.get("segments") or [] if _enough(s, k)]
    if isinstance(tree, dict):
        tree, dropped = _protect_node(tree, segments, k)
        segments = [s for s in segments if _key(s["segment"]) not in dropped]
    result["tree"] = tree
    result["segments"] = segments
    return result


def _enough(node: Mapping[str, Any], k: int) -> bool:
    return min(node.get("n_before") if node.get("n_before") is not None else 0,
               node.get("n_after") if node.get("n_after") is not None else 0) >= k


def _key(segment: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(segment.items()))


def _protect_node(
    node: dict[str, Any], named: list[dict[str, Any]], k: int
) -> tuple[dict[str, Any], set[tuple[tuple[str, str], ...]]]:
    segment = node.get("segment") or {}
    groups: dict[str, list[dict[str, Any]]] = {}
    others: dict[str, dict[str, Any]] = {}
    for child in node.get("children") or []:
        extra = [name for name in child.get("segment", {}) if name not in segment]
        if len(extra) != 1:
            continue
        if child["segment"][extra[0]] == "other":
            others[extra[0]] = child
        elif _enough(child, k):
            groups.setdefault(extra[0], []).append(child)
    for item in named:
        extra = [name for name in item["segment"] if name not in segment]
        if len(extra) == 1 and all(item["segment"].get(n) == v for n, v in segment.items()):
            group = groups.setdefault(extra[0], [])
            if not any(_key(c["segment"]) == _key(item["segment"]) for c in group):
                group.append(item)
    dropped: set[tuple[tuple[str, str], ...]] = set()
    children: list[dict[str, Any]] = []
    sides = ("n_before", "n_after")
    for name in list(dict.fromkeys([*groups, *others])):
        group = sorted(groups.get(name, []), key=lambda c: (min(c[s] for s in sides), _key(c["segment"])))
        while group:
            rest = [node[s] - sum(c[s] for c in group) for s in sides]
            if all(r <= 0 or r >= k for r in rest):
                break
            dropped.add(_key(group.pop(0)["segment"]))
        rest = [node[s] - sum(c[s] for c in group) for s in sides]
        shown = {_key(c["segment"]) for c in group}
        children.extend(
            {**c, "children": []} if "children" in c else c
            for c in node.get("children") or []
            if _key(c.get("segment", {})) in shown
        )
        other = others.get(name)
        if other is not None and [other[s] for s in sides] == rest and min(rest) >= k:
            children.append(other)
    return {**node, "children": children}, dropped


@dataclass(frozen=True)
class Protection:
    """Everything a publisher asks about one transition's figures: which views, weeks and windows to show."""

    pattern: Pattern
    weekly: WeeklyPattern
    windows: dict[str, tuple[int, int]]  # name -> (first, last) period

    @property
    def k(self) -> int:
        return self.pattern.k

    def shown(self, conditions: Mapping[str, Collection[str]]) -> bool:
        """The view's before (baseline) and after (since go-live) figures may be shown."""
        return self.pattern.view_shown(conditions)

    def weeks(self, conditions: Mapping[str, Collection[str]], length: int) -> np.ndarray:
        """Per period from the cubes' first: the view's week may be shown."""
        if not self.shown(conditions) and conditions:
            return np.zeros(length, dtype=bool)
        return self.weekly.view_weeks(conditions, length)

    def window_names(self, conditions: Mapping[str, Collection[str]], length: int) -> set[str]:
        """The windows of a view that may be shown: before and after, and the others that its
        shown weeks already give (everyone's were protected with them)."""
        if not self.shown(conditions):
            return set()
        names = {"baseline", "since_go_live"} & set(self.windows)
        if not conditions:
            return set(self.windows)
        weeks = self.weeks(conditions, length)
        first = self.weekly.first_period
        for name, (lo, hi) in self.windows.items():
            if weeks[max(lo - first, 0): max(hi - first + 1, 0)].all():
                names.add(name)
        return names


def protection(
    counts: CellCounts, windows: Mapping[str, tuple[int, int]], first_period: int, k: int
) -> Protection:
    """The pattern of a transition's windows: ``baseline`` and ``since_go_live`` are every cell's;
    the others (``early``, ``settled``, ``recent``...) are shown for everyone only."""
    sides = [windows[name] for name in ("baseline", "since_go_live") if name in windows]
    sums = [counts.window(first, last, first_period) for first, last in sides]
    pattern = suppress(sums, counts, k) if sums else Pattern(k, frozenset(counts.cells), frozenset(counts.cells), counts.dimensions, False)
    weekly = weekly_pattern(counts, sides, first_period, k, list(windows.values()))
    return Protection(pattern, weekly, dict(windows))
