"""The ``mspmon`` command line: the root group and the commands of ``monitor`` (db, ingest, analyze, transitions).

Plain click rather than ``flask.cli.FlaskGroup``: most commands (ingest, analysis,
the scheduler) have nothing to do with the web application and should not build it.
"""

from __future__ import annotations

import datetime as dt
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from config import ConfigError, load_settings
from monitor import store
from monitor.analysis.finding_text import explain_text, findings_table, signed
from monitor.analysis.finding_view import FindingView
from monitor.analysis.run import AnalysisReport, run_analysis
from monitor.cli.context import AppContext, parse_scope_option, pass_app, print_json
from monitor.ingest.importer import ingest_files
from monitor.ingest.profiled import ingest_with_profile
from monitor.ingest.profiles import Kind, ProfileError, resolve_profile
from monitor.ingest.readers import FileFormatError
from monitor.ingest.suggest import suggest_profile
from monitor.ingest.tickets import ingest_tickets, link_responses_to_tickets
from monitor.ingest.transition_file import TransitionFileError, read_transitions_file
from monitor.store import db
from monitor.store.models import (
    DEFAULT_BASELINE_WEEKS,
    DEFAULT_OBSERVATION_WEEKS,
    Finding,
    Transition,
)
from monitor.targets import Target, TargetError, parse_target


