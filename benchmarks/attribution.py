"""Attribution benchmark: several planted effects at once, one root finding for each dip.

Per-segment detection alone floods the reader with echoes; issue 4's attribution
must turn each planted cause into exactly one root finding on the right segment,
naming the right factor, and must not invent roots for what is not a dip. This
script measures that end to end, through the public paths (``write_csv``,
``ingest_files``, a registered transition, ``run_analysis``), on seeded synthetic
scenarios built with ``monitor.dev.synthetic``, each holding at once:

* a generic short dip at the go-live (2 weeks at full strength, 4 weeks recovery);
* a lasting dip limited to a pair of dimensions (e.g. Finland x SAP);
* a dip limited to one channel, at another date;
* a smaller dip in a small segment (a small country, office or department);
* an improvement in a channel, which must not be reported as a dip;
* a tiny noisy segment (Iceland: 0.3% of responses, a third of ratings random);
* the generator's holiday volume drops (Christmas/New Year, summer).

Every planted dip raises exactly ONE factor, so "the planted factor ranked first"
among the root finding's rising factors is well defined, and carries a lost-time
rise. Two layouts space the dips at least 8 weeks apart (each is its own
incident); the third packs them into a wave after a January go-live (pair dip 4
weeks after the go-live, while the generic dip is still recovering, then 5 weeks
between the next ones), as happens when several services move in quick succession.

Scored per scenario, on the findings that ``run_analysis`` reports as roots:

* a planted dip is *found* when a Happiness root on the worse side starts within
  2 weeks of the planted start and names the planted segment (a generic dip: a
  root with ``scope == "generic"`` and segment ``{}``); whether the first of its
  ``factors`` is the planted factor is reported beside it;
* a planted dip shows in Happiness, lost time and its factor's share, so roots of
  any metric with the same segment and a date within 2 weeks are the *same*
  effect; any other root on the worse side, of any metric, is a *false root*
  (listed, with the planted effect it overlaps if any, for diagnosis);
* roots are counted as distinct (segment, date) pairs across metrics and
  directions (dates within 2 weeks of each other are one), against the planted
  effects that should move a metric (the dips and the improvement).

Targets: every planted dip found with the right root, no false root, at most one
distinct root more than planted effects, the planted factor ranked first, and the
analysis of 1M responses under 15 s on the 2-core reference machine.

    python benchmarks/attribution.py [--rows N] [--scenarios a,b,c] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _shared import DEFAULT_PG_URL, fresh_database, run_child, timed_analysis  # noqa: E402

from monitor.dev.synthetic import (  # noqa: E402
    DEFAULT_GO_LIVE,
    DEFAULT_START,
    PlantedEffect,
    Scenario,
)

TOLERANCE_DAYS = 14
TARGET_SECONDS = 15.0
TARGET_SECONDS_ROWS = 1_000_000
DIPS = ("generic_dip", "localized_dip")
WEEK = dt.timedelta(weeks=1)

Finding = dict[str, Any]


# --- scenarios ------------------------------------------------------------------


@dataclass(frozen=True)
class Dip:
    """A dip limited to ``segment``, ``weeks`` after the go-live; lasting, or recovering
    over its last 4 weeks when it has ``lasts`` weeks."""

    segment: dict[str, str]
    weeks: int
    delta: float
    factor: str
    lift: float
    lasts: int | None = None

    def effect(self, go_live: dt.date) -> PlantedEffect:
        start = go_live + self.weeks * WEEK
        end = None if self.lasts is None else start + self.lasts * WEEK
        return PlantedEffect(
            kind="localized_dip", segment=self.segment, start=start, end=end,
            recovery_from=None if end is None else end - 4 * WEEK,
            happiness_delta=self.delta, factor=self.factor, factor_lift=self.lift, lost_time_factor=1.4,
        )


@dataclass(frozen=True)
class Layout:
    """One benchmark scenario: seed, go-live, the improvement, the generic dip and the segment dips."""

    seed: int
    go_live: dt.date
    improvement: tuple[str, dt.date, float]  # channel, start, Happiness points
    generic: tuple[float, str]  # Happiness points, factor
    dips: tuple[Dip, ...]

    def scenario(self) -> Scenario:
        channel, since, points = self.improvement
        delta, factor = self.generic
        g = self.go_live
        effects = (
            PlantedEffect(kind="improvement", segment={"channel": channel}, start=since, end=None,
                          happiness_delta=points, factor=None),
            # The go-live dip: full for 2 weeks, fading over the next 4.
            PlantedEffect(kind="generic_dip", segment={}, start=g, end=g + 6 * WEEK, recovery_from=g + 2 * WEEK,
                          happiness_delta=delta, factor=factor, factor_lift=0.3, lost_time_factor=1.3),
            *(dip.effect(g) for dip in self.dips),
            PlantedEffect(kind="tiny_segment", segment={"country": "Iceland"}, start=DEFAULT_START, end=None,
                          happiness_delta=0.0, factor=None, rating_noise=0.35),
        )
        return Scenario(DEFAULT_START, 104, g, effects)


SCENARIOS: dict[str, Layout] = {
    # The reference calendar; dips 10-12 weeks apart.
    "spaced": Layout(11, DEFAULT_GO_LIVE, ("Chat", DEFAULT_START + 26 * WEEK, 15.0), (-25.0, "Long waiting time"), (
        Dip({"country": "Finland", "service": "SAP"}, 10, -40.0, "Lack of business knowledge", 0.7),
        Dip({"channel": "Phone"}, 22, -15.0, "Long waiting time", 0.4, lasts=12),
        Dip({"country": "Sweden"}, 34, -18.0, "Language barrier", 0.5),
    )),
    # Same calendar, other segments and factors; dips 8-12 weeks apart.
    "variant": Layout(23, DEFAULT_GO_LIVE, ("Portal", DEFAULT_START + 20 * WEEK, 12.0),
                      (-20.0, "Had to explain multiple times"), (
        Dip({"department": "Finance", "service": "SAP"}, 8, -35.0, "Lack of business knowledge", 0.7),
        Dip({"channel": "Email"}, 20, -15.0, "Slow response", 0.4),
        Dip({"location": "Lyon"}, 30, -20.0, "Language barrier", 0.5),
    )),
    # A January go-live and a wave of dips 4-5 weeks apart, the first during the generic recovery.
    "wave": Layout(37, dt.date(2026, 1, 12), ("Walk-in", dt.date(2025, 6, 2), 10.0), (-25.0, "Long waiting time"), (
        Dip({"country": "Germany", "service": "Access Management"}, 4, -30.0, "Issue not resolved", 0.5),
        Dip({"channel": "Chat"}, 9, -15.0, "Slow response", 0.4),
        Dip({"department": "HR"}, 14, -20.0, "Unfriendly service", 0.5),
    )),
}


# --- child processes ----------------------------------------------------------


def _child_setup(url: str, csv_path: str, rows: int, name: str) -> None:
    """Generate the scenario's CSV, ingest it into a fresh schema and register the go-live."""
    from config import load_settings
    from monitor import store
    from monitor.dev.synthetic import write_csv
    from monitor.ingest.importer import ingest_files
    from monitor.store import db
    from monitor.store.models import Transition

    layout = SCENARIOS[name]
    scenario = layout.scenario()
    started = time.perf_counter()
    path = write_csv(csv_path, rows, seed=layout.seed, scenario=scenario)
    generated = time.perf_counter() - started
    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    db.upgrade(engine)
    started = time.perf_counter()
    report = ingest_files(engine, [path], settings, source="bench")
    ingested = time.perf_counter() - started
    if report.error_count or not report.committed:
        raise SystemExit(f"ingest failed: {report.as_dict()['errors'][:3]}")
    transition = Transition(name="MSP", go_live=scenario.go_live, scope={}, created_at=dt.datetime.now(dt.UTC))
    with db.session_scope(engine) as session:
        store.add_transition(session, transition)
    engine.dispose()
    print(json.dumps({"generate_seconds": generated, "ingest_seconds": ingested, "inserted": report.inserted}))


