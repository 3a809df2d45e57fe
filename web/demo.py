"""``mspmon demo``: a fresh SQLite database with two years of realistic survey data.

The demo is the main job a new user runs first, so it goes through the same public
paths as real use: generate a CSV, import it with ``ingest_files``, register the
transition, and say where to look next.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from config import load_settings
from monitor import store
from monitor.analysis.finding_text import finding_row, root_summary
from monitor.analysis.finding_view import FindingView
from monitor.analysis.run import run_analysis
from monitor.dev.synthetic import Scenario, default_scenario, write_csv
from monitor.ingest.importer import ingest_files
from monitor.store import db
from monitor.store.models import Transition
from notifications.preview import demo_outbox
from web.demo_access import demo_access

DEMO_TRANSITION = "Service desk to MSP"
DEMO_WEEKS = 104


def demo_scenario(today: dt.date) -> Scenario:
    """Two years of weeks ending with the last complete week before ``today``.

    The go-live sits where the reference scenario has it (43 weeks in), so the
    demo always shows a recent transition whatever day it is run.
    """
    this_monday = today - dt.timedelta(days=today.weekday())
    start = this_monday - dt.timedelta(weeks=DEMO_WEEKS)
    reference = default_scenario()
    go_live = start + (reference.go_live - reference.start)
    return default_scenario(start=start, weeks=DEMO_WEEKS, go_live=go_live)


def _highlights(findings: list[FindingView]) -> list[FindingView]:
    """What a first look should show: the root Happiness findings, largest impact first.

    Their echoes and the lost-time and factor findings of the same dips are one
    ``mspmon analyze`` away.
    """
    return [f for f in findings if f.root and f.metric == "happiness"]


def run_demo(
    directory: Path, *, rows: int, seed: int, echo: Callable[[str], None], today: dt.date | None = None
) -> Path:
    """Build the demo in ``directory`` (wiped first) and return the database path."""
    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    database = directory / "mspmon.db"
    settings = load_settings(overrides={"database_url": f"sqlite:///{database}"})
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)

    scenario = demo_scenario(today or dt.date.today())
    csv_path = write_csv(directory / "responses.csv", rows, seed=seed, scenario=scenario)
    echo(f"generated {rows:,} survey responses in {csv_path}")
    report = ingest_files(engine, [csv_path], settings, source="demo")
    if not report.committed:
        raise RuntimeError(f"demo data failed to import:\n{report.summary()}")
    echo(f"imported: {report.summary()}")

    with db.session_scope(engine) as session:
        store.add_transition(
            session,
            Transition(
                name=DEMO_TRANSITION,
                go_live=scenario.go_live,
                scope={},
                description="In-house service desk handed over to a managed service provider.",
                created_at=dt.datetime.now(dt.UTC),
            ),
        )
    echo(f"transition {DEMO_TRANSITION!r} registered, go-live {scenario.go_live.isoformat()}")
    as_of = today or dt.date.today()
    report = run_analysis(engine, settings, as_of)
    echo(f"analysed {report.responses:,} responses as of {as_of.isoformat()} in {report.seconds:.1f} s: "
         f"{len(report.findings)} findings")
    roots = [f for f in report.findings if f.root]
    echo(f"  {len(roots)} root findings; the others are echoes folded under them")
    highlights = _highlights(report.findings)
    for finding in highlights:
        echo("  " + finding_row(finding))
        for line in root_summary(finding):
            echo("  " + line)
    echo(f"  explain one:  mspmon explain {highlights[0].id}" if highlights else "")
    echo("")
    echo(f"Database: {database}")
    command = sys.argv[0] if sys.argv and sys.argv[0].endswith("mspmon") else "mspmon"
    echo(f"See everything:  MSPMON_DATABASE_URL=sqlite:///{database} {command} analyze")
    for line in demo_outbox(engine, settings, directory / "outbox", dt.datetime.combine(as_of, dt.time(12), dt.UTC)):
        echo(line)
    for line in demo_access(engine, directory, f"sqlite:///{database}", command):
        echo(line)
    engine.dispose()
    return database
