"""Import tickets (``mspmon ingest --kind tickets``, or a profile with ``kind = "tickets"``).

Same contract as response imports: one transaction, all-or-nothing (one bad row and
nothing is written; errors name file, line, source column and reason), idempotent
(each ticket keeps a hash of its normalised content: re-importing changes nothing).
A ticket is identified by ``ticket_id`` alone; the latest version wins: within an
event log by the profile's ``latest`` rule, across imports by ``updated_at`` (a stored
ticket is never replaced by an older version; without ``updated_at`` the last import
wins). After writing, responses that lack a dimension inherit their ticket's value.

Without a profile, a canonical ticket file has the field names as its header and
every further column is a dimension (as for responses).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine

from config import Settings
from monitor import store
from monitor.ingest.importer import IngestReport, RecordError, _record_run
from monitor.ingest.mapping import (
    NAT,
    PSEUDONYM_CHARS,
    FieldCheck,
    convert_dates,
    field_values,
    numbers_of,
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
    existing_ticket_frame,
    has_tickets,
    inherit_ticket_dimensions,
    insert_ticket_table,
    update_ticket_table,
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


class _Values:
    """Lazy ``values[i]`` over an Arrow array, for error messages only (``FieldCheck.flag``)."""

    def __init__(self, array: pa.Array) -> None:
        self.array = array

    def __getitem__(self, position: int) -> Any:
        return self.array[int(position)].as_py()


def _flag(check: FieldCheck, mask: np.ndarray, column: str, values: pa.Array, message) -> None:  # type: ignore[no-untyped-def]
    if mask.any():
        check.flag(mask, column, _Values(values), message)  # type: ignore[arg-type]


def _np(mask: Any) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def pseudonyms(values: pa.Array, key: str) -> pa.Array:
    """``pseudonym`` of each value (null when empty), hashing each distinct value once."""
    encoded = pc.dictionary_encode(values).combine_chunks() if isinstance(values, pa.ChunkedArray) else pc.dictionary_encode(values)
    inner = hmac.new(key.encode(), digestmod=hashlib.sha256)
    hashed = []
    for value in encoded.dictionary.to_pylist():
        if value == "":
            hashed.append(None)
            continue
        digest = inner.copy()
        digest.update(value.strip().lower().encode())
        hashed.append(digest.hexdigest()[:PSEUDONYM_CHARS])
    return pc.take(pa.array(hashed, type=pa.string()), encoded.indices)


def _datetime_text(micros: np.ndarray, none: str | None = "None") -> pa.Array:
    """UTC instants as ``str(datetime)`` gives them (``2016-02-29 01:16:00+00:00``,
    microseconds only when not zero), ``none`` for NAT: the content hash's form."""
    present = micros != NAT
    known = np.where(present, micros, 0)
    text = pa.array(known // 10**6, type=pa.timestamp("s")).cast(pa.string())
    fraction = known % 10**6
    if fraction.any():
        padded = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 6, "0")
        text = pc.if_else(pa.array(fraction != 0), pc.binary_join_element_wise(text, padded, "."), text)
    text = pc.binary_join_element_wise(text, "+00:00", "")
    return pc.if_else(pa.array(present), text, pa.scalar(none, pa.string()))


def _stored_time(micros: np.ndarray) -> pa.Array:
    """Naive UTC text as the UTCDateTime columns store it (``insert_responses``'s form,
    ``2016-02-29 01:16:00.000000``, Arrow's own cast); null for NAT."""
    return pa.array(micros, type=pa.timestamp("us"), mask=micros == NAT).cast(pa.string())


def _number_text(values: np.ndarray) -> pa.Array:
    """-1 (unknown) as ``None``, others as decimal text."""
    return pc.if_else(pa.array(values < 0), "None", pc.cast(pa.array(values), pa.string()))


