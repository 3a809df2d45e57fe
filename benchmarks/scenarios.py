"""Scenario-family benchmark: hundreds of random worlds, each with its own planted truth.

Why random draws: a benchmark made of a few fixed scenarios can be passed by tuning
(thresholds, tie-breaks, special cases) to exactly those scenarios. Here each seed
draws a new world with ``monitor.dev.scenarios.draw_scenario``: 3-8 dimensions of
2-40 skewed values (nested and crossed), 1-3 years with holidays, a go-live
anywhere (sometimes 1-3 weeks after the first response) with assignment groups
replaced and services renamed, and 0-6 planted effects (generic, localized in one
value, a pair or a triple, co-starting generic + localized, gradual, improvement,
variance-only, volume drop) of random sizes and segments. The fixed demo scenario is
one more case ("demo"). Seeds are the only input; nothing is there to tune to.

Each case goes through the public paths (CSV -> ``ingest_files`` -> a registered
Transition -> ``run_analysis`` as of the end of the data) and the root findings are
scored against the truth:

* **recall** of a planted dip: a Happiness root, worse, on the planted segment or a
  segment with exactly the same respondents over the effect's window, dated within
  2 weeks of onset (inside the ramp, from onset - 2 weeks, for a gradual one). The
  headline recall counts effects of >= 2x the minimum effect (20 points) in segments
  with >= 60 responses a week after onset; recall over all effects is shown too, and
  among the headline dips whose clairvoyant z (``oracle_z``) clears the bar of a known
  date (``segment_bar``) or of a searched one (``search_bar``), or clears the searched
  one by a standard error (``CLEAR_MARGIN``: the 95% target is judged there, where a
  calibrated search can be expected to find a dip, not at the bar);
* **false roots**: any root (any metric) that is not a planted dip's own root (same
  respondents, date rule above) nor the volume root of a volume drop of everyone;
  roots on an improvement, a variance-only change or (experience metrics) a volume
  drop are false. Shown per scenario, and per 50 scenarios without any effect;
* **median date error** of the matched Happiness roots (0 inside a gradual ramp);
* **co-starting** generic + localized: two Happiness roots (or one ``mixed`` root
  naming the local segment: "two parts") and the recovery of each within 2 weeks
  (or none when it lasts);
* **same segment**: lost-time and factor roots of a planted dip (same date, sharing
  respondents) on the same respondents as its Happiness root;
* **three dimensions**: triple effects found at their three dimensions (the target on
  the headline ones, as recall's; half the pairs and triples are drawn where
  respondents are, so some are large enough to judge);
* **separable**: headline pairs and triples whose clairvoyant z against the rest of
  their best parent clears the Bonferroni bar over that parent's children
  (``oracle_separation``): the others cannot be told from an uneven dip of the parent;
* **ended segments**: findings on a value that stopped ``ENDED_WEEKS`` (4) or more
  weeks before the end of the data (in-house groups, old service names, closed
  sites) still open (state new/ongoing);
* **weekly replays** on ``--replays`` cases spread over the run (every k-th): the analysis as of onset + 2..6
  weeks of the first dip (go-live, else mid-data, without one): detection delay in
  weekly runs and churn (share of roots whose id disappears, stops being a root or
  whose date moves by more than a week, between consecutive runs);
* **crashes**: counted with a traceback summary; one crash never stops the run.

    python benchmarks/scenarios.py [--quick] [--seeds 200] [--first-seed 0] [--classes pair,gradual]
                                   [--backend sqlite|postgresql] [--workers 2] [--replays 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TOLERANCE = dt.timedelta(days=14)
WEEK = dt.timedelta(weeks=1)
HEADLINE_SIZE = 20.0  # 2x the Happiness minimum effect (detectors.metrics.Happiness.min_effect)
HEADLINE_PER_WEEK = 60.0
# A dip "clear of the search": its clairvoyant z beats the searched bar by one standard
# error. At the bar itself a dip is found about half the time by any calibrated search
# (its z on the weeks a detector reads scatters around the clairvoyant's by about 1).
CLEAR_MARGIN = 1.0
ORACLE_WEEKS_BEFORE, ORACLE_WEEKS_AFTER = 12, 8  # the windows of oracle_z, as attribution's
REPLAY_WEEKS = range(2, 7)
EXPERIENCE = ("happiness", "lost_time")

Finding = dict[str, Any]
KEEP = ("id", "metric", "segment", "change_date", "direction", "delta", "n_before", "n_after", "root", "root_id",
        "scope", "state", "recovered_on", "segments", "factors", "related", "ci_low", "ci_high", "found_by", "known_date")


# --- one case, in a worker process ----------------------------------------------------------


def _init_worker() -> None:
    # run_analysis sizes its detector pool from os.cpu_count(); the benchmark already
    # runs one case per core, so each analysis must stay in its own process.
    os.cpu_count = lambda: 1  # type: ignore[assignment]


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def _dated(finding: Finding, effect: Any) -> bool:
    day = _day(finding["change_date"])
    if effect.ramp_end is not None:
        return effect.onset - TOLERANCE <= day <= effect.ramp_end
    return abs(day - effect.onset) <= TOLERANCE


def _date_error(finding: Finding, effect: Any) -> float:
    day = _day(finding["change_date"])
    if effect.ramp_end is not None and effect.onset <= day <= effect.ramp_end:
        return 0.0
    return abs((day - effect.onset).days) / 7.0


def _analysis(url: str, as_of: dt.date) -> tuple[list[Finding], float]:
    from config import load_settings
    from monitor.analysis.run import run_analysis
    from monitor.store import db

    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    try:
        started = time.perf_counter()
        report = run_analysis(engine, settings, as_of)
        return [{k: f.as_dict().get(k) for k in KEEP} for f in report.findings], time.perf_counter() - started
    finally:
        engine.dispose()


def _load(url: str, csv: Path, scenario: Any) -> float:
    """Ingest the CSV into the fresh database at ``url`` and register the go-live."""
    from config import load_settings
    from monitor import store
    from monitor.ingest.importer import ingest_files
    from monitor.store import db
    from monitor.store.models import Transition

    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        started = time.perf_counter()
        now = dt.datetime.combine(scenario.end + dt.timedelta(days=2), dt.time(12), tzinfo=dt.UTC)
        report = ingest_files(engine, [csv], settings, source="scenario", now=now, parallel=False)
        if report.error_count or not report.committed:
            raise RuntimeError(f"ingest failed: {report.as_dict()['errors'][:3]}")
        with db.session_scope(engine) as session:
            store.add_transition(session, Transition(name="MSP", go_live=scenario.go_live, scope={},
                                                     created_at=now))
        return time.perf_counter() - started
    finally:
        engine.dispose()


def _crash(where: str) -> dict[str, str]:
    lines = traceback.format_exc().strip().splitlines()
    return {"where": where, "error": lines[-1], "trace": "\n".join(lines[-7:])}


def run_case(job: tuple[int | str, dict[str, Any]]) -> dict[str, Any]:
    """Draw, load, analyse and score one case; never raises (a crash is part of the result)."""
    case, opts = job
    from _shared import fresh_database

    from monitor.dev.scenarios import EffectClass, demo_scenario, draw_scenario

    result: dict[str, Any] = {"case": case, "crashes": [], "seconds": {}}
    started, cpu = time.perf_counter(), time.process_time()
    try:
        if case == "demo":
            scenario = demo_scenario()
        else:
            classes = [EffectClass(c) for c in opts["classes"]] if opts["classes"] else None
            scenario = draw_scenario(int(case), classes=classes)
    except Exception:
        result["crashes"].append(_crash("draw"))
        return result
    result["seconds"]["draw"] = time.perf_counter() - started
    result["describe"] = scenario.describe()
    result["rows"] = len(scenario.responses)
    result["effects"] = [_effect_dict(e) for e in scenario.effects]
    with tempfile.TemporaryDirectory(prefix="mspmon-scen-") as tmp:
        work = Path(tmp)
        csv = scenario.write_csv(work / "responses.csv")
        cleanups = []
        try:
            url, cleanup = fresh_database(opts["backend"], work, opts["pg_url"])
            cleanups.append(cleanup)
            result["seconds"]["ingest"] = _load(url, csv, scenario)
            replay_url = None
            if opts["replay"]:
                if opts["backend"] == "sqlite":
                    replay_dir = work / "replay"
                    replay_dir.mkdir()
                    shutil.copy(work / "bench.db", replay_dir / "bench.db")
                    replay_url, cleanup = f"sqlite:///{replay_dir / 'bench.db'}", lambda: None
                else:
                    replay_url, cleanup = fresh_database(opts["backend"], work, opts["pg_url"])
                    _load(replay_url, csv, scenario)
                cleanups.append(cleanup)
            try:
                findings, seconds = _analysis(url, scenario.end + dt.timedelta(days=1))
                result["seconds"]["analysis"] = seconds
                result["score"] = score(scenario, findings)
            except Exception:
                result["crashes"].append(_crash("analysis"))
            if replay_url is not None:
                result["replay"] = replay(scenario, replay_url, result["crashes"])
        except Exception:
            result["crashes"].append(_crash("setup"))
        finally:
            for cleanup in cleanups:
                try:
                    cleanup()
                except Exception:
                    result["crashes"].append(_crash("cleanup"))
    result["seconds"]["total"] = time.perf_counter() - started
    result["seconds"]["cpu"] = time.process_time() - cpu  # the analysis runs in this process
    return result


def _effect_dict(effect: Any) -> dict[str, Any]:
    return {
        "cls": str(effect.cls), "segment": effect.segment, "onset": effect.onset.isoformat(),
        "ramp_end": effect.ramp_end and effect.ramp_end.isoformat(),
        "recovery": effect.recovery and effect.recovery.isoformat(), "size": effect.size, "factor": effect.factor,
        "per_week": effect.per_week, "respondents": len(effect.respondents), "group": effect.group,
        "part": effect.part,
    }


# --- scoring (in the worker: it needs the responses to compare respondents) ----------------


def _headline(effect: Any) -> bool:
    return abs(effect.size) >= HEADLINE_SIZE and effect.per_week >= HEADLINE_PER_WEEK


def _recovery_right(root: Finding, effect: Any, end: dt.date) -> bool:
    planted = effect.recovery if effect.recovery is not None and effect.recovery < end else None
    found = root.get("recovered_on")
    if planted is None:
        return found is None
    return found is not None and abs(_day(found) - planted) <= TOLERANCE


def _happiness(rating: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Happiness of the masked ratings and its sampling variance (NaN when empty)."""
    n = int(mask.sum())
    if not n:
        return float("nan"), float("nan")
    promoters, detractors = float((rating[mask] >= 9).mean()), float((rating[mask] <= 6).mean())
    return 100.0 * (promoters - detractors), 1e4 * (promoters + detractors - (promoters - detractors) ** 2) / n