def _child_analysis(url: str, as_of: str) -> None:
    """One ``run_analysis``; its time and the findings scoring needs, as JSON."""
    report, seconds = timed_analysis(url, as_of)
    keep = ("id", "metric", "segment", "change_date", "direction", "before", "after", "delta", "n_before",
            "n_after", "root", "root_id", "scope", "explains", "segments", "factors", "children")
    findings = [{key: f.as_dict()[key] for key in keep} for f in report.findings]
    print(json.dumps({"seconds": seconds, "responses": report.responses, "findings": findings}))


# --- scoring --------------------------------------------------------------------


def _day(finding: Finding) -> dt.date:
    return dt.date.fromisoformat(finding["change_date"][:10])


def _near(day: dt.date, start: dt.date) -> bool:
    return abs((day - start).days) <= TOLERANCE_DAYS


def _label(segment: dict[str, str]) -> str:
    return " x ".join(f"{k}={v}" for k, v in sorted(segment.items())) or "everyone"


def _same_effect(finding: Finding, effect: PlantedEffect) -> bool:
    """Does the root ``finding`` stand for ``effect``: same segment, date within 2 weeks (any metric)?"""
    return finding["segment"] == effect.segment and _near(_day(finding), effect.start)


def _right_root(finding: Finding, effect: PlantedEffect) -> bool:
    """The Happiness root the planted dip must have; a generic dip's must also say ``generic``."""
    return (
        finding["metric"] == "happiness" and finding["direction"] == "worse" and _same_effect(finding, effect)
        and (effect.kind != "generic_dip" or finding["scope"] == "generic")
    )