def content_hashes(frame: dict[str, Any], dims: dict[str, pa.Array]) -> np.ndarray:
    """The content hash of each ticket: blake2b (8 bytes, signed) of its normalised
    fields and non-empty dimensions, the same text the row-wise importer hashed, so
    hashes stored by earlier versions stay valid. The text is built column-wise; only
    the hash itself runs per row (about a microsecond each)."""
    sla = frame["sla_met"]
    parts = [
        frame["ticket_type"],
        _datetime_text(frame["opened_us"]),
        _datetime_text(frame["resolved_us"]),
        _datetime_text(frame["closed_us"]),
        _datetime_text(frame["updated_us"]),
        frame["priority"],
        pc.if_else(pa.array(sla < 0), "None", pc.if_else(pa.array(sla > 0), "True", "False")),
        _number_text(frame["reassignment_count"]),
        _number_text(frame["reopen_count"]),
        pc.fill_null(frame["caller"], "None"),
    ]
    text = pc.binary_join_element_wise(*parts, "\x1f")
    joined: pa.Array | None = None
    for name in sorted(dims):
        values = dims[name]
        empty = pc.equal(values, "")
        piece = pc.if_else(empty, "", pc.binary_join_element_wise(pa.scalar(name, pa.string()), values, "="))
        if joined is None:
            joined = piece
        else:
            both = pc.binary_join_element_wise(joined, piece, "\x1e")
            joined = pc.if_else(pc.equal(joined, ""), piece, pc.if_else(empty, joined, both))
    text = pc.binary_join_element_wise(text, joined if joined is not None else "", "\x1e")
    digests = b"".join(hashlib.blake2b(value.encode(), digest_size=8).digest() for value in text.to_pylist())
    return np.frombuffer(digests, dtype=">i8").astype(np.int64)


def _tickets_of_batch(
    batch: Any, profile: Profile, source_zone: ZoneInfo, zone: ZoneInfo, key: str
) -> tuple[np.ndarray, dict[str, Any], list[Problem]]:
    """The good rows of a batch column by column, and the errors of the others.

    Returns the good rows' record numbers, their columns (``ticket_id`` ... as Arrow
    text or numpy arrays, times as UTC microseconds with ``NAT``, unknown numbers as
    -1, ``dim:NAME`` text with "" unknown, ``content_hash``) and the problems.
    """
    check = FieldCheck(batch.records)
    fields = field_values(batch, profile)
    source_of = profile.source_of
    size = batch.table.num_rows
    blank = pa.array([""] * size, type=pa.string()) if size else pa.array([], type=pa.string())

    def text(name: str) -> pa.Array:
        return pc.fill_null(fields[name], "") if name in fields else blank

    def column(name: str) -> str:
        return source_of.get(name, name)

    ids = text("ticket_id")
    _flag(check, _np(pc.equal(ids, "")), column("ticket_id"), ids, lambda v: "required: a ticket id")
    id_length = pc.utf8_length(ids).to_numpy(zero_copy_only=False)
    _flag(check, id_length > 100, column("ticket_id"), ids, lambda v: f"longer than 100 characters ({len(v)})")
    raw_types = text("ticket_type")
    types = pc.if_else(pc.equal(raw_types, ""), "incident", pc.utf8_lower(raw_types))
    allowed = tuple(TicketType)
    _flag(check, ~_np(pc.is_in(types, value_set=pa.array(allowed))), column("ticket_type"), raw_types,
          lambda v: f"must be one of {', '.join(allowed)}, got {v!r}")
    dates = convert_dates(check, fields, profile, source_zone)
    none = np.full(size, NAT, dtype=np.int64)
    opened = dates.get("opened_at", none)
    empty_opened = (opened == NAT) & _np(pc.equal(text("opened_at"), ""))
    _flag(check, empty_opened, column("opened_at"), text("opened_at"), lambda v: "required: when the ticket was opened")
    for name in ("resolved_at", "closed_at"):
        if name in dates:
            early = (dates[name] != NAT) & (opened != NAT) & (dates[name] < opened)
            _flag(check, early, column(name), text(name), lambda v, n=name: f"{n.removesuffix('_at')} before the ticket was opened: {v!r}")
    priority = text("priority")
    _flag(check, pc.utf8_length(priority).to_numpy(zero_copy_only=False) > 64, column("priority"), priority, lambda v: "longer than 64 characters")
    sla_text = pc.utf8_lower(text("sla_met"))
    yes = _np(pc.is_in(sla_text, value_set=pa.array(sorted(_TRUE))))
    no = _np(pc.is_in(sla_text, value_set=pa.array(sorted(_FALSE))))
    sla_empty = _np(pc.equal(sla_text, ""))
    _flag(check, ~sla_empty & ~yes & ~no, column("sla_met"), text("sla_met"), lambda v: f"expected true or false, got {v!r}")
    counts: dict[str, np.ndarray] = {}
    for name in ("reassignment_count", "reopen_count"):
        values = text(name)
        numbers, empty = numbers_of(values)
        with np.errstate(invalid="ignore"):
            bad = ~empty & ~(np.isfinite(numbers) & (numbers >= 0) & (numbers <= MAX_COUNT) & (np.mod(numbers, 1) == 0))
        _flag(check, bad, column(name), values, lambda v: f"must be a whole number from 0 to {MAX_COUNT}, got {v!r}")
        counts[name] = np.where(empty | bad, -1, np.nan_to_num(numbers)).astype(np.int64)
    callers = pseudonyms(text("caller"), key) if "caller" in fields else pa.nulls(size, pa.string())
    dims: dict[str, pa.Array] = {}
    for source, target in profile.dimensions.items():
        values = pc.fill_null(batch.table.column(source).combine_chunks(), "") if source in batch.table.column_names else blank
        _flag(check, pc.utf8_length(values).to_numpy(zero_copy_only=False) > MAX_LABEL, source, values, lambda v: f"longer than {MAX_LABEL} characters")
        dims[target] = values
    good = np.flatnonzero(~check.bad)
    take = pa.array(good, type=pa.int64())
    resolved = dates.get("resolved_at", none)[good]
    frame: dict[str, Any] = {
        "ticket_id": ids.take(take),
        "ticket_type": types.take(take),
        "opened_us": opened[good],
        "resolved_us": resolved,
        "closed_us": dates.get("closed_at", none)[good],
        "updated_us": dates.get("updated_at", none)[good],
        "opened_day": _local_days(opened[good], zone),
        "resolved_day": _local_days(resolved, zone),
        "priority": priority.take(take),
        "sla_met": np.where(sla_empty, -1, yes.astype(np.int64))[good],
        "reassignment_count": counts["reassignment_count"][good],
        "reopen_count": counts["reopen_count"][good],
        "caller": callers.take(take),
    }
    kept_dims = {name: values.take(take) for name, values in dims.items()}
    frame["content_hash"] = content_hashes(frame, kept_dims)
    frame.update({f"dim:{name}": values for name, values in kept_dims.items()})
    return batch.records[good], frame, check.problems