def _oracle_windows(scenario: Any, effect: Any) -> tuple[np.ndarray, tuple, list[np.ndarray], list[tuple]]:
    """Ratings, the clairvoyant's windows, the effect's respondents in each and their Happiness."""
    rating = scenario.responses["rating"].to_numpy(dtype=float)
    first = effect.ramp_end or effect.onset
    last = min(effect.recovery or scenario.end, first + ORACLE_WEEKS_AFTER * WEEK, scenario.end)
    windows = (effect.onset - ORACLE_WEEKS_BEFORE * WEEK, effect.onset), (first, last)
    own = [scenario.mask(effect.segment, a, b) for a, b in windows]
    return rating, windows, own, [_happiness(rating, m) for m in own]


def oracle_z(scenario: Any, effect: Any) -> float:
    """The planted dip's z for a clairvoyant that knows its segment, onset and end.

    Its segment's Happiness over up to ``ORACLE_WEEKS_AFTER`` weeks from where the dip
    is full (the onset, the end of a ramp) to its recovery, against the
    ``ORACLE_WEEKS_BEFORE`` weeks before onset; a segment's change net of everyone
    else's over the same weeks. No detector can do better on the same responses: the
    bound that says which planted dips the data can show at all.
    """
    rating, windows, own, ((b, vb), (a, va)) = _oracle_windows(scenario, effect)
    change, variance = a - b, va + vb
    if effect.segment:
        rest = [scenario.mask({}, a_, b_) & ~m for (a_, b_), m in zip(windows, own, strict=True)]
        (rb, rvb), (ra, rva) = (_happiness(rating, m) for m in rest)
        change, variance = change - (ra - rb), variance + rva + rvb
    return abs(change) / math.sqrt(variance) if variance > 0 else float("nan")


