"""Tickets: the service desk's own record, next to the survey responses about it.

One row per ticket (``ticket_id`` unique): an event log's updates are reduced to the
latest before they get here, and a stored ticket is only replaced by a version that is
not older (``updated_at``), so re-importing an old export cannot roll a ticket back.
Dimensions use the same registry and slot columns as responses, so "assignment_group"
means one thing for both, and a response without a dimension value inherits its
ticket's (``inherit_ticket_dimensions``).

The caller is kept only as a keyed hash (see ``monitor.ingest.mapping.pseudonym``).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    select,
    update,
)

from monitor.store.models import (
    DIMENSION_SLOTS,
    Base,
    Dimension,
    DimensionValue,
    UTCDateTime,
    responses,
    slot_column,
)

LOOKUP_CHUNK = 5_000
COPY_CHUNK = 100_000
NAT = np.iinfo(np.int64).min  # as monitor.ingest.mapping.NAT: an unknown time

tickets = Table(
    "tickets",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("ticket_id", String(100), nullable=False, unique=True),
    Column("ticket_type", String(16), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=True),
    # Days since 1970 in the configured time zone, as responses' local_day.
    Column("opened_day", Integer, nullable=False),
    Column("resolved_day", Integer, nullable=True),
    Column("priority", String(64), nullable=False, default=""),
    Column("sla_met", Boolean, nullable=True),
    Column("reassignment_count", SmallInteger, nullable=True),
    Column("reopen_count", SmallInteger, nullable=True),
    Column("caller", String(64), nullable=True),  # keyed hash, never the identifier
    *(Column(slot_column(slot), Integer, nullable=True) for slot in range(1, DIMENSION_SLOTS + 1)),
    Column("content_hash", BigInteger, nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    Index("ix_tickets_resolved_day", "resolved_day"),
)

TICKET_COLUMNS = (
    "source",
    "ticket_id",
    "ticket_type",
    "opened_at",
    "resolved_at",
    "closed_at",
    "updated_at",
    "opened_day",
    "resolved_day",
    "priority",
    "sla_met",
    "reassignment_count",
    "reopen_count",
    "caller",
    "content_hash",
    "ingested_at",
)


def existing_tickets(connection: Connection, ids: Sequence[str]) -> dict[str, tuple[int, int, dt.datetime | None]]:
    """ticket_id -> (row id, content hash, updated_at) of the stored ones among ``ids``."""
    found: dict[str, tuple[int, int, dt.datetime | None]] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = list(ids[start : start + LOOKUP_CHUNK])
        query = select(tickets.c.ticket_id, tickets.c.id, tickets.c.content_hash, tickets.c.updated_at).where(
            tickets.c.ticket_id.in_(chunk)
        )
        for ticket_id, row_id, digest, updated in connection.execute(query):
            found[ticket_id] = (row_id, digest, updated)
    return found


def insert_tickets(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(tickets), rows)


def update_tickets(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Replace stored tickets; each row carries its ``row_id`` and every column."""
    if not rows:
        return
    names = [name for name in rows[0] if name != "row_id"]
    statement = (
        update(tickets)
        .where(tickets.c.id == bindparam("row_id"))
        .values({name: bindparam(f"v_{name}") for name in names})
    )
    connection.execute(statement, [{"row_id": row["row_id"], **{f"v_{n}": row[n] for n in names}} for row in rows])


def has_tickets(connection: Connection) -> bool:
    return connection.execute(select(tickets.c.id).limit(1)).first() is not None