def _overlaps(finding: Finding, effect: PlantedEffect) -> bool:
    """Same time and segments that share respondents (no dimension with two different values)."""
    segment = finding["segment"]
    return _near(_day(finding), effect.start) and all(segment.get(k, v) == v for k, v in effect.segment.items())


@dataclass
class DipResult:
    effect: PlantedEffect
    root: Finding | None
    nearby: list[Finding]  # Happiness roots on the worse side within 2 weeks, for a diagnosis

    @property
    def factor_first(self) -> bool:
        return bool(self.root and self.root["factors"] and self.root["factors"][0]["factor"] == self.effect.factor)


@dataclass
class ScenarioResult:
    name: str
    seed: int
    scenario: Scenario
    setup: dict[str, Any]
    analysis: dict[str, Any]
    dips: list[DipResult] = field(default_factory=list)
    false_roots: list[Finding] = field(default_factory=list)
    distinct_roots: list[tuple[str, dt.date, list[str]]] = field(default_factory=list)

    @property
    def planted(self) -> list[PlantedEffect]:
        """Effects that should move a metric: the dips and the improvement."""
        return [e for e in self.scenario.effects if e.kind in (*DIPS, "improvement")]

    @property
    def roots(self) -> list[Finding]:
        return [f for f in self.analysis["findings"] if f["root"]]


def _distinct(roots: Iterable[Finding]) -> list[tuple[str, dt.date, list[str]]]:
    """Roots grouped by segment and date (within 2 weeks of the group's first): (segment, date, metrics)."""
    groups: list[tuple[str, dt.date, list[str]]] = []
    for root in sorted(roots, key=_day):
        label, day = _label(root["segment"]), _day(root)
        home = next((g for g in groups if g[0] == label and _near(day, g[1])), None)
        tag = f"{root['metric']}{'-' if root['direction'] == 'worse' else '+'}"
        if home is None:
            groups.append((label, day, [tag]))
        elif tag not in home[2]:
            home[2].append(tag)
    return groups


def score(result: ScenarioResult) -> ScenarioResult:
    roots = result.roots
    dips = [e for e in result.scenario.effects if e.kind in DIPS]
    for effect in dips:
        nearby = [r for r in roots if r["metric"] == "happiness" and r["direction"] == "worse"
                  and _near(_day(r), effect.start)]
        match = next((r for r in nearby if _right_root(r, effect)), None)
        result.dips.append(DipResult(effect, match, nearby))
    result.false_roots = [
        r for r in roots if r["direction"] == "worse" and not any(_same_effect(r, e) for e in dips)
    ]
    result.distinct_roots = _distinct(roots)
    return result


