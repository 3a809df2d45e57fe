"""Course corrections: what a transition manager can do about the factors that rose.

A suggestion is a template per feedback factor; ``{where}`` becomes the root
segment ("country Finland x service SAP", or "all areas"), and ``{service}``,
``{channel}``, ``{assignment_group}`` or any other dimension name becomes that
dimension's value in the root segment, or a neutral phrase when the root does not
name it. Organisations replace or add templates with the ``suggestions`` setting.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.scope import segment_label

DEFAULT_SUGGESTIONS: dict[str, str] = {
    "Lack of business knowledge": (
        "Knowledge transfer: have MSP agents shadow the retained organisation's experts for {service} "
        "and turn the recurring questions from {where} into knowledge articles."
    ),
    "Long waiting time": (
        "Staffing: check MSP capacity and queue routing at peak hours for {channel} "
        "in {where}; agree a response-time target with the MSP."
    ),
    "Had to explain multiple times": (
        "Hand-offs: require complete ticket notes at every escalation and review the routing "
        "between MSP levels for {where}."
    ),
    "Issue not resolved": (
        "Fix quality: review reopened and bounced tickets for {service} in {where} with the MSP's "
        "team lead; check that resolver groups have the access they need."
    ),
    "Language barrier": (
        "Language coverage: route {where} to agents speaking the local language, or publish "
        "the hours when they are available."
    ),
    "Unfriendly service": (
        "Service attitude: review a sample of {assignment_group} tickets from {where} with the MSP "
        "and agree coaching for the agents involved."
    ),
    "Slow response": (
        "Responsiveness: check first-response times for {where} against the contract and the "
        "staffing of {channel}."
    ),
}


# For a factor without a template of its own, and for a root where no factor rose.
DEFAULT_FACTOR = (
    "Review with the MSP a sample of recent tickets from {where} whose respondents cited \"{factor}\", "
    "and agree one corrective action with an owner and a date."
)
NO_FACTOR = (
    "No feedback factor rose clearly in {where}: read the comments of its unhappy respondents and "
    "compare ticket routing and resolution times before and after the change."
)


class _Phrases(dict[str, str]):
    """Dimension values of the root segment; a neutral phrase for the others."""

    def __missing__(self, key: str) -> str:
        return f"the affected {key.replace('_', ' ')}s"


def _phrases(segment: Mapping[str, str]) -> _Phrases:
    """``{service}`` reads "service SAP" when the root names it."""
    phrases = _Phrases({name: f"{name.replace('_', ' ')} {value}" for name, value in segment.items()})
    phrases["where"] = describe_segment(segment)
    return phrases


def describe_segment(segment: Mapping[str, str]) -> str:
    return segment_label(segment, everyone="all areas")


def suggestions_for(
    factors: list[str], segment: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> list[str]:
    """One suggestion per factor, in the factors' order; never none.

    A factor without a template gets ``DEFAULT_FACTOR``; a root where no factor
    rose gets ``NO_FACTOR``, so every root says what to do next.
    """
    templates = {name.casefold(): text for name, text in DEFAULT_SUGGESTIONS.items()}
    templates.update({name.casefold(): text for name, text in (overrides or {}).items()})
    phrases = _phrases(segment)
    found = []
    for factor in factors:
        phrases["factor"] = factor
        found.append(templates.get(factor.casefold(), DEFAULT_FACTOR).format_map(phrases))
    return found or [NO_FACTOR.format_map(phrases)]
