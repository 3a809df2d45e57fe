"""Segments and scopes: the one definition of "which respondents" that every step shares.

A *segment* names one value per dimension (``{"country": "Finland"}``; ``{}`` is
everyone). A *scope* is a filter with the shape stored on transitions, viewers and
subscriptions (``{"assignment_group": ["MSP-L1", "MSP-L2"]}``): values of one
dimension are alternatives, different dimensions must all match; an empty scope is
everyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_ITEM = re.compile(r"^\s*([^=]+?)\s*=\s*(.+?)\s*$")


class ScopeError(ValueError):
    """A scope written in a form that cannot be read; the message says which part."""


def segment_label(segment: Mapping[str, object], everyone: str = "everyone") -> str:
    """In prose: ``country Finland x service SAP``; ``everyone`` for the empty segment."""
    return " x ".join(f"{name.replace('_', ' ')} {value}" for name, value in segment.items()) or everyone


def segment_filter_text(segment: Mapping[str, object]) -> str:
    """In the filter syntax the CLI and the web take: ``country=Finland x service=SAP``."""
    return " x ".join(f"{name}={value}" for name, value in segment.items()) or "everyone"


@dataclass(frozen=True)
class Scope:
    """An immutable scope; build it with :meth:`of` (stored form) or :meth:`parse` (``name=value`` items)."""

    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, Iterable[str]] | None) -> Scope:
        return cls(tuple((name, tuple(dict.fromkeys(values))) for name, values in (mapping or {}).items()))

    @classmethod
    def parse(cls, items: Iterable[str]) -> Scope:
        """``("country=Finland", "country=Sweden", "service=SAP")``: the command-line form."""
        scope: dict[str, list[str]] = {}
        for item in items:
            match = _ITEM.match(item)
            if not match:
                raise ScopeError(f"expected dimension=value, got {item!r}")
            values = scope.setdefault(match.group(1), [])
            if match.group(2) not in values:
                values.append(match.group(2))
        return cls.of(scope)

    def __bool__(self) -> bool:
        return bool(self.filters)

    def as_dict(self) -> dict[str, list[str]]:
        """The stored (JSON) form."""
        return {name: list(values) for name, values in self.filters}

    def contains(self, segment: Mapping[str, str]) -> bool:
        """The segment lies inside the scope: it names every filtered dimension with an allowed value."""
        return all(segment.get(name) in values for name, values in self.filters)

    def overlaps(self, segment: Mapping[str, str]) -> bool:
        """No dimension the segment names contradicts the scope (``country=Finland`` overlaps ``service=SAP``)."""
        return all(segment[name] in values for name, values in self.filters if name in segment)

    def within(self, segment: Mapping[str, str]) -> bool:
        """The scope lies inside the segment: the segment names only filtered dimensions, with allowed values."""
        allowed = dict(self.filters)
        return all(name in allowed and value in allowed[name] for name, value in segment.items())

    def intersect(self, other: Scope) -> Scope:
        """Respondents in both: per dimension, the values both allow."""
        merged = {name: set(values) for name, values in self.filters}
        for name, values in other.filters:
            merged[name] = merged[name] & set(values) if name in merged else set(values)
        return Scope(tuple((name, tuple(sorted(values))) for name, values in sorted(merged.items())))

    def conditions(self) -> dict[str, tuple[str, ...]]:
        """The form cube look-ups take: dimension -> allowed values."""
        return dict(self.filters)

    def label(self) -> str:
        """``country Finland or Sweden; service SAP``; ``everyone`` for the empty scope."""
        return "; ".join(f"{name.replace('_', ' ')} {' or '.join(values)}" for name, values in self.filters) or "everyone"


def finding_in_scope(scope: Scope, segment: Mapping[str, str]) -> bool:
    """The one rule for which findings a scoped reader (a web viewer, an API token, a digest) gets.

    Strict: the finding's own segment lies inside the scope. Not the broader rule digests
    had (also a wider finding that contains the slice, or one on another dimension whose
    named segments or echoes fall inside): every figure of a finding (its n, before and
    after, interval, tree, factors) is computed over its own segment, so a wider finding
    would show a scoped reader the answers of people outside their slice, and "only the
    in-slice figures" of it would be a different finding, with its own test, that the
    analysis did not make. What the broad rule wanted to carry still reaches the slice:
    a dip everyone shares shows in the slice's own transition figures and chart, and an
    echo inside the slice (``assignment_group=MSP-SAP-L2`` under a root on ``service=SAP``)
    is a finding of its own that the rule takes in, shown on its own when its root is not.
    """
    return scope.contains(segment)
