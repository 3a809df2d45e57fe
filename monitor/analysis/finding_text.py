"""Findings as plain text for the terminal: a table of roots with echoes under them,
and the drill-down tree of one finding (``mspmon explain``)."""

from __future__ import annotations

from monitor.analysis.finding_view import SHOWN_ALIASES, FindingView
from monitor.analysis.suggestions import describe_segment
from monitor.scope import segment_filter_text

HEADER = (
    f"{'id':<14} {'metric':<32} {'segment':<40} {'since':<10} {'before':>7} {'after':>7} "
    f"{'delta [95% CI]':>24} {'n before/after':>15}"
)


def signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def finding_row(f: FindingView, indent: str = "") -> str:
    interval = f"{signed(f.delta)} [{signed(f.ci_low)}, {signed(f.ci_high)}]"
    width = 14 - len(indent)
    return (
        f"{indent}{f.id:<{width}} {f.metric[:32]:<32} {segment_filter_text(f.segment)[:40]:<40} {f.change_date.isoformat():<10} "
        f"{f.before:>7.1f} {f.after:>7.1f} {interval:>24} {f.n_before:>7}/{f.n_after:<7}"
        + (f" recovered {f.recovered_on.isoformat()}" if f.recovered_on else "")
    )


def root_summary(f: FindingView) -> list[str]:
    """What a root finding says beyond its numbers: where, why, what to do."""
    explanation = f.explanation
    lines = []
    where = {
        "generic": "generic: spread over every area",
        "localized": "localized",
        "mixed": "mixed: a generic part plus a localized part",
    }.get(f.scope or "", "")
    if explanation.aliases:
        lines.append("    " + "; ".join(alias.text() for alias in explanation.aliases[:SHOWN_ALIASES]))
    if explanation.first_named is not None:
        lines.append(f"    first reported as {segment_filter_text(explanation.first_named)}")
    if where:
        lines.append(f"    scope: {where}")
    for named in (n for n in explanation.segments if n.segment != f.segment):
        lines.append(
            f"      {segment_filter_text(named.segment)}: {signed(named.delta)} "
            f"(n {named.n_before}/{named.n_after}), explains {_percent(named.share)} of the overall change"
        )
    if f.explains is not None and f.segment:
        lines.append(f"    explains {_percent(f.explains)} of everyone's change over the same weeks")
    elif explanation.overall_effect is not None and f.segment:
        lines.append(
            f"    everyone's {f.metric} did not worsen over these weeks; this segment moved it by {signed(explanation.overall_effect)}"
        )
    mix = explanation.mix_rate
    if mix:
        lines.append(f"    rate {signed(mix.rate)} vs mix {signed(mix.mix)} (mix by {mix.by})")
    did = explanation.did
    if did:
        lines.append(
            f"    difference-in-differences vs outside {did['transition']!r}: {signed(did['estimate'])} "
            f"[{signed(did['ci_low'])}, {signed(did['ci_high'])}]"
        )
    for factor in explanation.factors[:3]:
        lines.append(
            f"    factor rose: {factor.factor} {factor.before_share:.1f}% -> {factor.after_share:.1f}% "
            f"(p={factor.p_value:.2g})"
        )
    for fell in explanation.positive_factors_fell[:2]:
        lines.append(
            f"    positive factor fell: {fell.factor} {fell.before_share:.1f}% -> {fell.after_share:.1f}% "
            f"(p={fell.p_value:.2g})"
        )
    for other in explanation.related:
        where = "" if other.segment == f.segment else f" in {segment_filter_text(other.segment)}"
        lines.append(
            f"    same cause{where}: {other.metric} {other.before if other.before is not None else float('nan'):.1f} -> "
            f"{other.after if other.after is not None else float('nan'):.1f} ({signed(other.delta)})"
        )
    lines.extend(f"    suggestion: {text}" for text in explanation.suggestions[:2])
    return lines


def findings_table(findings: list[FindingView]) -> list[str]:
    """Root findings, each with its summary and its echoes indented under it."""
    lines = [HEADER]
    for f in findings:
        if f.root:
            lines.append(finding_row(f))
            lines.extend(root_summary(f))
        else:
            lines.append(finding_row(f, indent="  └ "))
    return lines


def explain_text(f: FindingView, echoes: list[FindingView]) -> str:
    """The drill-down tree of one finding: the root, the segments inside it, its echoes."""
    if not f.root:
        return f"{f.id} is an echo of {f.root_id}: run `mspmon explain {f.root_id}`."
    lines = [
        f"{f.id}: {f.metric} in {segment_filter_text(f.segment)} since {f.change_date.isoformat()}",
        f"  {f.before:.1f} -> {f.after:.1f}, delta {signed(f.delta)} [{signed(f.ci_low)}, {signed(f.ci_high)}], "
        f"n {f.n_before}/{f.n_after}, state {f.state}",
    ]
    lines.extend(root_summary(f))
    tree = f.explanation.tree
    if tree:
        lines.append("")
        lines.append(f"  drill-down of {describe_segment(tree['segment'])} over {tree['n_before']}/{tree['n_after']} responses:")
        for child in tree.get("children", []):
            added = {k: v for k, v in child["segment"].items() if k not in tree["segment"]}
            label = segment_filter_text(added)
            if "delta" in child:
                lines.append(
                    f"    {label:<40} {signed(child['delta']):>7}  share {_percent(child['share']):>5}  "
                    f"n {child['n_before']}/{child['n_after']}"
                )
            else:
                lines.append(f"    {label:<40} {'':>7}  share {_percent(child['share']):>5}  n {child['n_before']}/{child['n_after']} (segments below the anonymity threshold or smaller)")
    if echoes:
        lines.append("")
        lines.append(f"  echoes ({len(echoes)}), explained by this finding:")
        lines.extend(finding_row(e, indent="    ") for e in echoes)
    return "\n".join(lines)