def existing_ticket_frame(connection: Connection, ids: Sequence[str]) -> pd.DataFrame:
    """ticket_id, row_id, content_hash, updated_us (UTC microseconds, ``NAT`` when
    unknown) of the stored tickets among ``ids``; plain driver tuples, chunked IN lists."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = list(ids[start : start + LOOKUP_CHUNK])
        query = select(tickets.c.ticket_id, tickets.c.id, tickets.c.content_hash, tickets.c.updated_at).where(
            tickets.c.ticket_id.in_(chunk)
        )
        result = connection.execute(query)
        found.extend(result.cursor.fetchall())
        result.close()
    frame = pd.DataFrame(found, columns=["ticket_id", "row_id", "content_hash", "updated"])
    # Naive values are UTC as stored (SQLite text, PostgreSQL timestamp without time zone).
    updated = pd.to_datetime(frame["updated"], format="ISO8601").astype("datetime64[us]")
    frame["updated_us"] = np.where(updated.isna(), NAT, updated.to_numpy().astype(np.int64))
    return frame.drop(columns="updated")


def _csv_bytes(table: pa.Table) -> bytes:
    """CSV for PostgreSQL's COPY: strings always quoted (so "" is an empty string),
    nulls as nothing (NULL)."""
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


def insert_ticket_table(connection: Connection, table: pa.Table) -> None:
    """Bulk insert rows already in stored form (times as naive UTC text, dimension
    codes in slot columns): ``COPY`` on PostgreSQL, tuple ``executemany`` on SQLite.

    Columns null in every row (the unused dimension slots) are left out: they are
    NULL all the same (no column has a server default), and binding a None per row
    and column costs SQLite about as much as the row's real values.
    """
    if not table.num_rows:
        return
    table = table.select([name for name, column in zip(table.column_names, table.columns, strict=True) if column.null_count < len(column)])
    names = ", ".join(table.column_names)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY tickets ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
            for start in range(0, table.num_rows, COPY_CHUNK):
                copy.write(_csv_bytes(table.slice(start, COPY_CHUNK)))
        cursor.close()
        return
    marks = ", ".join("?" * table.num_columns)
    rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
    connection.exec_driver_sql(f"INSERT INTO tickets ({names}) VALUES ({marks})", rows)


def update_ticket_table(connection: Connection, table: pa.Table, row_ids: np.ndarray) -> None:
    """Replace stored tickets (primary keys ``row_ids``) by rows in stored form.

    PostgreSQL: COPY into a temporary table, then one UPDATE ... FROM; SQLite: a
    tuple ``executemany``. The ticket id and source stay as they are.
    """
    if not table.num_rows:
        return
    names = [name for name in table.column_names if name not in ("ticket_id", "source")]
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE IF NOT EXISTS ticket_updates ON COMMIT DROP AS SELECT id, "
            + ", ".join(names) + " FROM tickets WITH NO DATA"
        )
        body = table.select(names).add_column(0, "id", pa.array(row_ids, type=pa.int64()))
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY ticket_updates (id, {', '.join(names)}) FROM STDIN WITH (FORMAT csv)") as copy:
            for start in range(0, body.num_rows, COPY_CHUNK):
                copy.write(_csv_bytes(body.slice(start, COPY_CHUNK)))
        cursor.close()
        assignments = ", ".join(f"{name} = u.{name}" for name in names)
        connection.exec_driver_sql(f"UPDATE tickets SET {assignments} FROM ticket_updates u WHERE tickets.id = u.id")
        connection.exec_driver_sql("TRUNCATE ticket_updates")
        return
    assignments = ", ".join(f"{name} = ?" for name in names)
    columns = [table.column(name).to_pylist() for name in names]
    rows = list(zip(*columns, row_ids.tolist(), strict=True))
    connection.exec_driver_sql(f"UPDATE tickets SET {assignments} WHERE id = ?", rows)


def inherit_ticket_dimensions(connection: Connection, slots: Sequence[int]) -> int:
    """Fill responses' empty dimension slots from their ticket's; returns cells filled.

    A response joins its ticket by ``ticket_id``. Only empty slots are filled, so a
    value the survey gave always wins; re-running changes nothing.
    """
    filled = 0
    for slot in slots:
        name = slot_column(slot)
        ticket_value = (
            select(tickets.c[name])
            .where(tickets.c.ticket_id == responses.c.ticket_id)
            .scalar_subquery()
        )
        has_value = exists().where(and_(tickets.c.ticket_id == responses.c.ticket_id, tickets.c[name].is_not(None)))
        result = connection.execute(
            update(responses)
            .where(responses.c[name].is_(None), responses.c.ticket_id != "", has_value)
            .values({name: ticket_value})
        )
        filled += result.rowcount or 0
    return filled


def ticket_slots(connection: Connection) -> list[int]:
    """Slots that some ticket has a value in."""
    used = []
    for slot in range(1, DIMENSION_SLOTS + 1):
        column = tickets.c[slot_column(slot)]
        if connection.execute(select(column).where(column.is_not(None)).limit(1)).first() is not None:
            used.append(slot)
    return used


def load_ticket_frame(connection: Connection) -> pd.DataFrame:
    """Every ticket, one row each, with its first survey answer time and dimensions by name.

    Columns: ticket_id, ticket_type, opened_at, resolved_at, resolved_day, sla_met,
    reassignment_count, reopen_count, answered_at (NaT when unanswered), and one
    text column per registered dimension (None when unknown).
    """
    answers = (
        select(responses.c.ticket_id, func.min(responses.c.submitted_at).label("answered_at"))
        .where(responses.c.ticket_id != "")
        .group_by(responses.c.ticket_id)
        .subquery()
    )
    dims = connection.execute(select(Dimension.id, Dimension.name, Dimension.slot)).all()
    columns = [
        tickets.c.ticket_id,
        tickets.c.ticket_type,
        tickets.c.opened_at,
        tickets.c.resolved_at,
        tickets.c.resolved_day,
        tickets.c.sla_met,
        tickets.c.reassignment_count,
        tickets.c.reopen_count,
        *(tickets.c[slot_column(slot)].label(name) for _, name, slot in dims),
        answers.c.answered_at,
    ]
    query = select(*columns).select_from(tickets.outerjoin(answers, answers.c.ticket_id == tickets.c.ticket_id))
    result = connection.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    values = dict(connection.execute(select(DimensionValue.id, DimensionValue.value)).all())
    for _, name, _ in dims:
        frame[name] = frame[name].map(values)
    for name in ("opened_at", "resolved_at", "answered_at"):
        # Naive values (SQLite text, an aggregate's lost type) are UTC as stored.
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


# Responses join their ticket by ticket_id; declared here so models.py stays the responses' own.
Index("ix_responses_ticket_id", responses.c.ticket_id)


def _hours_between(connection: Connection, later: Any, earlier: Any) -> Any:
    """SQL for ``later - earlier`` in hours, on either backend."""
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def load_ticket_arrays(connection: Connection, first_day: int, last_day: int) -> dict[str, Any]:
    """The resolved tickets of local days ``first_day..last_day`` as numpy arrays, for the analysis.

    Keys: ``resolved_day``, ``sla`` / ``reassignments`` / ``reopens`` (float, NaN
    unknown), ``resolution_hours``, ``answered`` (bool), ``feedback_hours`` (hours
    from resolution to the first survey answer, NaN unanswered), and ``slots``:
    slot -> value id array (-1 unknown). One query; the first answer per ticket is, on
    SQLite, a lookup in the responses' ticket_id index per ticket (a third less CPU than
    materialising a GROUP BY of the responses and joining it, with 2M tickets); on
    PostgreSQL still that GROUP BY joined by ticket id (the lookups were measured on
    SQLite only).
    """
    slots = list(range(1, DIMENSION_SLOTS + 1))
    used = [slot for slot in slots if connection.execute(
        select(Dimension.id).where(Dimension.slot == slot).limit(1)
    ).first() is not None]
    day = tickets.c.resolved_day
    # "+ 0" keeps the planner off the resolved_day index, as in ``load_responses``: both
    # callers read the analysis window, nearly the whole table, and walking the index
    # fetched each row at random (2M tickets on SQLite: 6 s of CPU against 2 s for a scan).
    scanned = day + 0
    where = (scanned.is_not(None), scanned >= first_day, scanned <= last_day)
    codes = [
        day,
        func.coalesce(cast(tickets.c.sla_met, Integer), -1),
        func.coalesce(tickets.c.reassignment_count, -1),
        func.coalesce(tickets.c.reopen_count, -1),
        *(func.coalesce(tickets.c[slot_column(slot)], -1) for slot in used),
    ]
    if connection.dialect.name == "sqlite":
        first_answer = (
            select(func.min(responses.c.submitted_at))
            .where(responses.c.ticket_id == tickets.c.ticket_id, responses.c.ticket_id != "")
            .scalar_subquery()
        )
        times = [tickets.c.opened_at, tickets.c.resolved_at, first_answer]
        columns = _sqlite_integer_columns(connection, [*codes, *(_julian_ms(time) for time in times)], tickets, where)
        opened, resolved, answered = columns[len(codes):]
        resolution, feedback = _julian_hours(resolved, opened), _julian_hours(answered, resolved)
    else:
        answers = (
            select(responses.c.ticket_id.label("tid"), func.min(responses.c.submitted_at).label("first_answer"))
            .where(responses.c.ticket_id != "")
            .group_by(responses.c.ticket_id)
            .subquery()
        )
        source = tickets.outerjoin(answers, answers.c.tid == tickets.c.ticket_id)
        query = select(
            *codes,
            _hours_between(connection, tickets.c.resolved_at, tickets.c.opened_at),
            _hours_between(connection, answers.c.first_answer, tickets.c.resolved_at),
        ).select_from(source).where(*where)
        # Plain driver tuples, as ``load_responses`` reads them: SQLAlchemy rows would cost more than the query.
        result = connection.execute(query)
        rows = result.cursor.fetchall()
        result.close()
        width = len(codes) + 2
        raw = np.array(rows, dtype=float).reshape(len(rows), width) if rows else np.zeros((0, width))
        columns = list(raw[:, : len(codes)].astype(np.int64).T)
        resolution, feedback = raw[:, len(codes)], raw[:, len(codes) + 1]

    def known(column: np.ndarray) -> np.ndarray:
        return np.where(column < 0, np.nan, column.astype(float))

    return {
        "resolved_day": columns[0],
        "sla": known(columns[1]),
        "reassignments": known(columns[2]),
        "reopens": known(columns[3]),
        "resolution_hours": resolution,
        "answered": np.isfinite(feedback),
        "feedback_hours": feedback,
        "slots": {slot: columns[4 + i] for i, slot in enumerate(used)},
    }


_MS_PER_DAY = 86_400_000.0
_NO_TIME = -1  # no Julian day in milliseconds is negative


def _julian_ms(column: Any) -> Any:
    """SQLite's own Julian day number in milliseconds (``julianday`` returns it over
    86,400,000.0, so the rounding recovers it exactly), ``_NO_TIME`` for NULL."""
    return func.coalesce(cast(func.round(func.julianday(column) * _MS_PER_DAY), Integer), _NO_TIME)


def _julian_hours(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``(julianday(later) - julianday(earlier)) * 24.0`` in the same double operations
    as SQLite (so the same bits as ``_hours_between``); NaN where either is unknown."""
    hours = (later / _MS_PER_DAY - earlier / _MS_PER_DAY) * 24.0
    return np.where((later == _NO_TIME) | (earlier == _NO_TIME), np.nan, hours)