# --- reporting --------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _factor_text(root: Finding | None, top: int = 3) -> str:
    if root is None or not root["factors"]:
        return "-"
    return ", ".join(f"{f['factor']} {f['delta']:+.1f}" for f in root["factors"][:top])


def _root_text(root: Finding) -> str:
    named = ", ".join(f"{_label(s['segment'])} {s['share']}" for s in root["segments"]) or "-"
    return (
        f"{root['metric']} {root['direction']} in {_label(root['segment'])} from {root['change_date'][:10]}: "
        f"{root['before']:.1f} -> {root['after']:.1f} ({root['delta']:+.1f}), n {root['n_before']}/{root['n_after']}, "
        f"scope {root['scope']}, explains {root['explains']}, named {named}; factors {_factor_text(root)}"
    )


def _diagnose(dip: DipResult, findings: list[Finding]) -> None:
    """Why a planted dip has no right root: the roots there instead, or what became of its own finding."""
    by_id = {f["id"]: f for f in findings}
    for other in dip.nearby:
        print(f"{'':<6}root there instead: {_root_text(other)}")
    own = [f for f in findings if f["metric"] == "happiness" and f["segment"] == dip.effect.segment
           and f["direction"] == "worse" and _near(_day(f), dip.effect.start)]
    for finding in own:
        root = by_id.get(finding["root_id"])
        folded = "a root" if finding["root"] else f"folded into {_root_text(root)}" if root else "an orphan echo"
        print(f"{'':<6}its own Happiness finding from {finding['change_date'][:10]} ({finding['delta']:+.1f}) is {folded}")
    if not own:
        print(f"{'':<6}no Happiness finding in {_label(dip.effect.segment)} within {TOLERANCE_DAYS} d: not detected")


def report(result: ScenarioResult) -> None:
    s, a = result.setup, result.analysis
    print(f"\n== {result.name} (seed {result.seed}, go-live {result.scenario.go_live}): {a['responses']:,} responses; "
          f"generate {s['generate_seconds']:.1f} s, ingest {s['ingest_seconds']:.1f} s, "
          f"analysis {a['seconds']:.1f} s ({a['peak_mb']:.0f} MB peak)")
    print(f"{'planted dip':<44} {'start':>10} {'delta':>6} {'root':>5} {'date':>10} {'scope':>9} "
          f"{'1st factor':>6}  planted factor / factors named")
    for dip in result.dips:
        e, root = dip.effect, dip.root
        print(
            f"{_label(e.segment):<44} {e.start.isoformat():>10} {e.happiness_delta:+6.0f} "
            f"{'yes' if root else 'NO':>5} {root['change_date'][:10] if root else '-':>10} "
            f"{(root['scope'] or '-') if root else '-':>9} {'yes' if dip.factor_first else 'NO':>6}  "
            f"{e.factor} / {_factor_text(root)}"
        )
        if root is None:
            _diagnose(dip, result.analysis["findings"])
    for effect in result.scenario.effects:
        if effect.kind == "improvement":
            seen = [r for r in result.roots if r["metric"] == "happiness" and _overlaps(r, effect)]
            shown = "; ".join(f"{r['direction']} in {_label(r['segment'])} {r['delta']:+.1f}" for r in seen) or "none"
            print(f"improvement {_label(effect.segment)} {effect.happiness_delta:+.0f} from {effect.start}: "
                  f"Happiness roots there: {shown}")
    print(f"false roots: {len(result.false_roots)}")
    for root in result.false_roots:
        overlap = [_label(e.segment) for e in result.scenario.effects if e.kind in DIPS and _overlaps(root, e)]
        print(f"      {_root_text(root)}" + (f"  [overlaps planted {', '.join(overlap)}]" if overlap else ""))
    findings = a["findings"]
    print(f"roots: {len(result.roots)} root findings of {len(findings)}; {len(result.distinct_roots)} distinct "
          f"(segment, date) vs {len(result.planted)} planted effects (dips + improvement)")
    for label, day, metrics in result.distinct_roots:
        print(f"      {day}  {label}: {', '.join(metrics)}")


