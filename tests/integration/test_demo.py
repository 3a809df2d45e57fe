"""`mspmon demo`: the main job a new user runs first."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from sqlalchemy import func, select

from monitor.cli.commands import main
from monitor.store import db
from monitor.store.models import Dimension, Transition, responses
from tests.conftest import DEMO_DAY
from web.demo import DEMO_TRANSITION, demo_scenario, run_demo

TODAY = DEMO_DAY


def test_demo_builds_a_fresh_database_with_two_years_and_the_transition(demo_build):
    engine = db.make_engine(demo_build.database_url)
    with engine.connect() as connection:
        count, first_day, last_day = connection.execute(
            select(func.count(), func.min(responses.c.local_day), func.max(responses.c.local_day))
        ).one()
        dimensions = set(connection.execute(select(Dimension.name)).scalars())
        transition = connection.execute(select(Transition.name, Transition.go_live)).one()
    engine.dispose()
    epoch = dt.date(1970, 1, 1)
    assert count == 60_000
    assert {"country", "service", "channel", "assignment_group"} <= dimensions
    # Two years of weeks, ending before the current week: the demo never lies in the future.
    assert (epoch + dt.timedelta(days=last_day)) < TODAY - dt.timedelta(days=TODAY.weekday())
    assert (epoch + dt.timedelta(days=last_day)) - (epoch + dt.timedelta(days=first_day)) > dt.timedelta(weeks=100)
    assert transition == (DEMO_TRANSITION, demo_scenario(TODAY).go_live)
    assert any(str(demo_build.directory / "mspmon.db") in message for message in demo_build.messages)


def test_demo_wipes_an_earlier_run(tmp_path):
    target = tmp_path / "demo"
    target.mkdir()
    (target / "stray.txt").write_text("old", encoding="utf-8")
    run_demo(target, rows=1000, seed=1, echo=lambda _: None, today=TODAY)
    assert not (target / "stray.txt").exists()


def test_demo_command_runs_end_to_end(tmp_path):
    result = CliRunner(env={"MSPMON_CONFIG": None}).invoke(main, ["demo", "--dir", str(tmp_path / "d"), "--rows", "2000"])
    assert result.exit_code == 0, result.output
    assert "2000 inserted" in result.output
    assert (tmp_path / "d" / "mspmon.db").exists()
