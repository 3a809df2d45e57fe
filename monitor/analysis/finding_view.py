"""A finding as every reader sees it: typed, built and serialized in one place.

The analysis stores a finding's explanation (``Finding.attribution``) as JSON; the
CLI, the API, the web view and the digests read it through these frozen
dataclasses, never through dict keys, so a renamed field fails loudly here (an
unknown key in stored JSON is an error) instead of becoming a silent ``None`` in an
email. ``FindingView.as_dict`` is the one JSON form (``analyze --json``, the API).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.analysis.disclosure import protect_finding
from monitor.store.models import Finding


class FindingFormatError(ValueError):
    """Stored explanation JSON that does not match the typed form; names the key."""


def _known(kind: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FindingFormatError(f"{kind.__name__}: unknown key(s) {', '.join(unknown)}")
    return dict(data)


@dataclass(frozen=True)
class NamedSegment:
    """A segment that carries (part of) a root's change, and the share of it it explains."""

    segment: dict[str, str]
    share: float | None = None  # 0..1 of the overall change; None when the whole did not worsen
    before: float | None = None
    after: float | None = None
    delta: float | None = None
    excess: float | None = None  # beyond the rest of the incident's respondents
    n_before: int | None = None
    n_after: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NamedSegment:
        return cls(**_known(cls, data))

    def shown(self, minimum: int) -> bool:
        """Enough responses on each side to be named (unknown n: shown, the analysis already checked)."""
        return min(self.n_before if self.n_before is not None else minimum,
                   self.n_after if self.n_after is not None else minimum) >= minimum


@dataclass(frozen=True)
class FactorRise:
    """A factor cited significantly more often after than before (Newcombe interval, Bonferroni over factors)."""

    factor: str
    before_share: float  # percent of responses citing it
    after_share: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    polarity: str | None = None  # negative, undecided (treated as negative); see detectors.polarity
    among_unhappy: dict[str, float | None] | None = None  # its share among the 0-6 respondents, who can cite it
    more_unhappy: float | None = None  # points of the rise from more respondents rating 0-6 (mix)
    unhappy_cite_more: float | None = None  # points from the unhappy citing it more often (rate)
    rest_delta: float | None = None  # a named segment's root: the same factor's change outside it, in points
    p_beyond_rest: float | None = None  # one-sided p of rising more than outside (Bonferroni over factors)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FactorRise:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class PositiveFactorFall:
    """A positive factor ("Knowledgeable agent") cited less: bad news of its own kind."""

    factor: str
    before_share: float
    after_share: float
    delta: float  # negative: points fewer responses cite it
    ci_low: float
    ci_high: float
    p_value: float
    polarity: dict[str, Any]  # how its sign was decided (detectors.polarity.Polarity.as_dict)
    kind: str = "positive_factor_fell"
    rest_delta: float | None = None  # a named segment's root: the same factor's change outside it
    p_beyond_rest: float | None = None  # one-sided p of falling more than outside

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PositiveFactorFall:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Alias:
    """Another name of exactly the same respondents (``windows``: both, before or after go-live)."""

    segment: dict[str, str]
    windows: str

    def text(self) -> str:
        """``= SD-Internal-DE x Laptop before go-live``: how the finding's segment is also known."""
        when = {"before": " before go-live", "after": " after go-live"}.get(self.windows, "")
        return "= " + " x ".join(str(v) for v in self.segment.values()) + when


SHOWN_ALIASES = 2  # other names shown next to a segment's; the rest are in the JSON


@dataclass(frozen=True)
class RelatedChange:
    """Another metric's root of the same cause (same respondents, same weeks), folded under this root."""

    metric: str  # lost_time or factor:<name>
    segment: dict[str, str]
    before: float | None = None
    after: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_before: int | None = None
    n_after: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RelatedChange:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class MixRate:
    """A root's change split into rate (within segments) and mix (between them), by one dimension."""

    rate: float
    mix: float
    by: str