def oracle_separation(scenario: Any, effect: Any) -> tuple[float, float]:
    """How clearly a clairvoyant tells a pair or triple from its parents, and the bar.

    For each parent (the segment less one dimension), the z of the planted segment's
    change net of the change of the rest of that parent, on ``oracle_z``'s windows,
    against the Bonferroni bar over that parent's children with >= 60 responses (the
    child the data picks is one of them, as in attribution's descent). Returns the
    best parent's (z, bar): a dip whose z is under its bar cannot be told from a dip of
    its parent with an uneven spread, by any method that controls false roots.
    """
    from detectors.attribution import critical_z

    rating, windows, own, ((b, vb), (a, va)) = _oracle_windows(scenario, effect)
    frame = scenario.responses
    best = (float("nan"), float("nan"))
    for dropped in effect.segment:
        parent = {k: v for k, v in effect.segment.items() if k != dropped}
        rest = [scenario.mask(parent, a_, b_) & ~m for (a_, b_), m in zip(windows, own, strict=True)]
        (rb, rvb), (ra, rva) = (_happiness(rating, m) for m in rest)
        variance = va + vb + rva + rvb
        if not variance > 0:
            continue
        z = abs((a - b) - (ra - rb)) / math.sqrt(variance)
        inside = frame[scenario.mask(parent)]
        children = sum(int((inside.groupby(name, observed=True).size() >= 60).sum())
                       for name in scenario.dimension_names if name in frame and name not in parent)
        bar = critical_z(children, 0.05)
        if not z - bar <= best[0] - best[1]:
            best = (z, bar)
    return best


def _segments_searched(scenario: Any) -> int:
    """Everyone plus every single-dimension and pair segment with at least 60 responses."""
    from itertools import combinations

    frame = scenario.responses
    names = [d for d in scenario.dimension_names if d in frame]
    return 1 + sum(int((frame.groupby(list(by), observed=True).size() >= 60).sum())
                   for k in (1, 2) for by in combinations(names, k))


def segment_bar(scenario: Any) -> float:
    """The z a segment's change needs, its date given, when the segment was picked
    from every single-dimension and pair segment with at least 60 responses
    (Bonferroni over those, family-wise 5%): lenient, since the date is free and the
    other metrics are not counted, so recall among dips that clear it is a fair
    upper bound on what any method controlling false roots can reach."""
    from detectors.attribution import critical_z

    return critical_z(_segments_searched(scenario), 0.05)


def search_bar(scenario: Any) -> float:
    """The same when the date is searched too (every week of the history): what a dip
    nothing else dates (no go-live, no change of everyone at its onset) must clear.
    Still lenient (Happiness only, single values and pairs only)."""
    from detectors.attribution import searched_critical_z

    return searched_critical_z(_segments_searched(scenario), scenario.weeks, 0.05)


