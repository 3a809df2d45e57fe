"""Queries on the store. Other modules ask for data through these functions.

Bulk paths use SQLAlchemy Core on a ``Connection`` (one transaction per import); the
small entity tables use the ORM through a ``Session``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload

from monitor.periods import FIRST_MONDAY
from monitor.store.models import (
    DIMENSION_SLOTS,
    MAX_FACTORS,
    AnalysisRun,
    Dimension,
    DimensionValue,
    Factor,
    Finding,
    ImportRun,
    Transition,
    responses,
    slot_column,
)

LOOKUP_CHUNK = 5_000  # stays under SQLite's bound-parameter limit


def period_index(period: str) -> ColumnElement[int]:
    """Period number of each response: days or Monday-based weeks since 1970-01-05.

    Integer arithmetic on ``local_day`` gives the same answer on every backend
    without date functions, and is cheap inside a GROUP BY.
    """
    if period == "day":
        return responses.c.local_day
    return (responses.c.local_day - FIRST_MONDAY) // 7


class RegistryFull(ValueError):
    """No free dimension slot or factor bit is left; the message says which."""


@dataclass
class Registry:
    """Dictionary encodings of dimensions, their values and factors, cached per import.

    New names are inserted on first sight inside the caller's transaction, so a
    rolled-back import leaves no trace here either.
    """

    slots: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (id, slot)
    values: dict[tuple[int, str], int] = field(default_factory=dict)  # (dim id, value) -> id
    factor_bits: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, connection: Connection) -> Registry:
        registry = cls()
        for dim_id, name, slot in connection.execute(
            select(Dimension.id, Dimension.name, Dimension.slot)
        ):
            registry.slots[name] = (dim_id, slot)
        for value_id, dim_id, value in connection.execute(
            select(DimensionValue.id, DimensionValue.dimension_id, DimensionValue.value)
        ):
            registry.values[(dim_id, value)] = value_id
        for name, bit in connection.execute(select(Factor.name, Factor.bit)):
            registry.factor_bits[name] = bit
        return registry

    def dimension(self, connection: Connection, name: str, now: dt.datetime) -> tuple[int, int]:
        """(id, slot) of a dimension, registering it in the next free slot if new."""
        known = self.slots.get(name)
        if known is not None:
            return known
        while True:
            used = {slot for _, slot in self.slots.values()}
            free = [slot for slot in range(1, DIMENSION_SLOTS + 1) if slot not in used]
            if not free:
                raise RegistryFull(
                    f"dimension {name!r} cannot be added: all {DIMENSION_SLOTS} dimension slots "
                    f"are used ({', '.join(sorted(self.slots))})"
                )
            _insert_if_absent(connection, Dimension, name=name, slot=free[0], created_at=now)
            row = connection.execute(select(Dimension.id, Dimension.slot).where(Dimension.name == name)).first()
            if row is not None:
                self.slots[name] = (row.id, row.slot)
                return self.slots[name]
            # The slot went to another dimension registered meanwhile: learn it, try the next.
            self.slots.update(
                (other, (dim_id, slot))
                for dim_id, other, slot in connection.execute(select(Dimension.id, Dimension.name, Dimension.slot))
            )

    def value_code(self, connection: Connection, dim_id: int, value: str, now: dt.datetime) -> int:
        code = self.values.get((dim_id, value))
        if code is None:
            _insert_if_absent(connection, DimensionValue, dimension_id=dim_id, value=value, first_seen_at=now)
            code = connection.execute(
                select(DimensionValue.id).where(DimensionValue.dimension_id == dim_id, DimensionValue.value == value)
            ).scalar_one()
            self.values[(dim_id, value)] = code
        return code

    def factor_mask(self, connection: Connection, names: Iterable[str]) -> int:
        mask = 0
        for name in names:
            bit = self.factor_bits.get(name)
            while bit is None:
                if len(self.factor_bits) >= MAX_FACTORS:
                    raise RegistryFull(
                        f"factor {name!r} cannot be added: {MAX_FACTORS} distinct factors "
                        "are already known"
                    )
                _insert_if_absent(connection, Factor, name=name, bit=len(self.factor_bits))
                self.factor_bits = {n: b for n, b in connection.execute(select(Factor.name, Factor.bit))}
                bit = self.factor_bits.get(name)
            mask |= 1 << bit
        return mask


def _insert_if_absent(connection: Connection, model: type, **values: Any) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on either backend.

    Another import may register the same name at the same moment (imports take a
    lock, see ``try_lock_imports``, but a registry row must never be the reason an
    import dies with a raw IntegrityError): the caller selects the row afterwards,
    whoever inserted it. On PostgreSQL a conflicting uncommitted insert makes this
    wait for the other transaction, then do nothing if it committed.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement: Insert = dialect.insert(model).values(**values).on_conflict_do_nothing()
    connection.execute(statement)


def try_lock_imports(connection: Connection) -> bool:
    """Take the import lock for the rest of this connection's transaction, if free.

    One import writes at a time, so each sees the registry and the stored responses
    as the previous one committed them. SQLite: ``BEGIN IMMEDIATE`` (the database's
    write lock, taken up front rather than at the first insert). PostgreSQL: a
    transaction-level advisory lock keyed on the schema, released at commit or
    rollback, and by the server if the client dies.
    """
    if connection.dialect.name == "postgresql":
        key = text("SELECT pg_try_advisory_xact_lock(hashtext('mspmon.import:' || current_schema()))")
        return bool(connection.execute(key).scalar_one())
    # Ask briefly, so the caller can give up when told to; its own wait is restored.
    waited = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    connection.exec_driver_sql("PRAGMA busy_timeout = 200")
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False
        raise
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited)}")
    return True


BASE_INSERT_COLUMNS = (
    "source",
    "response_id",
    "submitted_at",
    "local_day",
    "ticket_id",
    "ticket_type",
    "rating",
    "lost_time_minutes",
    "factors",
    "factor_mask",
    "comment",
)


def used_slots(registry: Registry) -> list[int]:
    """Slots of the registered dimensions: bulk writes bind only these columns."""
    return sorted(slot for _, slot in registry.slots.values())


def insert_columns(registry: Registry) -> list[str]:
    """Column order of the row tuples that ``insert_responses`` takes."""
    slots = [slot_column(slot) for slot in used_slots(registry)]
    return [*BASE_INSERT_COLUMNS, *slots, "content_hash", "ingested_at"]


def source_has_responses(connection: Connection, source: str) -> bool:
    query = select(responses.c.id).where(responses.c.source == source).limit(1)
    return connection.execute(query).first() is not None


def existing_responses(
    connection: Connection, source: str, response_ids: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Map response_id -> (primary key, content hash) for the ids already stored."""
    # Straight on the driver's cursor: SQLAlchemy's per-row result processing would
    # cost more than the lookup itself on a million-row re-import.
    cursor = connection.connection.cursor()
    found: dict[str, tuple[int, int]] = {}
    try:
        if connection.dialect.name == "postgresql":
            # One array parameter instead of thousands of bound values.
            cursor.execute(
                "SELECT response_id, id, content_hash FROM responses "
                "WHERE source = %s AND response_id = ANY(%s)",
                (source, list(response_ids)),
            )
            return {response_id: (pk, digest) for response_id, pk, digest in cursor.fetchall()}
        for start in range(0, len(response_ids), LOOKUP_CHUNK):
            chunk = list(response_ids[start : start + LOOKUP_CHUNK])
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                f"SELECT response_id, id, content_hash FROM responses WHERE source = ? AND response_id IN ({marks})",
                (source, *chunk),
            )
            found.update((response_id, (pk, digest)) for response_id, pk, digest in cursor.fetchall())
        return found
    finally:
        cursor.close()