class _TicketWriter:
    """Writes checked batches: new tickets inserted in bulk, changed ones replaced,
    unchanged or older versions left alone (see the module docstring)."""

    def __init__(self, connection: Any, source: str, now: dt.datetime) -> None:
        self.connection = connection
        self.source = source
        self.now = now
        self.registry = store.Registry.load(connection)
        self.report = IngestReport()
        self.slots: set[int] = set()
        self.lookup = True

    def start_file(self) -> None:
        """Stored tickets are looked up only if there are any (not in a first import)."""
        self.lookup = has_tickets(self.connection)

    def write(self, frame: dict[str, Any]) -> None:
        size = len(frame["ticket_id"])
        if not size:
            return
        new = np.ones(size, dtype=bool)
        changed = np.zeros(size, dtype=bool)
        row_ids = np.zeros(size, dtype=np.int64)
        if self.lookup:
            known = existing_ticket_frame(self.connection, frame["ticket_id"].to_pylist())
            if len(known):
                at = pd.Index(known["ticket_id"]).get_indexer(frame["ticket_id"].to_pylist())
                found = at >= 0
                stored_hash = known["content_hash"].to_numpy()[at[found]]
                stored_updated = known["updated_us"].to_numpy()[at[found]]
                updated = frame["updated_us"][found]
                older = (stored_updated != NAT) & (updated != NAT) & (updated < stored_updated)
                same = (stored_hash == frame["content_hash"][found]) | older
                new = ~found
                changed[np.flatnonzero(found)[~same]] = True
                row_ids[found] = known["row_id"].to_numpy()[at[found]]
        table = self._stored(frame)
        insert_ticket_table(self.connection, table.filter(pa.array(new)))
        update_ticket_table(self.connection, table.filter(pa.array(changed)), row_ids[changed])
        self.report.inserted += int(new.sum())
        self.report.updated += int(changed.sum())
        self.report.unchanged += int(size - new.sum() - changed.sum())

    def _stored(self, frame: dict[str, Any]) -> pa.Table:
        """The rows as stored, in ``TICKET_COLUMNS`` then slot order: times as naive
        UTC text, dimension values as their codes (each distinct value looked up once)."""
        size = len(frame["ticket_id"])

        def known(values: np.ndarray, kind: pa.DataType) -> pa.Array:
            return pa.array(values, type=kind, mask=values < 0)

        days_opened = frame["opened_day"]
        days_resolved = frame["resolved_day"]
        sla = frame["sla_met"]
        now_text = self.now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        columns: dict[str, pa.Array] = {
            "source": pa.array([self.source] * size, type=pa.string()),
            "ticket_id": frame["ticket_id"],
            "ticket_type": frame["ticket_type"],
            "opened_at": _stored_time(frame["opened_us"]),
            "resolved_at": _stored_time(frame["resolved_us"]),
            "closed_at": _stored_time(frame["closed_us"]),
            "updated_at": _stored_time(frame["updated_us"]),
            "opened_day": pa.array(days_opened, type=pa.int64()),
            "resolved_day": pa.array(days_resolved, type=pa.int64(), mask=days_resolved == NAT),
            "priority": frame["priority"],
            "sla_met": pa.array(sla > 0, type=pa.bool_(), mask=sla < 0),
            "reassignment_count": known(frame["reassignment_count"], pa.int64()),
            "reopen_count": known(frame["reopen_count"], pa.int64()),
            "caller": frame["caller"],
            "content_hash": pa.array(frame["content_hash"], type=pa.int64()),
            "ingested_at": pa.array([now_text] * size, type=pa.string()),
        }
        codes: dict[int, pa.Array] = {}
        for name in [k.removeprefix("dim:") for k in frame if k.startswith("dim:")]:
            values = frame[f"dim:{name}"]
            if not _np(pc.not_equal(values, "")).any():
                continue
            dim_id, slot = self.registry.dimension(self.connection, name, self.now)
            encoded = pc.dictionary_encode(values)
            mapping = [
                None if value == "" else self.registry.value_code(self.connection, dim_id, value, self.now)
                for value in encoded.dictionary.to_pylist()
            ]
            codes[slot] = pc.take(pa.array(mapping, type=pa.int64()), encoded.indices)
            self.slots.add(slot)
        for slot in range(1, store.models.DIMENSION_SLOTS + 1):
            columns[store.models.slot_column(slot)] = codes.get(slot, pa.nulls(size, pa.int64()))
        return pa.table(columns)