def _sqlite_integer_columns(connection: Connection, columns: Sequence[Any], source: Any, where: Sequence[Any]) -> list[np.ndarray]:
    """Integer expressions (never NULL) over the rows of ``source``, each read as one
    ``group_concat`` text and parsed by numpy: the sqlite3 driver builds a Python object
    per value, which for two million tickets took twice as long as the query itself
    (``numpy.fromstring`` parses the text in C, 5x faster than splitting it with Arrow).
    The aggregates of one SELECT see the rows in the same order, so the arrays align."""
    texts = connection.execute(select(*(func.group_concat(column) for column in columns)).select_from(source).where(*where)).one()
    return [np.zeros(0, dtype=np.int64) if text is None else np.fromstring(text, dtype=np.int64, sep=",") for text in texts]


def rating_extremes(connection: Connection, first_day: int, last_day: int) -> dict[int | None, dict[int, tuple[int, int, int]]]:
    """Ratings 0-1, 9-10 and all, per slot and value id, over local days ``first_day..last_day``.

    ``None`` maps to ``{0: everyone's counts}``. One GROUP BY per used slot.
    """
    low = func.sum(case((responses.c.rating <= 1, 1), else_=0))
    high = func.sum(case((responses.c.rating >= 9, 1), else_=0))
    window = responses.c.local_day.between(first_day, last_day)
    total = connection.execute(select(low, high, func.count()).where(window)).one()
    out: dict[int | None, dict[int, tuple[int, int, int]]] = {None: {0: tuple(int(v or 0) for v in total)}}
    for (slot,) in connection.execute(select(Dimension.slot)).all():
        column = responses.c[slot_column(slot)]
        rows = connection.execute(select(column, low, high, func.count()).where(window, column.is_not(None)).group_by(column)).all()
        out[slot] = {int(value): (int(a), int(b), int(n)) for value, a, b, n in rows}
    return out
