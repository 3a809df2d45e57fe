"""The row-wise ticket importer as it was before the column-wise one (issue 12), kept as
the reference the fast path must match: a dict per row, a hash per row, SQLAlchemy Core
``executemany`` with dicts, and the pandas latest-row rule. Tests only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine

from config import Settings
from monitor import store
from monitor.ingest import mapping
from monitor.ingest.importer import IngestReport, RecordError, _record_run
from monitor.ingest.mapping import (
    NAT,
    FieldCheck,
    convert_dates,
    field_values,
    parse_dates,
    pseudonym,
    read_profiled,
)
from monitor.ingest.profiles import (
    TICKET_FIELDS,
    Kind,
    PersonAction,
    Profile,
    ProfileError,
    parse_profile,
)
from monitor.ingest.readers import FileFormatError, Problem, locate_records
from monitor.ingest.rules import _utc_offsets_us
from monitor.ingest.sources import TEXT_SUFFIXES, read_source
from monitor.store.models import TicketType
from monitor.store.tickets import (
    existing_tickets,
    inherit_ticket_dimensions,
    insert_tickets,
    update_tickets,
)

_US_PER_DAY = 86_400 * 10**6
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}
MAX_COUNT = 32_767
MAX_LABEL = 200


def canonical_ticket_profile(path: Path, settings: Settings) -> Profile:
    """The profile of a canonical ticket file: field names as they are, other columns dimensions."""
    first = next(read_source(path, 1), None)
    names = first.table.column_names if first is not None else []
    columns = {name: name for name in names if name in TICKET_FIELDS and name != "caller"}
    dims = [name for name in names if name not in TICKET_FIELDS]
    raw: dict[str, Any] = {"kind": "tickets", "columns": columns, "dimensions": dims}
    if "caller" in names:
        raw["columns"]["caller"] = "caller"
        raw["people"] = {"caller": "hash"}
    return parse_profile("", raw, allowed_dimensions=settings.dimensions)


def _local_days(micros: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    present = micros != NAT
    days = np.full(len(micros), NAT, dtype=np.int64)
    if present.any():
        values = micros[present]
        days[present] = (values + _utc_offsets_us(values, zone)) // _US_PER_DAY
    return days


def _as_datetime(micros: int) -> dt.datetime | None:
    if micros == NAT:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(micros))


def _tickets_of_batch(
    batch: Any, profile: Profile, source_zone: ZoneInfo, zone: ZoneInfo, key: str
) -> tuple[np.ndarray, list[dict[str, Any]], list[Problem]]:
    """Rows ready to store (dimensions by name under ``dims``), and the errors of the others."""
    check = FieldCheck(batch.records)
    fields = field_values(batch, profile)
    source_of = profile.source_of
    size = batch.table.num_rows

    def text(name: str) -> list[str]:
        return fields[name].to_pylist() if name in fields else [""] * size

    def column(name: str) -> str:
        return source_of.get(name, name)

    ids = text("ticket_id")
    check.flag(np.array([v == "" for v in ids]), column("ticket_id"), ids, lambda v: "required: a ticket id")
    check.flag(np.array([len(v) > 100 for v in ids]), column("ticket_id"), ids, lambda v: f"longer than 100 characters ({len(v)})")
    types = [v.lower() if v else "incident" for v in text("ticket_type")]
    allowed = tuple(TicketType)
    check.flag(np.array([v not in allowed for v in types]), column("ticket_type"), text("ticket_type"), lambda v: f"must be one of {', '.join(allowed)}, got {v!r}")
    dates = convert_dates(check, fields, profile, source_zone)
    opened = dates.get("opened_at", np.full(size, NAT))
    empty_opened = (opened == NAT) & np.array([v == "" for v in text("opened_at")], dtype=bool)
    check.flag(empty_opened, column("opened_at"), text("opened_at"), lambda v: "required: when the ticket was opened")
    for name in ("resolved_at", "closed_at"):
        if name in dates:
            early = (dates[name] != NAT) & (opened != NAT) & (dates[name] < opened)
            check.flag(early, column(name), text(name), lambda v, n=name: f"{n.removesuffix('_at')} before the ticket was opened: {v!r}")
    priority = text("priority")
    check.flag(np.array([len(v) > 64 for v in priority]), column("priority"), priority, lambda v: "longer than 64 characters")
    sla_text = [v.lower() for v in text("sla_met")]
    check.flag(np.array([v != "" and v not in _TRUE and v not in _FALSE for v in sla_text]), column("sla_met"), text("sla_met"), lambda v: f"expected true or false, got {v!r}")
    counts: dict[str, list[int | None]] = {}
    for name in ("reassignment_count", "reopen_count"):
        values = text(name)
        numbers = pd.to_numeric(pd.Series(values, dtype=object).replace("", np.nan), errors="coerce").to_numpy(dtype=float)
        empty = np.array([v == "" for v in values])
        bad = ~empty & ~(np.isfinite(numbers) & (numbers >= 0) & (numbers <= MAX_COUNT) & (np.mod(numbers, 1) == 0))
        check.flag(bad, column(name), values, lambda v: f"must be a whole number from 0 to {MAX_COUNT}, got {v!r}")
        counts[name] = [None if e or b else int(n) for n, e, b in zip(numbers, empty, bad, strict=True)]
    callers = [pseudonym(v, key) if v else None for v in text("caller")] if "caller" in fields else [None] * size
    dims = {}
    for source, target in profile.dimensions.items():
        values = batch.table.column(source).to_pylist() if source in batch.table.column_names else [""] * size
        check.flag(np.array([len(v) > MAX_LABEL for v in values]), source, values, lambda v: f"longer than {MAX_LABEL} characters")
        dims[target] = values
    opened_days = _local_days(opened, zone)
    resolved = dates.get("resolved_at", np.full(size, NAT))
    resolved_days = _local_days(resolved, zone)
    closed = dates.get("closed_at", np.full(size, NAT))
    updated = dates.get("updated_at", np.full(size, NAT))

    rows: list[dict[str, Any]] = []
    for i in np.flatnonzero(~check.bad):
        sla = None if sla_text[i] == "" else sla_text[i] in _TRUE
        row = {
            "ticket_id": ids[i],
            "ticket_type": types[i],
            "opened_at": _as_datetime(opened[i]),
            "resolved_at": _as_datetime(resolved[i]),
            "closed_at": _as_datetime(closed[i]),
            "updated_at": _as_datetime(updated[i]),
            "opened_day": int(opened_days[i]),
            "resolved_day": None if resolved_days[i] == NAT else int(resolved_days[i]),
            "priority": priority[i],
            "sla_met": sla,
            "reassignment_count": counts["reassignment_count"][i],
            "reopen_count": counts["reopen_count"][i],
            "caller": callers[i],
            "dims": {name: values[i] for name, values in dims.items() if values[i]},
        }
        content = "\x1f".join(
            str(row[name]) for name in ("ticket_type", "opened_at", "resolved_at", "closed_at", "updated_at", "priority", "sla_met", "reassignment_count", "reopen_count", "caller")
        ) + "\x1e" + "\x1e".join(f"{k}={v}" for k, v in sorted(row["dims"].items()))
        row["content_hash"] = int.from_bytes(hashlib.blake2b(content.encode(), digest_size=8).digest(), "big", signed=True)
        rows.append(row)
    return batch.records[~check.bad], rows, check.problems


class _TicketWriter:
    def __init__(self, connection: Any, source: str, now: dt.datetime) -> None:
        self.connection = connection
        self.source = source
        self.now = now
        self.registry = store.Registry.load(connection)
        self.report = IngestReport()
        self.slots: set[int] = set()

    def write(self, rows: list[dict[str, Any]]) -> None:
        known = existing_tickets(self.connection, [row["ticket_id"] for row in rows])
        new, changed = [], []
        for row in rows:
            previous = known.get(row["ticket_id"])
            if previous is None:
                new.append(self._stored(row))
                continue
            row_id, digest, stored_updated = previous
            older = stored_updated is not None and row["updated_at"] is not None and row["updated_at"] < stored_updated
            if digest == row["content_hash"] or older:
                self.report.unchanged += 1
            else:
                changed.append({"row_id": row_id, **self._stored(row)})
        insert_tickets(self.connection, new)
        update_tickets(self.connection, changed)
        self.report.inserted += len(new)
        self.report.updated += len(changed)

    def _stored(self, row: dict[str, Any]) -> dict[str, Any]:
        stored = {k: v for k, v in row.items() if k != "dims"}
        stored.update(source=self.source, ingested_at=self.now)
        for slot in range(1, store.models.DIMENSION_SLOTS + 1):
            stored[store.models.slot_column(slot)] = None
        for name, value in row["dims"].items():
            dim_id, slot = self.registry.dimension(self.connection, name, self.now)
            stored[store.models.slot_column(slot)] = self.registry.value_code(self.connection, dim_id, value, self.now)
            self.slots.add(slot)
        return stored


def _locate(path: Path, problems: list[Problem], limit: int) -> list[RecordError]:
    chosen = sorted(problems, key=lambda p: p.record)[:limit]
    located: dict[int, Any] = {}
    if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
        _, located = locate_records(path, {p.record for p in chosen})
    return [
        RecordError(str(path), located[p.record].line if p.record in located else p.record, p.column, p.message)
        for p in chosen
    ]


def reference_ingest_tickets(
    engine: Engine,
    paths: Iterable[Path],
    settings: Settings,
    profile: Profile | None = None,
    *,
    source: str = "default",
    now: dt.datetime | None = None,
) -> IngestReport:
    """The old importer; with the old latest-row rule in place while it runs."""
    fast = mapping.latest_rows
    mapping.latest_rows = _old_latest_rows
    try:
        return _reference(engine, paths, settings, profile, source=source, now=now)
    finally:
        mapping.latest_rows = fast


def _reference(engine, paths, settings, profile=None, *, source="default", now=None):
    paths = [Path(path) for path in paths]
    now = now or dt.datetime.now(dt.UTC)
    if profile is not None and profile.kind is not Kind.TICKETS:
        raise ProfileError(f"profiles.{profile.name}.kind: a {profile.kind} profile cannot import tickets")
    zone = ZoneInfo(settings.timezone)
    report = IngestReport()
    failed = False
    with engine.connect() as connection:
        transaction = connection.begin()
        writer = _TicketWriter(connection, source, now)
        try:
            for path in paths:
                try:
                    file_profile = profile or canonical_ticket_profile(path, settings)
                    hashed = [c for c, a in file_profile.people.items() if a == PersonAction.HASH]
                    if hashed and not settings.pseudonym_key:
                        raise ProfileError(
                            f"profiles.{file_profile.name}.people.{hashed[0]}: hashing people's identifiers needs a key: "
                            "set MSPMON_PSEUDONYM_KEY (or pseudonym_key in the config file)"
                        )
                    source_zone = ZoneInfo(file_profile.timezone or settings.timezone)
                    problems: list[Problem] = []
                    seen: dict[str, int] = {}
                    for batch in read_profiled(path, file_profile, settings.ingest_batch_rows):
                        problems.extend(batch.problems)
                        records, rows, bad = _tickets_of_batch(batch, file_profile, source_zone, zone, settings.pseudonym_key)
                        problems.extend(bad)
                        unique = []
                        for record, row in zip(records.tolist(), rows, strict=True):
                            first = seen.setdefault(row["ticket_id"], record)
                            if first != record:
                                problems.append(Problem(record, file_profile.source_of.get("ticket_id", "ticket_id"), f"duplicate ticket id {row['ticket_id']!r} (first in record {first}); an event log needs the profile option latest = {{ key = ..., order = [...] }}"))
                            else:
                                unique.append(row)
                        if not problems and not failed:
                            writer.write(unique)
                    if problems:
                        failed = True
                        report.rejected += len({p.record for p in problems})
                        report.error_count += len(problems)
                        room = max(settings.max_errors_listed - len(report.errors), 0)
                        report.errors.extend(_locate(path, problems, room))
                except FileFormatError as error:
                    failed = True
                    report.error_count += 1
                    report.errors.append(RecordError(str(path), error.line, error.column, error.message))
            if failed:
                transaction.rollback()
            else:
                inherit_ticket_dimensions(connection, sorted(writer.slots))
                transaction.commit()
                report.committed = True
                report.inserted, report.updated, report.unchanged = (
                    writer.report.inserted,
                    writer.report.updated,
                    writer.report.unchanged,
                )
        except BaseException:
            transaction.rollback()
            raise
    _record_run(engine, source, [str(p) for p in paths], report, now)
    return report




def _old_order_values(values, profile, zone):
    text = values.to_pylist()
    numeric = pd.to_numeric(pd.Series(text, dtype=object).replace("", np.nan), errors="coerce").to_numpy(dtype=float)
    empty = np.array([v == "" for v in text], dtype=bool)
    if np.isfinite(numeric[~empty]).all():
        return np.where(empty, -np.inf, numeric), np.zeros(len(text), dtype=bool)
    micros, bad = parse_dates(values, profile, zone)
    return np.where(empty, -np.inf, micros.astype(float)), bad


def _old_latest_rows(table: pa.Table, numbers: np.ndarray, profile: Profile, zone: ZoneInfo | None = None) -> tuple[np.ndarray, pa.Table, list[Problem]]:
    """The last row of each key by the ordering columns, then by position in the file.

    Only the key and ordering columns of superseded rows are checked: an interim
    state of a ticket with a bad cell does not refuse the whole log, its final state
    is what is stored and fully validated.
    """
    latest = profile.latest
    assert latest is not None
    zone = zone or ZoneInfo(profile.timezone or "UTC")
    problems: list[Problem] = []
    bad = np.zeros(table.num_rows, dtype=bool)
    frame = pd.DataFrame({f"k{i}": table.column(c).to_pylist() for i, c in enumerate(latest.key)})
    for i, column in enumerate(latest.key):
        empty = (frame[f"k{i}"] == "").to_numpy()
        problems.extend(Problem(int(numbers[p]), column, "required: the key of the latest-row rule is empty") for p in np.flatnonzero(empty))
        bad |= empty
    for i, column in enumerate(latest.order):
        values, unparsed = _old_order_values(table.column(column).combine_chunks(), profile, zone)
        frame[f"o{i}"] = values
        problems.extend(
            Problem(int(numbers[p]), column, f"ordering value is neither a number nor a date in the profile's format(s): {table.column(column)[int(p)].as_py()!r}")
            for p in np.flatnonzero(unparsed)
        )
        bad |= unparsed
    frame["position"] = np.arange(table.num_rows)
    frame = frame[~bad]
    order = [f"o{i}" for i in range(len(latest.order))] + ["position"]
    keys = [f"k{i}" for i in range(len(latest.key))]
    kept = np.sort(frame.sort_values(order, kind="stable").drop_duplicates(keys, keep="last")["position"].to_numpy())
    return numbers[kept], table.take(pa.array(kept, type=pa.int64())), problems