def targets(results: list[ScenarioResult], rows: int) -> bool:
    """Print PASS/FAIL per target; True when all pass."""
    dips = [d for r in results for d in r.dips]
    found = sum(d.root is not None for d in dips)
    factor = sum(d.factor_first for d in dips)
    false = sum(len(r.false_roots) for r in results)
    excess = max(len(r.distinct_roots) - len(r.planted) for r in results)
    slowest = max(r.analysis["seconds"] for r in results)
    checks = [
        (f"planted dips found with the right root and date (+-{TOLERANCE_DAYS} d): {found}/{len(dips)}",
         found == len(dips)),
        (f"false roots (worse side, any metric): {false}", false == 0),
        (f"distinct roots - planted effects <= 1: worst scenario {excess:+d}", excess <= 1),
        (f"planted factor ranked first: {factor}/{len(dips)}", factor == len(dips)),
    ]
    if rows >= TARGET_SECONDS_ROWS:
        checks.append((f"analysis < {TARGET_SECONDS:.0f} s at {rows:,} rows: slowest {slowest:.1f} s",
                       slowest < TARGET_SECONDS))
    else:
        checks.append((f"analysis time at {rows:,} rows (target {TARGET_SECONDS:.0f} s is for 1M): slowest "
                       f"{slowest:.1f} s", True))
    print(f"\nTargets ({len(results)} scenarios, {rows:,} rows each)")
    for text, ok in checks:
        print(f"  {text}  {verdict(ok)}")
    return all(ok for _, ok in checks)


def summary_table(results: list[ScenarioResult]) -> None:
    print(f"\n{'scenario':<9} {'rows':>9} {'ingest s':>8} {'analysis s':>10} {'dips found':>10} "
          f"{'factor 1st':>10} {'false roots':>11} {'roots (distinct)':>16} {'planted':>7}")
    for r in results:
        print(
            f"{r.name:<9} {r.analysis['responses']:>9,} {r.setup['ingest_seconds']:8.1f} {r.analysis['seconds']:10.1f} "
            f"{sum(d.root is not None for d in r.dips):>5}/{len(r.dips):<4} "
            f"{sum(d.factor_first for d in r.dips):>5}/{len(r.dips):<4} {len(r.false_roots):>11} "
            f"{len(r.roots):>8} ({len(r.distinct_roots):>2})   {len(r.planted):>7}"
        )


def run_scenario(name: str, rows: int, backend: str, pg_url: str) -> ScenarioResult:
    layout = SCENARIOS[name]
    scenario = layout.scenario()
    as_of = scenario.end + dt.timedelta(days=1)
    with tempfile.TemporaryDirectory(prefix="mspmon-bench-") as tmp:
        url, cleanup = fresh_database(backend, Path(tmp), pg_url)
        try:
            setup = run_child(__file__, "--child-setup", url, str(Path(tmp) / "responses.csv"), str(rows), name)
            analysis = run_child(__file__, "--child-analysis", url, as_of.isoformat())
        finally:
            cleanup()
    return score(ScenarioResult(name, layout.seed, scenario, setup, analysis))


def _scenario_names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(SCENARIOS)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--scenarios", type=_scenario_names, default=list(SCENARIOS))
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--child-setup", nargs=4, metavar=("URL", "CSV", "ROWS", "SCENARIO"), help=argparse.SUPPRESS)
    parser.add_argument("--child-analysis", nargs=2, metavar=("URL", "AS_OF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_setup:
        url, csv_path, rows, name = args.child_setup
        _child_setup(url, csv_path, int(rows), name)
        return
    if args.child_analysis:
        _child_analysis(*args.child_analysis)
        return

    started = time.perf_counter()
    results = []
    for name in args.scenarios:
        results.append(run_scenario(name, args.rows, args.backend, args.pg_url))
        report(results[-1])
    summary_table(results)
    ok = targets(results, args.rows)
    print(f"({time.perf_counter() - started:.0f} s in all, backend {args.backend}; {'all PASS' if ok else 'FAIL'})")


if __name__ == "__main__":
    main()