def score(scenario: Any, findings: list[Finding]) -> dict[str, Any]:
    """Match root findings to planted effects; everything the tables need, JSON-able."""
    from monitor.analysis.findings import ENDED_WEEKS
    from monitor.dev.scenarios import EffectClass

    bar, searched = segment_bar(scenario), search_bar(scenario)

    roots = [f for f in findings if f["root"]]
    effects = list(scenario.effects)
    same = {}  # (finding index, effect index) -> same respondents
    for i, root in enumerate(roots):
        for j, effect in enumerate(effects):
            if _dated(root, effect):
                same[i, j] = scenario.same_respondents(root["segment"], effect)

    def matches(i: int, j: int) -> bool:
        return same.get((i, j), False)

    # False roots: not a dip's own root, nor the volume root of a volume drop of everyone.
    false_roots = []
    for i, root in enumerate(roots):
        legit = any(matches(i, j) and (e.is_dip or (e.cls is EffectClass.VOLUME_DROP and root["metric"] == "volume"))
                    for j, e in enumerate(effects))
        if legit:
            continue
        on = [str(e.cls) for j, e in enumerate(effects) if matches(i, j)]
        near = [str(e.cls) for j, e in enumerate(effects)
                if not matches(i, j) and _dated(root, e) and scenario.overlaps(root["segment"], e)]
        # Same respondents as a planted effect but dated outside the tolerance: a date error, not a new cause.
        off = [str(e.cls) for e in effects
               if not on and not near and abs(_day(root["change_date"]) - e.onset) <= 4 * TOLERANCE
               and scenario.same_respondents(root["segment"], e)]
        cause = (f"on {on[0]}" if on else f"near {near[0]} (other segment)" if near
                 else f"on {off[0]} but dated 3-8 weeks off" if off else "unplanted")
        false_roots.append({"metric": root["metric"], "segment": root["segment"], "date": root["change_date"][:10],
                            "delta": root["delta"], "scope": root["scope"], "cause": cause})

    out_effects = []
    for j, effect in enumerate(effects):
        entry: dict[str, Any] = {"cls": str(effect.cls), "headline": _headline(effect), "size": effect.size,
                                 "per_week": effect.per_week, "segment": effect.segment, "part": effect.part,
                                 "group": effect.group, "onset": effect.onset.isoformat()}
        happy = [i for i, r in enumerate(roots) if r["metric"] == "happiness" and matches(i, j)]
        if effect.is_dip:
            entry["found"] = bool(happy)
            entry["oracle_z"] = oracle_z(scenario, effect)
            entry["detectable"] = bool(entry["oracle_z"] >= bar)
            entry["detectable_searched"] = bool(entry["oracle_z"] >= searched)
            entry["search_margin"] = entry["oracle_z"] - searched
            if len(effect.segment) >= 2:
                z, child_bar = oracle_separation(scenario, effect)
                entry["separation_z"], entry["separable"] = z, bool(z >= child_bar)
            if happy:
                best = min(happy, key=lambda i: _date_error(roots[i], effect))
                entry["date_error"] = _date_error(roots[best], effect)
                entry["root"] = roots[best]["id"]
                entry["recovery_right"] = _recovery_right(roots[best], effect, scenario.end)
                entry["scope"] = roots[best]["scope"]
            else:  # why not: what the analysis said around then (diagnosis only)
                entry["instead"] = [
                    f"{'root' if f['root'] else 'echo'} {f['metric']} {f['change_date'][:10]} {f['delta']:+.1f} "
                    f"{f['scope'] or ''} {_label(f['segment'])}"
                    for f in findings if f["metric"] == "happiness"
                    and abs(_day(f["change_date"]) - effect.onset) <= 2 * TOLERANCE
                    and (f["root"] or scenario.same_respondents(f["segment"], effect))][:6]
            # Lost-time and factor roots of this dip: same date rule, sharing respondents.
            home = roots[happy[0]]["segment"] if happy else effect.segment
            # (Not those that are another planted effect's own: a co-starting local part's
            # lost-time root shares respondents with the generic part.)
            related = [r for i, r in enumerate(roots)
                       if r["metric"] != "happiness" and r["metric"] != "volume" and _dated(r, effect)
                       and scenario.overlaps(r["segment"], effect)
                       and (r["metric"] == "lost_time" or r["metric"] == f"factor:{effect.factor}")
                       and not any(matches(i, k) for k in range(len(effects)) if k != j)]
            entry["related"] = len(related)
            entry["related_same"] = sum(scenario.same_respondents(r["segment"], effect) if not happy
                                        else _same_segment(scenario, r["segment"], home, effect) for r in related)
            # The same, counting also the roots folded under the Happiness root (its
            # ``related``): one cause, one root, each metric on the same respondents.
            folded = [r for r in ((roots[happy[0]].get("related") or []) if happy else [])
                      if r["metric"] == "lost_time" or r["metric"] == f"factor:{effect.factor}"]
            entry["folded"] = len(folded)
            entry["folded_same"] = sum(_same_segment(scenario, r["segment"], home, effect) for r in folded)
            if effect.cls is EffectClass.TRIPLE and not happy:
                entry["inside_pair"] = any(
                    r["metric"] == "happiness" and _dated(r, effect) and 0 < len(r["segment"]) < 3
                    and all(effect.segment.get(k) == v for k, v in r["segment"].items()) for r in roots)
            if effect.cls is EffectClass.CO_STARTING:
                entry["mixed_naming_local"] = [
                    r["id"] for r in roots if r["metric"] == "happiness" and r["scope"] == "mixed" and _dated(r, effect)
                    and any(scenario.same_respondents(s.get("segment", {}), effect) for s in r["segments"] or [])]
        else:
            entry["roots_on_it"] = sorted({roots[i]["metric"] for i in range(len(roots)) if matches(i, j)})
            entry["found"] = "volume" in entry["roots_on_it"] if effect.cls is EffectClass.VOLUME_DROP else None
        out_effects.append(entry)

    # Ended: stopped at least ENDED_WEEKS before the end of the data. A value quiet for
    # two weeks (a group replaced at a go-live two weeks before the end) cannot yet be
    # told from a holiday, and the product's rule waits for ENDED_WEEKS.
    ended = {dim: {value: day for value, day in values.items()
                   if (scenario.end - day).days >= 7 * ENDED_WEEKS}
             for dim, values in scenario.ended_values().items()}
    open_on_ended = [
        {"id": f["id"], "metric": f["metric"], "segment": f["segment"], "state": f["state"], "root": f["root"]}
        for f in findings
        if f["state"] in ("new", "ongoing")
        and any(v in ended.get(k, {}) for k, v in f["segment"].items())
    ]
    # Each root's decision statistic (z = delta / SE, SE from its 95% interval) with how it
    # was found and whether it is legitimate: the null distribution of the searched roots.
    false_ids = {id(r) for r in roots} - {id(roots[i]) for i in range(len(roots)) if any(
        matches(i, j) and (e.is_dip or (e.cls is EffectClass.VOLUME_DROP and r_metric(roots[i]) == "volume"))
        for j, e in enumerate(effects))}
    root_stats = [{"metric": r["metric"], "dims": len(r["segment"]), "found_by": r.get("found_by"),
                   "known": bool(r.get("known_date")), "n_before": r["n_before"], "n_after": r["n_after"],
                   "z": _z(r), "false": id(r) in false_ids} for r in roots]
    return {"roots": len(roots), "findings": len(findings), "false_roots": false_roots, "effects": out_effects,
            "open_on_ended": open_on_ended, "root_stats": root_stats}