def insert_responses(connection: Connection, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert pre-formatted rows: COPY on PostgreSQL, executemany on SQLite.

    Rows bypass SQLAlchemy's per-value type processing (the importer formats
    times as naive UTC text and factors as JSON text, as the column types would),
    which is what makes a 1M-row import take seconds rather than minutes.
    """
    if not rows:
        return
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY responses ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.close()
        return
    marks = ", ".join("?" * len(columns))
    connection.exec_driver_sql(f"INSERT INTO responses ({names}) VALUES ({marks})", rows)


def update_responses(
    connection: Connection, columns: list[str], keys: list[int], rows: list[tuple[Any, ...]]
) -> None:
    """Replace the content of stored responses, identified by primary key."""
    if not rows:
        return
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    updated = [(index, name) for index, name in enumerate(columns) if name not in ("source", "response_id")]
    assignments = ", ".join(f"{name} = {mark}" for _, name in updated)
    params = [tuple(row[index] for index, _ in updated) + (key,) for row, key in zip(rows, keys, strict=True)]
    connection.exec_driver_sql(f"UPDATE responses SET {assignments} WHERE id = {mark}", params)


def record_import_run(session: Session, run: ImportRun) -> None:
    session.add(run)


def dimension_slots(session: Session) -> dict[str, str]:
    """Map each registered dimension's name to its slot column in ``responses``."""
    return {
        name: slot_column(slot)
        for name, slot in session.execute(select(Dimension.name, Dimension.slot).order_by(Dimension.slot))
    }


def add_transition(session: Session, transition: Transition) -> Transition:
    session.add(transition)
    session.flush()
    return transition


def list_transitions(session: Session) -> list[Transition]:
    return list(session.scalars(select(Transition).order_by(Transition.go_live, Transition.name)))


def find_transition(session: Session, name: str) -> Transition | None:
    return session.scalars(select(Transition).where(Transition.name == name)).one_or_none()


def dimension_values(session: Session, name: str) -> list[str]:
    return list(
        session.scalars(
            select(DimensionValue.value)
            .join(Dimension)
            .where(Dimension.name == name)
            .order_by(DimensionValue.value)
        )
    )


def latest_run(session: Session) -> AnalysisRun | None:
    """The newest successful analysis run: its ``report`` is what digests and pages show."""
    return session.scalars(
        select(AnalysisRun).where(AnalysisRun.status == "succeeded").order_by(AnalysisRun.id.desc()).limit(1)
    ).first()


def current_findings(session: Session) -> list[Finding]:
    """The findings the latest successful analysis reported, in its order.

    Older findings stay stored (labels, silences and sent digests refer to them),
    but a change a later run no longer sees, or sees folded under another root,
    must not be shown as it was.
    """
    run = latest_run(session)
    if run is None or not run.report:
        return []
    order = [f["id"] for f in run.report.get("findings", [])]
    found = {f.id: f for f in session.scalars(select(Finding).where(Finding.id.in_(order)).options(selectinload(Finding.labels)))}
    return [found[i] for i in order if i in found]