@dataclass(frozen=True)
class Explanation:
    """What a root finding says beyond its numbers: where, why, what to do. Echoes have an empty one."""

    children: tuple[str, ...] = ()  # ids of the echoes this root explains
    overall_effect: float | None = None  # how much this root moved everyone's metric
    segments: tuple[NamedSegment, ...] = ()
    aliases: tuple[Alias, ...] = ()
    co_roots: tuple[dict[str, str], ...] = ()  # the other roots of the same incident ({} is everyone)
    factors: tuple[FactorRise, ...] = ()  # negative factors that rose, largest first
    positive_factors_fell: tuple[PositiveFactorFall, ...] = ()
    suggestions: tuple[str, ...] = ()
    mix_rate: MixRate | None = None
    did: dict[str, Any] | None = None  # difference-in-differences against outside the transition
    tree: dict[str, Any] | None = None  # drill-down: the root and the segments inside it
    windows: dict[str, list[str]] | None = None  # the incident's before/after windows
    overall: dict[str, Any] | None = None  # everyone's change over the same windows
    generic_part: dict[str, Any] | None = None  # a mixed root's change shared by everyone
    related: tuple[RelatedChange, ...] = ()  # lost-time and factor roots of the same cause, folded here
    first_named: dict[str, str] | None = None  # the segment this root was first reported on, if since renamed

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Explanation:
        values = _known(cls, data or {})
        values["children"] = tuple(values.get("children") or ())
        values["segments"] = tuple(NamedSegment.from_json(s) for s in values.get("segments") or ())
        values["aliases"] = tuple(Alias(**a) for a in values.get("aliases") or ())
        values["co_roots"] = tuple(values.get("co_roots") or ())
        values["factors"] = tuple(FactorRise.from_json(s) for s in values.get("factors") or ())
        values["positive_factors_fell"] = tuple(
            PositiveFactorFall.from_json(s) for s in values.get("positive_factors_fell") or ()
        )
        values["suggestions"] = tuple(values.get("suggestions") or ())
        values["related"] = tuple(RelatedChange.from_json(r) for r in values.get("related") or ())
        if values.get("mix_rate") is not None:
            values["mix_rate"] = MixRate(**values["mix_rate"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {
            "children": list(self.children),
            "overall_effect": self.overall_effect,
            "segments": [dataclasses.asdict(s) for s in self.segments],
            "aliases": [dataclasses.asdict(a) for a in self.aliases],
            "co_roots": list(self.co_roots),
            "factors": [dataclasses.asdict(f) for f in self.factors],
            "positive_factors_fell": [dataclasses.asdict(f) for f in self.positive_factors_fell],
            "suggestions": list(self.suggestions),
            "mix_rate": None if self.mix_rate is None else dataclasses.asdict(self.mix_rate),
            "did": self.did,
            "tree": self.tree,
            "windows": self.windows,
            "overall": self.overall,
            "generic_part": self.generic_part,
            "related": [dataclasses.asdict(r) for r in self.related],
            "first_named": self.first_named,
        }


@dataclass(frozen=True)
class LabelView:
    label: str
    author: str
    note: str
    created_at: dt.datetime


@dataclass(frozen=True)
class FindingView:
    """One stored finding with its explanation, as the CLI, API, web view and digests show it."""

    id: str
    metric: str
    segment: dict[str, str]
    change_date: dt.date
    direction: str
    before: float
    after: float
    delta: float
    ci_low: float
    ci_high: float
    n_before: int
    n_after: int
    p_value: float | None
    recovered_on: dt.date | None
    # "search", "known_date" (a go-live tested directly), "kept" (re-tested at its date) or
    # "corroborated" (tested where lost time or a factor of the same segment changed)
    found_by: str | None
    known_date: str | None  # the transition (finding, companion metric) whose date was tested
    shape: str  # "step" or "gradual": a slide from change_date to ramp_end
    ramp_end: dt.date | None
    slope: float | None  # metric units per period, with its 95% interval
    slope_ci: tuple[float, float] | None
    ended_on: dt.date | None  # its segment stopped receiving responses
    ended_reason: str | None
    transition: str | None
    first_reported: dt.date
    last_reported: dt.date
    state: str
    root: bool
    root_id: str | None
    scope: str | None
    explains: float | None
    impact: float | None
    explanation: Explanation = field(default_factory=Explanation)
    label: LabelView | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # sla / happiness / voice (monitor.analysis.it_notes, voice)

    @classmethod
    def of(cls, finding: Finding) -> FindingView:
        label = finding.label
        return cls(
            id=finding.id,
            metric=finding.metric,
            segment=dict(finding.segment),
            change_date=finding.change_date,
            direction=finding.direction,
            before=finding.before,
            after=finding.after,
            delta=finding.delta,
            ci_low=finding.ci_low,
            ci_high=finding.ci_high,
            n_before=finding.n_before,
            n_after=finding.n_after,
            p_value=finding.p_value,
            recovered_on=finding.recovered_on,
            found_by=finding.found_by,
            known_date=finding.known_date,
            shape=finding.shape or "step",
            ramp_end=finding.ramp_end,
            slope=finding.slope,
            slope_ci=None
            if finding.slope_ci_low is None or finding.slope_ci_high is None
            else (finding.slope_ci_low, finding.slope_ci_high),
            ended_on=finding.ended_on,
            ended_reason=finding.ended_reason,
            transition=finding.transition,
            first_reported=finding.first_reported,
            last_reported=finding.last_reported,
            state=finding.state,
            root=finding.root,
            root_id=finding.root_id,
            scope=finding.scope,
            explains=finding.explains,
            impact=finding.impact,
            explanation=Explanation.from_json(finding.attribution),
            label=None if label is None else LabelView(label.label, label.author, label.note, label.created_at),
            notes=dict(finding.notes or {}),
        )

    def protected(self, minimum: int) -> FindingView | None:
        """This finding as publishers may show it (``minimum``: ``anonymity_min_responses``).

        None when it has fewer than ``minimum`` responses on a side; otherwise its tree
        and named segments pass ``disclosure.protect_finding``, so nothing in them
        leaves a small group to be computed by subtraction.
        """
        data = protect_finding(self._as_dict(), minimum)
        if data is None:
            return None
        kept = {tuple(sorted(s["segment"].items())) for s in data["segments"]}
        explanation = dataclasses.replace(
            self.explanation,
            tree=data["tree"],
            segments=tuple(s for s in self.explanation.segments if tuple(sorted(s.segment.items())) in kept),
        )
        return dataclasses.replace(self, explanation=explanation)

    @typing.overload
    def as_dict(self) -> dict[str, Any]: ...

    @typing.overload
    def as_dict(self, *, minimum: int) -> dict[str, Any] | None: ...

    def as_dict(self, *, minimum: int | None = None) -> dict[str, Any] | None:
        """The JSON form: ``analyze --json``, ``explain``, the API and the web view's data.

        Every publisher passes ``minimum`` (``anonymity_min_responses``) and gets the
        :meth:`protected` form (None: not to be shown at all). Without it, the stored
        explanation as it is, for the analysis's own records.
        """
        if minimum is None:
            return self._as_dict()
        shown = self.protected(minimum)
        return None if shown is None else shown._as_dict()

    def _as_dict(self) -> dict[str, Any]:
        explanation = self.explanation.to_json()
        return {
            "id": self.id,
            "metric": self.metric,
            "segment": self.segment,
            "change_date": self.change_date.isoformat(),
            "direction": self.direction,
            "before": round(self.before, 2),
            "after": round(self.after, 2),
            "delta": round(self.delta, 2),
            "ci_low": round(self.ci_low, 2),
            "ci_high": round(self.ci_high, 2),
            "n_before": self.n_before,
            "n_after": self.n_after,
            "p_value": self.p_value,
            "recovered_on": None if self.recovered_on is None else self.recovered_on.isoformat(),
            "found_by": self.found_by,
            "known_date": self.known_date,
            "shape": self.shape,
            "ramp_end": None if self.ramp_end is None else self.ramp_end.isoformat(),
            "slope": None if self.slope is None else round(self.slope, 3),
            "slope_ci": None if self.slope_ci is None else [round(v, 3) for v in self.slope_ci],
            "ended_on": None if self.ended_on is None else self.ended_on.isoformat(),
            "ended_reason": self.ended_reason,
            "transition": self.transition,
            "first_reported": self.first_reported.isoformat(),
            "last_reported": self.last_reported.isoformat(),
            "state": self.state,
            "root": self.root,
            "root_id": self.root_id,
            "scope": self.scope,
            "explains": self.explains,
            "impact": self.impact,
            **{key: explanation[key] for key in ("children", "overall_effect", "segments", "aliases", "co_roots",
                                                 "factors", "positive_factors_fell", "suggestions",
                                                 "mix_rate", "did", "tree", "generic_part", "related",
                                                 "first_named")},
            "label": None if self.label is None else {
                "label": self.label.label, "author": self.label.author, "note": self.label.note,
                "created_at": self.label.created_at.isoformat(),
            },
            "notes": self.notes,
        }