def _duplicates(ids: list[str], records: np.ndarray, seen: dict[str, int], column: str) -> list[Problem]:
    """Errors for ticket ids seen before in the file (in an earlier batch or this one);
    ``seen`` learns this batch's ids. Set operations, a Python loop only over duplicates."""
    numbers = records.tolist()
    problems = []
    repeated = seen.keys() & set(ids) if seen else set()
    if len(set(ids)) < len(ids) or repeated:
        first: dict[str, int] = {}
        for ticket_id, record in zip(ids, numbers, strict=True):
            earlier = seen.get(ticket_id, first.get(ticket_id))
            if earlier is None:
                first[ticket_id] = record
            else:
                problems.append(Problem(record, column, f"duplicate ticket id {ticket_id!r} (first in record {earlier}); an event log needs the profile option latest = {{ key = ..., order = [...] }}"))
    seen.update(zip(ids, numbers, strict=True))
    return problems


def _locate(path: Path, problems: list[Problem], limit: int) -> list[RecordError]:
    chosen = sorted(problems, key=lambda p: p.record)[:limit]
    located: dict[int, Any] = {}
    if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
        _, located = locate_records(path, {p.record for p in chosen})
    return [
        RecordError(str(path), located[p.record].line if p.record in located else p.record, p.column, p.message)
        for p in chosen
    ]


def ingest_tickets(
    engine: Engine,
    paths: Iterable[Path],
    settings: Settings,
    profile: Profile | None = None,
    *,
    source: str = "default",
    now: dt.datetime | None = None,
) -> IngestReport:
    """Import ticket exports as one transaction; see the module docstring."""
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
                    writer.start_file()
                    id_column = file_profile.source_of.get("ticket_id", "ticket_id")
                    for batch in read_profiled(path, file_profile, settings.ingest_batch_rows):
                        problems.extend(batch.problems)
                        records, frame, bad = _tickets_of_batch(batch, file_profile, source_zone, zone, settings.pseudonym_key)
                        problems.extend(bad)
                        duplicate = _duplicates(frame["ticket_id"].to_pylist(), records, seen, id_column)
                        problems.extend(duplicate)
                        if not problems and not failed:
                            writer.write(frame)
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


def link_responses_to_tickets(engine: Engine) -> int:
    """After a response import: fill responses' empty dimensions from their tickets."""
    from monitor.store.tickets import ticket_slots

    with engine.begin() as connection:
        return inherit_ticket_dimensions(connection, ticket_slots(connection))