class AreaGroup(click.Group):
    """The root group; the areas above ``monitor`` (web, notifications) add their commands
    through the ``mspmon.commands`` entry points, as Flask's CLI does with ``flask.commands``,
    so that ``monitor`` never imports them."""

    _loaded = False

    def _load_areas(self) -> None:
        if not self._loaded:
            self._loaded = True
            for entry in entry_points(group="mspmon.commands"):
                self.add_command(entry.load(), entry.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_areas()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load_areas()
        return super().get_command(ctx, cmd_name)


@click.group(cls=AreaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mspmon")
@click.pass_context
def main(ctx: click.Context) -> None:
    """mspmon: employee experience through an IT service desk transition.

    Settings come from MSPMON_CONFIG (a TOML file) and MSPMON_<KEY> variables;
    the database is MSPMON_DATABASE_URL (default: ./mspmon.db).
    """
    try:
        ctx.obj = AppContext(load_settings())
    except ConfigError as exc:
        raise click.UsageError(f"configuration: {exc}") from None
    ctx.call_on_close(ctx.obj.close)


@main.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_app
def db_upgrade(app: AppContext, revision: str) -> None:
    """Create or migrate the schema to the newest revision; safe to repeat."""
    db.upgrade(app.engine, revision)
    click.echo(f"database at revision {db.current_revision(app.engine)}")


@db_group.command("current")
@pass_app
def db_current(app: AppContext) -> None:
    """Show the schema revision of the database and the newest one available."""
    click.echo(f"current: {db.current_revision(app.engine) or 'none'}; newest: {db.head_revision()}")


@main.command("init-db")
@pass_app
def init_db(app: AppContext) -> None:
    """Same as `db upgrade`: create the schema of a new database."""
    db.upgrade(app.engine)
    click.echo(f"database ready at revision {db.current_revision(app.engine)}")


class _ProgressBar:
    """A tqdm counter of the records read from each file, only on an interactive terminal."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._path: Path | None = None

    def __call__(self, path: Path, position: int) -> None:
        if path != self._path:
            from tqdm import tqdm

            self.close()
            self._path = path
            self._bar = tqdm(unit=" rows", unit_scale=True, desc=path.name)
        self._bar.update(position - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--source", default="default", show_default=True, help="Name of the survey source; response ids are unique per source.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows; write rejected rows to a rejects file next to each input.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object with the counts and errors.")
@click.option("--profile", "profile_spec", metavar="NAME|FILE.toml", help="Read the files through an import profile: configured [profiles.NAME], built-in (servicenow_incident, servicenow_survey) or a TOML file.")
@click.option("--kind", type=click.Choice([k.value for k in Kind]), default=None, help="What the files hold (default: the profile's kind, else responses).")
@click.option("--suggest-profile", is_flag=True, help="Print a starting profile (TOML) for each file from its header and a sample of rows; imports nothing.")
@pass_app
def ingest(
    app: AppContext,
    paths: tuple[Path, ...],
    source: str,
    skip_invalid: bool,
    as_json: bool,
    profile_spec: str | None,
    kind: str | None,
    suggest_profile: bool,
) -> None:
    """Import survey responses (or tickets) from CSV, JSON-lines or .xlsx files.

    All-or-nothing by default: if any row is invalid nothing is written and the
    command exits with status 1. Importing the same file again changes nothing.
    """
    if suggest_profile:
        for path in paths:
            try:
                click.echo(_suggest(path))
            except FileFormatError as exc:
                raise click.ClickException(str(exc)) from None
        return
    try:
        profile = resolve_profile(profile_spec, app.settings.profiles, app.settings.dimensions) if profile_spec else None
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    chosen = Kind(kind) if kind else (profile.kind if profile else Kind.RESPONSES)
    if profile is not None and profile.kind is not chosen:
        raise click.UsageError(f"--kind {chosen} does not match profile {profile.name!r}, which imports {profile.kind}")
    engine = app.ready_engine()
    progress = _ProgressBar() if sys.stderr.isatty() and not as_json else None
    try:
        if chosen is Kind.TICKETS:
            if skip_invalid:
                raise click.UsageError("--skip-invalid is not available for tickets: a ticket import is all-or-nothing")
            report = ingest_tickets(engine, paths, app.settings, profile, source=source)
        elif profile is not None:
            report = ingest_with_profile(
                engine, paths, app.settings, profile, source=source, skip_invalid=skip_invalid, on_progress=progress
            )
        else:
            report = ingest_files(
                engine, paths, app.settings, source=source, skip_invalid=skip_invalid, on_progress=progress
            )
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        if progress is not None:
            progress.close()
    if report.committed and chosen is Kind.RESPONSES:
        link_responses_to_tickets(engine)  # responses without a dimension take their ticket's
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(report.summary())
    if not report.committed:
        sys.exit(1)


def _suggest(path: Path) -> str:
    return suggest_profile(path)


@main.command("it-metrics")
@click.option("--by", "by", multiple=True, metavar="DIM", help="Per segment of this dimension (repeat for pairs).")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Last day considered (default: today).")
@click.option("--last", "last", type=click.IntRange(1, 10_000), default=12, show_default=True, help="Periods shown.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {\"rows\": [...]}.")
@pass_app
def it_metrics_command(app: AppContext, by: tuple[str, ...], as_of: dt.datetime | None, last: int, as_json: bool) -> None:
    """IT metrics of the imported tickets per period: volume, SLA, reassignment, reopen,
    resolution time, survey response rate and feedback delay, with 95% intervals."""
    from monitor.analysis.it_metrics import it_metrics_table

    day = as_of.date() if as_of else dt.datetime.now(dt.UTC).date()
    try:
        table = it_metrics_table(app.ready_engine(), period=app.settings.period, as_of=day, by=by)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    periods = sorted(table["period"].unique())[-last:] if len(table) else []
    table = table[table["period"].isin(periods)]
    if as_json:
        print_json({"rows": table.replace({float("nan"): None}).to_dict(orient="records")})
        return
    if table.empty:
        click.echo("no resolved tickets in complete periods")
        return
    for row in table.itertuples(index=False):
        segment = " ".join(f"{name}={getattr(row, name)}" for name in by)
        click.echo(
            f"{row.period_start} {segment} {row.metric:24} {row.value:10.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}] n={row.n}"
        )


@main.group("transitions")
def transitions_group() -> None:
    """IT changes to track, each with a go-live date and an optional scope."""


def _transition_dict(transition: Transition) -> dict[str, Any]:
    return {
        "name": transition.name,
        "go_live": transition.go_live.isoformat(),
        "scope": transition.scope,
        "description": transition.description,
        "baseline_weeks": transition.baseline_weeks,
        "observation_weeks": transition.observation_weeks,
        "targets": [Target.from_dict(t).text() for t in transition.targets],
    }


@transitions_group.command("add")
@click.argument("name")
@click.option("--go-live", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Go-live date, YYYY-MM-DD.")
@click.option("--scope", "scope_items", multiple=True, metavar="DIM=VALUE", help="Limit to responses with this dimension value; repeat for more (values of one dimension are alternatives).")
@click.option("--target", "target_texts", multiple=True, metavar="EXPR", help="Experience target such as happiness>=70@12w or lost_time<=60@12w[country=Finland]; repeatable.")
@click.option("--description", default="", help="What changed.")
@click.option("--baseline-weeks", type=click.IntRange(1, 104), default=DEFAULT_BASELINE_WEEKS, show_default=True)
@click.option("--observation-weeks", type=click.IntRange(1, 104), default=DEFAULT_OBSERVATION_WEEKS, show_default=True)
@pass_app
def transitions_add(
    app: AppContext,
    name: str,
    go_live: dt.datetime,
    scope_items: tuple[str, ...],
    target_texts: tuple[str, ...],
    description: str,
    baseline_weeks: int,
    observation_weeks: int,
) -> None:
    """Register a transition NAME going live on --go-live."""
    if not name.strip():
        raise click.BadParameter("must not be empty", param_hint="NAME")
    scope = parse_scope_option(scope_items)
    try:
        targets = [parse_target(text).as_dict() for text in target_texts]
    except TargetError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    transition = Transition(
        name=name.strip(),
        go_live=go_live.date(),
        scope=scope,
        description=description,
        baseline_weeks=baseline_weeks,
        observation_weeks=observation_weeks,
        targets=targets,
        created_at=dt.datetime.now(dt.UTC),
    )
    with db.session_scope(app.ready_engine()) as session:
        _register(session, transition)
    click.echo(f"transition {name!r} added, go-live {go_live.date().isoformat()}")


def _register(session: Session, transition: Transition) -> None:
    """Add a transition, refusing duplicates and warning about unseen scope values."""
    if store.find_transition(session, transition.name) is not None:
        raise click.ClickException(f"a transition named {transition.name!r} already exists")
    known = store.dimension_slots(session)
    for dimension, values in transition.scope.items():
        if dimension not in known:
            click.echo(f"warning: no data has dimension {dimension!r} yet", err=True)
            continue
        seen = set(store.dimension_values(session, dimension))
        for value in values:
            if value not in seen:
                click.echo(f"warning: no response has {dimension}={value} yet", err=True)
    store.add_transition(session, transition)


@transitions_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def transitions_import(app: AppContext, path: Path) -> None:
    """Register the transitions of a TOML file, all or none.

    \b
    [[transition]]
    name = "Service desk to MSP"
    go_live = 2025-09-01
    scope = { country = ["Finland", "Sweden"] }
    targets = ["happiness>=70@12w", "lost_time<=60@12w"]
    """
    try:
        transitions = read_transitions_file(path, now=dt.datetime.now(dt.UTC))
    except TransitionFileError as exc:
        raise click.ClickException(str(exc)) from None
    with db.session_scope(app.ready_engine()) as session:
        for transition in transitions:
            _register(session, transition)
    click.echo(f"{len(transitions)} transitions imported from {path}")


@transitions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def transitions_list(app: AppContext, as_json: bool) -> None:
    """List the registered transitions."""
    engine = app.ready_engine()
    with db.session_scope(engine) as session:
        rows = [_transition_dict(t) for t in store.list_transitions(session)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no transitions yet: add one with `mspmon transitions add NAME --go-live YYYY-MM-DD`")
        return
    for row in rows:
        scope = "; ".join(f"{k} in {', '.join(v)}" for k, v in row["scope"].items()) or "everyone"
        click.echo(
            f"{row['name']}  go-live {row['go_live']}  scope: {scope}  "
            f"baseline {row['baseline_weeks']} w, observation {row['observation_weeks']} w"
        )


@main.command("analyze")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Analyse the data as it stood on this date (default: today). Only complete weeks count.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object: as_of, findings, transitions.")
@click.option("--no-pairs", is_flag=True, help="Skip pairs of dimensions (faster, less precise).")
@pass_app
def analyze(app: AppContext, as_of: dt.datetime | None, as_json: bool, no_pairs: bool) -> None:
    """Detect dips in every metric, overall and per segment, and compare transitions."""
    engine = app.ready_engine()
    day = as_of.date() if as_of else dt.date.today()
    report = run_analysis(engine, app.settings, day, pairs=not no_pairs)
    # What is printed goes through the disclosure rules like every other publisher.
    minimum = app.settings.anonymity_min_responses
    report.findings = [shown for f in report.findings if (shown := f.protected(minimum)) is not None]
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(_format_report(report))


def _format_report(report: AnalysisReport) -> str:
    lines = [f"Analysis as of {report.as_of.isoformat()}: {report.responses:,} responses, {len(report.findings)} findings"]
    for item in report.transitions:
        lines.append("")
        lines.append(f"Transition {item['name']} (go-live {item['go_live']}, {item['weeks_since_go_live']} weeks ago)")
        for metric, windows in item["metrics"].items():
            for window in ("early", "settled", "since_go_live"):
                w = windows.get(window)
                if not w:
                    continue
                lines.append(
                    f"  {metric:<10} {window:<14} {w['before']} -> {w['after']}  delta {signed(w['delta'])} "
                    f"[{signed(w['ci_low'])}, {signed(w['ci_high'])}]  n {w['n_before']}/{w['n_after']}"
                )
            if windows.get("recovered_from"):
                lines.append(f"  {metric:<10} back within baseline from {windows['recovered_from']}")
        for window, summary in item.get("lost_time_distribution", {}).items():
            median = summary["median"]
            lines.append(
                f"  lost time  {window:<14} median {median['value']} min [{median['ci'][0]}, {median['ci'][1]}], "
                f"mean {summary['mean']['value']} min, n {median['n']}"
            )
        for target in item["targets"]:
            lines.append(f"  target {target['target']} by {target['deadline']}: {target['status']} (value {target.get('value')})")
    if report.findings:
        lines.append("")
        lines.extend(findings_table(report.findings))
    return "\n".join(lines)


@main.command("explain")
@click.argument("finding_id")
@click.option("--json", "as_json", is_flag=True, help="Print the finding and its echoes as one JSON object.")
@pass_app
def explain(app: AppContext, finding_id: str, as_json: bool) -> None:
    """Show the drill-down tree of one finding: where it sits, why, and its echoes."""
    engine = app.ready_engine()
    with db.session_scope(engine) as session:
        finding = session.get(Finding, finding_id)
        if finding is None:
            raise click.ClickException(f"no finding with id {finding_id!r} (see `mspmon analyze`)")
        # The echoes of the run that last reported it (its stored children), not
        # every finding an older run once folded under it. Both through the
        # disclosure rules: one not to be shown gets the same answer as none.
        minimum = app.settings.anonymity_min_responses
        shown = FindingView.of(finding).protected(minimum)
        if shown is None:
            raise click.ClickException(f"no finding with id {finding_id!r} (see `mspmon analyze`)")
        children = list(shown.explanation.children)
        echoes = [
            view
            for e in session.scalars(select(Finding).where(Finding.id.in_(children)).order_by(Finding.id))
            if (view := FindingView.of(e).protected(minimum)) is not None
        ]
    if as_json:
        print_json({**shown.as_dict(), "echoes": [e.as_dict() for e in echoes]})
        return
    click.echo(explain_text(shown, echoes))
