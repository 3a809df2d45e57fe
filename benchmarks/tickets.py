"""Tickets (issue 12): import speed and memory, analysis time with tickets, planted effects.

1. **Import.** Generates a ServiceNow-style event log (5 update events per ticket,
   shuffled, day-first dates, ``?`` for missing, caller hashed, opener dropped; the
   built-in ``servicenow_incident`` profile keeps the latest event per ticket) and a
   canonical ticket file (one row per ticket), then imports each into a fresh
   SQLite and PostgreSQL database in a child process: wall time, CPU time, peak
   memory (max RSS from ``wait4``) and events (rows) per second.
2. **Analysis.** 1M synthetic responses and 2M tickets (joined by ticket id) in one
   database, then one full ``run_analysis`` (survey + IT metrics + notes + flags).
3. **Planted effects** over random seeds (``monitor/dev/it_world.py``): an SLA collapse
   people feel; an SLA that holds while Happiness falls (the watermelon note); a
   response-rate fall in one group; a group whose answered tickets are the fast ones;
   an SLA break nobody minds. Each is counted a hit only as the right kind of finding
   / note / flag at the right segment and week (within 2 weeks of the onset).

    python benchmarks/tickets.py [--quick] [--tickets N] [--seeds 20]
                                 [--backends sqlite,postgresql] [--skip import,analysis,effects]

Targets on the 2-core reference machine: >= 100k events/s; 1M tickets <= 20 s and
< 1 GB on each backend; analysis with 1M responses and 2M tickets <= 20 s. The
machine is shared: CPU seconds are printed next to wall seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
from _shared import DEFAULT_PG_URL, fresh_database, run_child, timed_analysis  # noqa: E402

EVENTS_PER_TICKET = 5
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_SECONDS = 20.0
TARGET_MEMORY_MB = 1024.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _times(start: np.ndarray, fmt: str) -> pa.Array:
    return pc.strftime(pa.array(start.astype("datetime64[s]")), format=fmt)


def write_event_log(path: Path, tickets: int, *, events: int = EVENTS_PER_TICKET, seed: int = 0) -> int:
    """A shuffled ServiceNow-like incident event log; returns the number of events."""
    rng = np.random.default_rng(seed)
    n = tickets * events
    ticket = np.repeat(np.arange(tickets), events)
    k = np.tile(np.arange(events), tickets)
    opened = np.datetime64("2016-01-04T00:00", "s") + (rng.random(tickets) * 300 * 86400).astype("timedelta64[s]")
    steps = (rng.lognormal(1.0, 1.0, n) * 3600).astype("timedelta64[s]").reshape(tickets, events)
    updated = (opened[:, None] + np.cumsum(steps, axis=1)).reshape(-1)
    day_first = "%d/%m/%Y %H:%M"
    updated_text = _times(updated, day_first)
    resolved = pc.if_else(pa.array(k >= events - 2), updated_text, "?")
    order = rng.permutation(n)

    def pick(choices: list[str], codes: np.ndarray) -> pa.Array:
        return pc.take(pa.array(choices), pa.array(codes))

    def labelled(prefix: str, codes: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(codes), pa.string()), "")

    table = pa.table({
        "number": labelled("INC", ticket),
        "sys_mod_count": pa.array(k),
        "sys_updated_at": updated_text,
        "opened_at": _times(opened[ticket], day_first),
        "resolved_at": resolved,
        "closed_at": pc.if_else(pa.array(k == events - 1), updated_text, "?"),
        "priority": pick(["1 - Critical", "2 - High", "3 - Moderate", "4 - Low"], rng.integers(0, 4, n)),
        "made_sla": pc.if_else(pa.array(rng.random(n) < 0.9), "true", "false"),
        "reassignment_count": pa.array(np.minimum(k, rng.poisson(0.3, n))),
        "reopen_count": pa.array((rng.random(n) < 0.03).astype(np.int64)),
        "contact_type": pick(["Phone", "Email", "Self service", "IVR"], rng.integers(0, 4, n)),
        "assignment_group": labelled("Group ", rng.integers(0, 80, tickets)[ticket]),
        "location": labelled("Location ", rng.integers(0, 40, tickets)[ticket]),
        "category": labelled("Category ", rng.integers(0, 30, tickets)[ticket]),
        "subcategory": labelled("Subcategory ", rng.integers(0, 200, tickets)[ticket]),
        "caller_id": labelled("Caller ", rng.integers(0, tickets // 3 + 1, tickets)[ticket]),
        "opened_by": labelled("Opener ", rng.integers(0, 500, n)),
    }).take(pa.array(order))
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    return n


def write_ticket_file(path: Path, tickets: int, *, seed: int = 1, first: str = "2024-11-04", days: int = 728) -> int:
    """A canonical ticket file: one row per ticket, ISO times, two dimensions."""
    rng = np.random.default_rng(seed)
    resolved = np.datetime64(first, "s") + (rng.random(tickets) * days * 86400).astype("timedelta64[s]")
    opened = resolved - (rng.lognormal(2.0, 1.0, tickets) * 3600).astype("timedelta64[s]")
    iso = "%Y-%m-%dT%H:%M:%SZ"
    ids = pc.utf8_lpad(pc.cast(pa.array(np.arange(tickets) + 10_001), pa.string()), 7, "0")
    table = pa.table({
        "ticket_id": pc.binary_join_element_wise("INC", ids, ""),
        "ticket_type": pa.array(["incident"] * tickets),
        "opened_at": _times(opened, iso),
        "resolved_at": _times(resolved, iso),
        "sla_met": pc.if_else(pa.array(rng.random(tickets) < 0.92), "true", "false"),
        "reassignment_count": pa.array(rng.poisson(0.25, tickets)),
        "reopen_count": pa.array((rng.random(tickets) < 0.04).astype(np.int64)),
        "assignment_group": pc.take(pa.array(["Inhouse-SAP", "Inhouse-Network", "Inhouse-IAM", "MSP-Workplace", "MSP-Service Desk", "MSP-Cloud"]), pa.array(rng.integers(0, 6, tickets))),
        "country": pc.take(pa.array(["Spain", "Germany", "France", "Finland", "Poland"]), pa.array(rng.integers(0, 5, tickets))),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    return tickets


def _child_import(url: str, path: str, profile_name: str) -> None:
    from config import load_settings
    from monitor.ingest.profiles import resolve_profile
    from monitor.ingest.tickets import ingest_tickets
    from monitor.store import db

    settings = dataclasses.replace(load_settings(environ={}, overrides={"database_url": url}), pseudonym_key="bench-key-" * 3)
    engine = db.make_engine(url)
    db.upgrade(engine)
    profile = resolve_profile(profile_name, {}) if profile_name != "-" else None
    cpu, started = _cpu(), time.perf_counter()
    report = ingest_tickets(engine, [Path(path)], settings, profile, source="bench")
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    if not report.committed:
        raise SystemExit(f"import failed: {report.errors[:3]}")
    print(json.dumps({"seconds": seconds, "cpu": cpu, "inserted": report.inserted, "unchanged": report.unchanged}))


def _child_analysis_setup(url: str, workdir: str, responses: int, tickets: int) -> None:
    from config import load_settings
    from monitor.dev.synthetic import write_csv
    from monitor.ingest.importer import ingest_files
    from monitor.ingest.tickets import ingest_tickets
    from monitor.store import db

    settings = load_settings(environ={}, overrides={"database_url": url})
    engine = db.make_engine(url)
    db.upgrade(engine)
    response_path = write_csv(Path(workdir) / "responses.csv", responses, seed=42)
    ticket_path = Path(workdir) / "analysis_tickets.csv"
    write_ticket_file(ticket_path, tickets)
    started = time.perf_counter()
    assert ingest_files(engine, [response_path], settings, source="bench").committed
    assert ingest_tickets(engine, [ticket_path], settings, source="bench").committed
    print(json.dumps({"load_seconds": time.perf_counter() - started}))


def _child_generate(workdir: str, tickets: int) -> None:
    """Files are written in a child: a child's max RSS includes its parent's at fork."""
    log, canonical = Path(workdir) / "events.csv", Path(workdir) / "tickets.csv"
    events = write_event_log(log, tickets)
    write_ticket_file(canonical, tickets)
    print(json.dumps({"events": events}))


def _child_analysis(url: str, as_of: str) -> None:
    cpu = _cpu()
    report, seconds = timed_analysis(url, as_of)
    it = [f for f in report.findings if getattr(f, "metric", None) in {"sla_met", "reassignment_rate", "reopen_rate", "resolution_hours", "response_rate", "feedback_delay_hours", "resolved_volume"}]
    print(json.dumps({"seconds": seconds, "cpu": _cpu() - cpu, "findings": len(report.findings), "it_findings": len(it)}))


# --- planted effects -------------------------------------------------------------------


def _effect_hits(seed: int) -> dict[str, bool]:
    """One random world: is each planted effect found as the right kind of thing?"""
    from monitor.analysis.detect import AnalysisOptions, find_changes
    from monitor.analysis.it_detect import find_it_changes
    from monitor.analysis.it_notes import disconnect_notes
    from monitor.analysis.voice import answered_flags, response_rate_flags
    from monitor.dev.it_world import FIRST_PERIOD, ITEffect, it_world
    from monitor.periods import period_start

    options = AnalysisOptions(workers=1, pairs=False)

    def at(changes, metric, group, onset, slack=2):  # type: ignore[no-untyped-def]
        week = period_start(FIRST_PERIOD + onset, "week")
        return [
            c for c in changes
            if c.metric == metric and c.segment.as_dict() == {"assignment_group": group}
            and abs((c.change.change_date.date() - week).days) <= 7 * slack
        ]

    world = it_world(seed)
    it = find_it_changes(world.tickets, options).changes
    survey = find_changes(world.responses, options).changes
    notes = disconnect_notes(it + survey, world.responses, world.tickets, min_n=30, anonymity_min_responses=5)
    effect = {e.kind: e for e in world.effects}
    hits: dict[str, bool] = {}

    e = effect["sla_collapse"]
    sla = at(it, "sla_met", e.group, e.onset)
    happy = at(survey, "happiness", e.group, e.onset)
    hits["sla_collapse_felt"] = bool(
        sla and sla[0].change.delta < 0 and notes.get(sla[0].key, {}).get("happiness", {}).get("status") == "felt"
        and happy and notes.get(happy[0].key, {}).get("sla", {}).get("status") == "broke"
    )
    e = effect["watermelon"]
    happy = at(survey, "happiness", e.group, e.onset)
    sla_note = notes.get(happy[0].key, {}).get("sla", {}) if happy else {}
    hits["watermelon"] = bool(happy and sla_note.get("status") == "held" and sla_note.get("watermelon") and not at(it, "sla_met", e.group, e.onset, slack=4))
    e = effect["response_fall"]
    fall = at(it, "response_rate", e.group, e.onset)
    low = [f.segment for f in response_rate_flags(world.tickets, anonymity_min_responses=5) if f.kind == "response_rate_low"]
    hits["response_fall"] = bool(fall and fall[0].change.delta < 0 and {"assignment_group": e.group} in low)
    e = effect["fast_answered"]
    flagged = [f.segment for f in answered_flags(world.tickets, anonymity_min_responses=5) if "assignment_group" in f.segment]
    hits["fast_answered"] = flagged == [{"assignment_group": e.group}]
    # An SLA break nobody minds needs enough answers for an interval that excludes a 10-point dip.
    rng = np.random.default_rng(seed)
    unfelt = ITEffect("sla_unfelt", f"G0{rng.integers(0, 4)}", int(rng.integers(18, 28)))
    small = it_world(seed, [unfelt], weekly=1000.0, groups=4)
    small_it = find_it_changes(small.tickets, options).changes
    sla = at(small_it, "sla_met", unfelt.group, unfelt.onset)
    small_notes = disconnect_notes(small_it, small.responses, small.tickets, min_n=30, anonymity_min_responses=5)
    hits["sla_not_felt"] = bool(sla and small_notes.get(sla[0].key, {}).get("happiness", {}).get("status") == "not_felt")
    # False alarms: IT findings in groups with no planted IT effect on that metric.
    planted = {(e.group, m) for e in world.effects for m in {
        "sla_collapse": ("sla_met", "resolution_hours"), "sla_unfelt": ("sla_met", "resolution_hours"),
        "response_fall": ("response_rate",), "watermelon": (), "fast_answered": (),
    }[e.kind]}
    hits["_false_it_findings"] = sum(
        1 for c in it
        if c.segment.as_dict().get("assignment_group") and (c.segment.as_dict()["assignment_group"], c.metric) not in planted
    )
    return hits


def _child_effects(seeds: str) -> None:
    rows = {}
    for seed in [int(s) for s in seeds.split(",")]:
        rows[seed] = _effect_hits(seed)
    print(json.dumps(rows))


# --- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k tickets, 200k tickets / 100k responses in the analysis, 5 seeds")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--skip", default="")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--child-import", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-analysis-setup", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-analysis", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-effects", help=argparse.SUPPRESS)
    parser.add_argument("--child-generate", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        return _child_import(*args.child_import)
    if args.child_analysis_setup:
        url, workdir, responses, tickets = args.child_analysis_setup
        return _child_analysis_setup(url, workdir, int(responses), int(tickets))
    if args.child_analysis:
        return _child_analysis(*args.child_analysis)
    if args.child_effects:
        return _child_effects(args.child_effects)
    if args.child_generate:
        return _child_generate(args.child_generate[0], int(args.child_generate[1]))

    tickets = 100_000 if args.quick else args.tickets
    seeds = 5 if args.quick and args.seeds == 20 else args.seeds
    skip = set(filter(None, args.skip.split(",")))
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "import" not in skip:
            log, canonical = workdir / "events.csv", workdir / "tickets.csv"
            started = time.perf_counter()
            events = run_child(__file__, "--child-generate", str(workdir), str(tickets))["events"]
            print(f"generated {events:,} events ({log.stat().st_size / 1e6:.0f} MB) and {tickets:,} tickets ({canonical.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s\n")
            print(f"{'import':<34}{'backend':<12}{'rows':>11}{'wall s':>9}{'cpu s':>8}{'rows/s':>10}{'peak MB':>9}  targets")
            for backend in backends:
                for label, path, profile, rows in (
                    (f"event log, {EVENTS_PER_TICKET} events/ticket", log, "servicenow_incident", events),
                    ("canonical, 1 row/ticket", canonical, "-", tickets),
                ):
                    url, drop = fresh_database(backend, workdir, args.pg_url)
                    try:
                        figures = run_child(__file__, "--child-import", url, str(path), profile)
                    finally:
                        drop()
                    rate = rows / figures["seconds"]
                    ok = [rate >= TARGET_EVENTS_PER_SECOND if profile != "-" else figures["seconds"] <= TARGET_SECONDS * tickets / 1_000_000,
                          figures["peak_mb"] < TARGET_MEMORY_MB]
                    print(f"{label:<34}{backend:<12}{rows:>11,}{figures['seconds']:>9.1f}{figures['cpu']:>8.1f}{rate:>10,.0f}{figures['peak_mb']:>9.0f}  {'ok' if all(ok) else 'MISSED'}")
            print()
        if "analysis" not in skip:
            responses, many = (100_000, 200_000) if args.quick else (1_000_000, 2_000_000)
            for backend in backends[:1]:
                url, drop = fresh_database(backend, workdir, args.pg_url)
                try:
                    setup = run_child(__file__, "--child-analysis-setup", url, str(workdir), str(responses), str(many))
                    figures = run_child(__file__, "--child-analysis", url, "2026-11-03")
                finally:
                    drop()
                ok = figures["seconds"] <= TARGET_SECONDS
                print(f"analysis, {responses:,} responses + {many:,} tickets ({backend}): {figures['seconds']:.1f} s wall, "
                      f"{figures['cpu']:.1f} s cpu, peak {figures['peak_mb']:.0f} MB, {figures['findings']} findings "
                      f"({figures['it_findings']} IT); load {setup['load_seconds']:.0f} s  {'ok' if ok else 'MISSED'} (target <= 20 s)\n")
        if "effects" not in skip:
            seed_list = ",".join(str(1000 + s) for s in range(seeds))
            started = time.perf_counter()
            rows = run_child(__file__, "--child-effects", seed_list)
            rows.pop("peak_mb", None)
            cases = [
                ("sla_collapse_felt", "SLA collapse people feel", "sla_met finding (notes.happiness felt) + Happiness finding (notes.sla broke), group and week"),
                ("watermelon", "SLA holds, Happiness falls", "Happiness finding with notes.sla held + watermelon, no sla_met finding"),
                ("response_fall", "response rate falls", "response_rate finding + response_rate_low flag, that group only"),
                ("fast_answered", "answered tickets are the fast ones", "answered-skew flag on that group and no other group"),
                ("sla_not_felt", "SLA breaks, nobody minds", "sla_met finding with notes.happiness not_felt"),
            ]
            print(f"planted effects over {seeds} random seeds ({time.perf_counter() - started:.0f} s)")
            print(f"{'case':<36}{'hits':>6}{'rate':>7}  counted as")
            for key, label, what in cases:
                hit = sum(bool(r[key]) for r in rows.values())
                print(f"{label:<36}{hit:>3}/{seeds:<2}{hit / seeds:>7.0%}  {what}")
            false = [r["_false_it_findings"] for r in rows.values()]
            print(f"{'IT findings where nothing was planted':<36}{sum(false):>6}  (over {seeds} worlds of 6 groups x 6 metrics)")


if __name__ == "__main__":
    main()