def r_metric(root: Finding) -> str:
    return root["metric"]


def _z(root: Finding) -> float | None:
    low, high, delta = root.get("ci_low"), root.get("ci_high"), root.get("delta")
    if low is None or high is None or delta is None or high <= low:
        return None
    return round(abs(delta) / ((high - low) / (2 * 1.959964)), 2)


def _label(segment: dict[str, str]) -> str:
    return " x ".join(f"{k}={v}" for k, v in sorted(segment.items())) or "everyone"


def _same_segment(scenario: Any, segment: dict[str, str], home: dict[str, str], effect: Any) -> bool:
    import numpy as np

    first, end = effect.window(scenario.end)
    return bool(np.array_equal(scenario.mask(segment, first, end), scenario.mask(home, first, end)))


def replay(scenario: Any, url: str, crashes: list[dict[str, str]]) -> dict[str, Any]:
    """Weekly runs as of onset + 2..6 weeks: detection delay of each dip, churn of roots."""
    dips = [e for e in scenario.effects if e.is_dip]
    anchor = dips[0].onset if dips else (
        scenario.go_live if (scenario.go_live - scenario.start).days >= 28 else scenario.start + scenario.weeks // 2 * WEEK)
    runs = []
    for k in REPLAY_WEEKS:
        as_of = anchor + k * WEEK
        if as_of > scenario.end + dt.timedelta(days=1):
            break
        try:
            findings, seconds = _analysis(url, as_of)
        except Exception:
            crashes.append(_crash(f"replay as of {as_of}"))
            continue
        runs.append({"k": k, "as_of": as_of.isoformat(), "seconds": seconds, "roots": {
            f["id"]: f["change_date"][:10] for f in findings if f["root"]}, "matched": [
            j for j, e in enumerate(scenario.effects) if e.is_dip and e.onset <= as_of and any(
                f["root"] and f["metric"] == "happiness" and _dated(f, e)
                and scenario.same_respondents(f["segment"], e) for f in findings)]})
    delays = {}
    for j, effect in enumerate(scenario.effects):
        if effect.is_dip and anchor <= effect.onset < anchor + 2 * WEEK:
            first = next((r["k"] - (effect.onset - anchor).days // 7 for r in runs if j in r["matched"]), None)
            delays[j] = {"headline": _headline(effect), "delay": first, "cls": str(effect.cls)}
    churned = compared = 0
    seen: set[str] = set()
    for before, after in zip(runs, runs[1:]):
        for fid, date in before["roots"].items():
            compared += 1
            later = after["roots"].get(fid)
            if later is None or abs(_day(later) - _day(date)) > WEEK:
                churned += 1
        seen |= set(before["roots"])
    reappeared = sum(1 for a, b in zip(runs, runs[1:]) for fid in b["roots"] if fid not in a["roots"] and fid in seen)
    return {"anchor": anchor.isoformat(), "runs": len(runs), "delays": list(delays.values()),
            "compared": compared, "churned": churned, "reappeared": reappeared,
            "seconds": [r["seconds"] for r in runs]}


# --- tables ------------------------------------------------------------------------


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:5.1f}% ({num}/{den})" if den else "   - (0/0)"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(results: list[dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    from monitor.dev.scenarios import DIPS, EffectClass

    scored = [r for r in results if "score" in r]
    effects = [e for r in scored for e in r["score"]["effects"]]
    per_class: dict[str, dict[str, Any]] = {}
    for cls in classes:
        mine = [e for e in effects if e["cls"] == cls]
        head = [e for e in mine if e["headline"]]
        row: dict[str, Any] = {"effects": len(mine), "headline": len(head)}
        if EffectClass(cls) in DIPS:
            row["recall_headline"] = [sum(e["found"] for e in head), len(head)]
            shown = [e for e in head if e.get("detectable")]
            row["recall_headline_detectable"] = [sum(e["found"] for e in shown), len(shown)]
            clear = [e for e in head if e.get("search_margin", -1.0) >= CLEAR_MARGIN]
            row["recall_headline_clear"] = [sum(e["found"] for e in clear), len(clear)]
            row["recall_all"] = [sum(e["found"] for e in mine), len(mine)]
            row["median_date_error"] = _median([e["date_error"] for e in mine if e.get("found")])
        elif cls == "volume_drop":
            everyone = [e for e in mine if not e["segment"]]
            row["volume_root_everyone"] = [sum(bool(e["found"]) for e in everyone), len(everyone)]
        row["false_roots_on_or_near"] = sum(
            1 for r in scored for f in r["score"]["false_roots"] if cls in f["cause"])
        per_class[cls] = row
    nulls = [r for r in scored if not r["effects"]]
    false_total = sum(len(r["score"]["false_roots"]) for r in scored)
    false_null = sum(len(r["score"]["false_roots"]) for r in nulls)
    found_dips = [e for e in effects if EffectClass(e["cls"]) in DIPS and e.get("found")]
    co_groups: dict[tuple[Any, int], list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        for e in r["score"]["effects"]:
            if e["cls"] == "co_starting":
                co_groups[r["case"], e["group"]].append(e)
    def split(groups: Any, recovery: bool) -> int:
        """Groups found as two roots (each with its right recovery, if asked)."""
        return sum(all(e["found"] and (e.get("recovery_right") or not recovery) for e in g)
                   and len({e.get("root") for e in g}) == 2 for g in groups)

    two_roots, two_right = split(co_groups.values(), False), split(co_groups.values(), True)
    # Both parts detectable (the headline rule of each part): what the target is judged on.
    co_headline = [g for g in co_groups.values() if all(e["headline"] for e in g)]
    two_right_headline = split(co_headline, True)
    two_parts = sum(any(e.get("mixed_naming_local") for e in g) for g in co_groups.values())
    triples = [e for e in effects if e["cls"] == "triple"]
    replays = [r["replay"] for r in results if "replay" in r]
    delays = [d for rp in replays for d in rp["delays"]]
    totals = {
        "cases": len(results), "scored": len(scored), "null_cases": len(nulls),
        "crashes": sum(len(r["crashes"]) for r in results),
        "recall_headline": [sum(e["found"] for e in effects if EffectClass(e["cls"]) in DIPS and e["headline"]),
                            sum(1 for e in effects if EffectClass(e["cls"]) in DIPS and e["headline"])],
        "recall_headline_detectable": [
            sum(e["found"] for e in effects if EffectClass(e["cls"]) in DIPS and e["headline"] and e.get("detectable")),
            sum(1 for e in effects if EffectClass(e["cls"]) in DIPS and e["headline"] and e.get("detectable"))],
        "recall_headline_detectable_searched": [
            sum(e["found"] for e in effects
                if EffectClass(e["cls"]) in DIPS and e["headline"] and e.get("detectable_searched")),
            sum(1 for e in effects
                if EffectClass(e["cls"]) in DIPS and e["headline"] and e.get("detectable_searched"))],
        "recall_headline_clear": [
            sum(e["found"] for e in effects if e["headline"] and e.get("search_margin", -1.0) >= CLEAR_MARGIN),
            sum(1 for e in effects if e["headline"] and e.get("search_margin", -1.0) >= CLEAR_MARGIN)],
        "recall_all": [sum(bool(e["found"]) for e in effects if EffectClass(e["cls"]) in DIPS),
                       sum(1 for e in effects if EffectClass(e["cls"]) in DIPS)],
        "false_roots": false_total,
        "false_roots_per_scenario": false_total / len(scored) if scored else None,
        "false_roots_per_50_null": 50 * false_null / len(nulls) if nulls else None,
        "false_root_causes": Counter(f["cause"] for r in scored for f in r["score"]["false_roots"]).most_common(),
        "false_root_metrics": Counter(f["metric"].split(":")[0] for r in scored
                                      for f in r["score"]["false_roots"]).most_common(),
        "median_date_error": _median([e["date_error"] for e in found_dips]),
        "co_starting": {"groups": len(co_groups), "two_roots": two_roots, "two_roots_right_recovery": two_right,
                        "headline_groups": len(co_headline), "headline_two_roots_right_recovery": two_right_headline,
                        "one_mixed_root_naming_local": two_parts},
        "same_segment": [sum(e.get("related_same", 0) for e in effects), sum(e.get("related", 0) for e in effects)],
        "same_segment_folded": [sum(e.get("related_same", 0) + e.get("folded_same", 0) for e in effects),
                                sum(e.get("related", 0) + e.get("folded", 0) for e in effects)],
        "same_segment_localized": [
            sum(e.get("related_same", 0) + e.get("folded_same", 0) for e in effects if e["segment"]),
            sum(e.get("related", 0) + e.get("folded", 0) for e in effects if e["segment"])],
        "three_dims": [sum(e["found"] for e in triples), len(triples)],
        "three_dims_headline": [sum(e["found"] for e in triples if e["headline"]),
                                sum(1 for e in triples if e["headline"])],
        "separable_headline": [
            sum(e["found"] for e in effects if e["headline"] and e.get("separable") and e.get("detectable")),
            sum(1 for e in effects if e["headline"] and e.get("separable") and e.get("detectable"))],
        "inseparable_headline": [
            sum(e["found"] for e in effects if e["headline"] and e.get("separable") is False),
            sum(1 for e in effects if e["headline"] and e.get("separable") is False)],
        "triple_at_a_pair_inside": sum(bool(e.get("inside_pair")) for e in triples),
        "open_on_ended": sum(len(r["score"]["open_on_ended"]) for r in scored),
        "open_roots_on_ended": sum(f["root"] for r in scored for f in r["score"]["open_on_ended"]),
        "replayed_cases": len(replays),
        "churn": [sum(rp["churned"] for rp in replays), sum(rp["compared"] for rp in replays)],
        "reappeared": sum(rp["reappeared"] for rp in replays),
        "delay_median": _median([d["delay"] for d in delays if d["delay"] is not None]),
        "detected_by_week_6": [sum(d["delay"] is not None for d in delays), len(delays)],
        "detected_by_week_6_headline": [sum(d["delay"] is not None for d in delays if d["headline"]),
                                        sum(1 for d in delays if d["headline"])],
        "seconds_per_case": _median([r["seconds"].get("total", 0.0) for r in results]),
        "cpu_seconds_per_case": _median([r["seconds"].get("cpu", 0.0) for r in results]),
        "cpu_seconds_per_case_mean": statistics.fmean([r["seconds"].get("cpu", 0.0) for r in results] or [0.0]),
        "analysis_seconds": _median([r["seconds"]["analysis"] for r in results if "analysis" in r["seconds"]]),
        "rows_median": _median([r.get("rows", 0) for r in results]),
    }
    return {"classes": per_class, "totals": totals}


def _at_least(pair: list[int], target: float) -> bool | None:
    """None (nothing to judge) when the denominator is 0."""
    return None if not pair[1] else pair[0] / pair[1] >= target


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "PASS" if ok else "FAIL"


def print_tables(summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
    from monitor.dev.scenarios import DIPS, EffectClass

    print("\nPer class (headline: |size| >= 20 points and >= 60 responses/week after onset; target recall >= 95%;"
          "\n detectable: a clairvoyant's z on the planted weeks clears segment_bar, see oracle_z;"
          "\n clear of search: it clears search_bar by CLEAR_MARGIN)")
    print(f"{'class':<12} {'effects':>7} {'headline':>8}  {'recall headline':<20} {'of detectable':<20} "
          f"{'clear of search':<20} {'recall all':<20} {'date err wk':>11} {'false roots on/near':>19}  verdict")
    for cls, row in summary["classes"].items():
        if EffectClass(cls) in DIPS:
            err = row["median_date_error"]
            print(f"{cls:<12} {row['effects']:>7} {row['headline']:>8}  {_pct(*row['recall_headline']):<20} "
                  f"{_pct(*row.get('recall_headline_detectable', [0, 0])):<20} "
                  f"{_pct(*row.get('recall_headline_clear', [0, 0])):<20} "
                  f"{_pct(*row['recall_all']):<20} {'-' if err is None else f'{err:.1f}':>11} "
                  f"{row['false_roots_on_or_near']:>19}  {_verdict(_at_least(row['recall_headline'], 0.95))}")
        else:
            extra = (f"volume root on a drop of everyone: {_pct(*row['volume_root_everyone'])}"
                     if cls == "volume_drop" else "(no root expected)")
            print(f"{cls:<12} {row['effects']:>7} {row['headline']:>8}  {extra:<83} {'':>11} "
                  f"{row['false_roots_on_or_near']:>19}")
    t = summary["totals"]
    checks = [
        ("recall, headline dips (all dip classes)", _pct(*t["recall_headline"]), ">= 95% per class",
         all(_at_least(r["recall_headline"], 0.95) is not False for c, r in summary["classes"].items()
             if EffectClass(c) in DIPS)),
        ("  ... of those the data can show (clairvoyant bound)", _pct(*t.get("recall_headline_detectable", [0, 0])),
         "(shown)", None),
        ("  ... of those it shows on a searched date too", _pct(*t.get("recall_headline_detectable_searched", [0, 0])),
         "(shown)", None),
        ("  ... of those clear of the searched bar by 1 SE", _pct(*t.get("recall_headline_clear", [0, 0])),
         ">= 95%", _at_least(t.get("recall_headline_clear", [0, 0]), 0.95)),
        ("recall, all dips", _pct(*t["recall_all"]), "(shown)", None),
        ("false roots per scenario", f"{t['false_roots_per_scenario'] or 0:.2f} ({t['false_roots']} in "
         f"{t['scored']})", "<= 0.05", (t["false_roots_per_scenario"] or 0) <= 0.05),
        ("false roots per 50 null scenarios", "-" if t["false_roots_per_50_null"] is None else
         f"{t['false_roots_per_50_null']:.1f} ({t['null_cases']} null)", "<= 1",
         t["false_roots_per_50_null"] is None or t["false_roots_per_50_null"] <= 1),
        ("median date error (weeks)", "-" if t["median_date_error"] is None else f"{t['median_date_error']:.1f}",
         "<= 1", t["median_date_error"] is None or t["median_date_error"] <= 1),
        ("co-starting, both parts headline: two roots, right recovery",
         _pct(t["co_starting"]["headline_two_roots_right_recovery"], t["co_starting"]["headline_groups"]), ">= 90%",
         _at_least([t["co_starting"]["headline_two_roots_right_recovery"], t["co_starting"]["headline_groups"]], 0.9)),
        ("co-starting, all: two roots, right recovery", _pct(t["co_starting"]["two_roots_right_recovery"],
                                                             t["co_starting"]["groups"]), "(shown)", None),
        ("co-starting: two roots (any recovery)", _pct(t["co_starting"]["two_roots"], t["co_starting"]["groups"]),
         "(shown)", None),
        ("co-starting: one mixed root naming local", _pct(t["co_starting"]["one_mixed_root_naming_local"],
                                                           t["co_starting"]["groups"]), "(shown)", None),
        ("lost-time/factor roots on the Happiness root's segment", _pct(*t["same_segment"]), ">= 90%",
         _at_least(t["same_segment"], 0.9)),
        ("  ... roots folded under it counted too", _pct(*t.get("same_segment_folded", [0, 0])), ">= 90%",
         _at_least(t.get("same_segment_folded", [0, 0]), 0.9)),
        ("  ... of localized dips", _pct(*t.get("same_segment_localized", [0, 0])), "(shown)", None),
        ("three-dim effects at their three dims, headline", _pct(*t.get("three_dims_headline", [0, 0])), ">= 90%",
         _at_least(t.get("three_dims_headline", [0, 0]), 0.9)),
        ("  ... all three-dim effects", _pct(*t["three_dims"]), "(shown)", None),
        ("  ... of the others, a pair inside it", str(t["triple_at_a_pair_inside"]), "(shown)", None),
        ("pairs/triples, headline: separable from their parents", _pct(*t.get("separable_headline", [0, 0])),
         "(shown)", None),
        ("  ... not separable (clairvoyant bound)", _pct(*t.get("inseparable_headline", [0, 0])), "(shown)", None),
        ("findings on ended segments still open", f"{t['open_on_ended']} ({t['open_roots_on_ended']} roots)", "0",
         t["open_on_ended"] == 0),
        ("churn between weekly runs (roots)", _pct(*t["churn"]) + f", {t['reappeared']} reappeared", "<= 5%",
         None if not t["churn"][1] else t["churn"][0] <= 0.05 * t["churn"][1]),
        ("detected by onset + 6 weeks (replays)", _pct(*t["detected_by_week_6"]), "(shown)", None),
        ("  headline dips", _pct(*t["detected_by_week_6_headline"]), "(shown)", None),
        ("median detection delay (weekly runs)", "-" if t["delay_median"] is None else f"{t['delay_median']:.0f}",
         "(shown)", None),
        ("crashes", str(t["crashes"]), "0", t["crashes"] == 0),
    ]
    print(f"\nTotals ({t['cases']} cases, {t['scored']} scored, {t['replayed_cases']} replayed; median "
          f"{t['rows_median']:,.0f} rows; per case median {t['seconds_per_case']:.1f} s wall, "
          f"{t['cpu_seconds_per_case']:.1f} s CPU (mean {t['cpu_seconds_per_case_mean']:.1f}); "
          f"final analysis median {t['analysis_seconds'] or 0:.1f} s wall)")
    print(f"{'figure':<55} {'value':<28} {'target':<16} verdict")
    for name, value, target, ok in checks:
        print(f"{name:<55} {value:<28} {target:<16} {'-' if ok is None and target != '(shown)' else '' if ok is None else 'PASS' if ok else 'FAIL'}")
    print("\nFalse roots by cause:", ", ".join(f"{c}: {n}" for c, n in t["false_root_causes"]) or "none")
    print("False roots by metric:", ", ".join(f"{c}: {n}" for c, n in t["false_root_metrics"]) or "none")
    crashes = [(r["case"], c) for r in results for c in r["crashes"]]
    if crashes:
        print(f"\nCrashes ({len(crashes)}):")
        for case, crash in crashes[:10]:
            print(f"  case {case} in {crash['where']}: {crash['error']}")
            print("    " + crash["trace"].replace("\n", "\n    "))


# --- main ---------------------------------------------------------------------------


def main() -> None:
    from _shared import DEFAULT_PG_URL

    from monitor.dev.scenarios import EffectClass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 seeds, 5 of them replayed")
    parser.add_argument("--classes", default="", help=f"comma-separated, among {', '.join(EffectClass)}")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replays", type=int, default=40, help="cases replayed week by week (every k-th)")
    parser.add_argument("--no-demo", action="store_true", help="leave out the fixed demo case")
    parser.add_argument("--json", type=Path, help="write per-case results and the summary here")
    parser.add_argument("--verbose", action="store_true", help="print each case's false roots and misses")
    parser.add_argument("--summarise", type=Path, nargs="+", metavar="FILE",
                        help="print the tables of earlier --json files or their .partial.jsonl (several runs, "
                             "e.g. seed ranges, are pooled), run nothing")
    args = parser.parse_args()
    classes = [str(EffectClass(c.strip())) for c in args.classes.split(",") if c.strip()]
    if args.summarise:
        done = []
        for path in args.summarise:
            text = path.read_text()
            if path.suffix == ".jsonl":
                done += [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                done += json.loads(text)["cases"]
        print_tables(summarise(done, classes or [str(c) for c in EffectClass]), done)
        return
    seeds, replays = (20, min(args.replays, 5)) if args.quick else (args.seeds, args.replays)
    cases: list[int | str] = list(range(args.first_seed, args.first_seed + seeds))
    if not args.no_demo and not classes:
        cases.append("demo")
    opts = {"classes": classes, "backend": args.backend, "pg_url": args.pg_url}
    # Replayed cases are spread over the run (every k-th), so a partial run has its share.
    every = max(1, len(cases) // replays) if replays else 0
    jobs = [(case, {**opts, "replay": bool(every) and i % every == 0 and i // every < replays})
            for i, case in enumerate(cases)]
    started = time.perf_counter()
    results = []
    # Each case is appended as it finishes, so an interrupted run can still be summarised.
    partial = args.json.with_name(args.json.name + ".partial.jsonl").open("w") if args.json else None
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=_init_worker, maxtasksperchild=10) as pool:
        for result in pool.imap_unordered(run_case, jobs):
            results.append(result)
            if partial is not None:
                partial.write(json.dumps(result, default=str) + "\n")
                partial.flush()
            s = result.get("score", {})
            found = sum(bool(e.get("found")) for e in s.get("effects", []) if e.get("found") is not None)
            print(f"[{len(results):>3}/{len(jobs)}] case {result['case']}: {result.get('rows', 0):>7,} rows, "
                  f"{len(result.get('effects', []))} effects, found {found}, "
                  f"false roots {len(s.get('false_roots', []))}, crashes {len(result['crashes'])}, "
                  f"{result['seconds'].get('total', 0):.1f} s", flush=True)
            if args.verbose:
                for f in s.get("false_roots", []):
                    print(f"      false: {f}")
                for e in s.get("effects", []):
                    if e.get("found") is False:
                        print(f"      missed: {e['cls']} {e['segment']} {e['onset']} {e['size']} {e['per_week']}/wk")
                        for line in e.get("instead", []):
                            print(f"          {line}")
    results.sort(key=lambda r: (isinstance(r["case"], str), r["case"]))
    summary = summarise(results, classes or [str(c) for c in EffectClass])
    print_tables(summary, results)
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s in all, {args.workers} workers, backend {args.backend}; "
          f"{elapsed * args.workers / max(len(results), 1):.1f} worker-seconds per case")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cases": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
