"""Applying an import profile to batches of source rows.

Order of the steps, the same for responses and tickets:

1. read the export (``sources.read_source``) and check that every column the profile
   names is in it;
2. per cell: trim, turn missing-value tokens (``?``, ``N/A``...) into empty, apply
   value maps (on the trimmed source value, before anything else reads it);
3. drop the columns of people the profile drops; pivot question rows into columns,
   or keep the latest row per key of an event log (see ``latest_rows``);
4. per field: dates parsed with the profile's formats in its time zone, ratings
   converted to 0-10, factors re-joined with ``;``; a value that fails is an error
   naming the source column and its line, and its row goes no further.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from monitor.ingest.profiles import DATE_FIELDS, Kind, PersonAction, Profile
from monitor.ingest.readers import FileFormatError, Problem, RecordBatch
from monitor.ingest.rules import _HAS_OFFSET
from monitor.ingest.sources import read_source

NAT = np.iinfo(np.int64).min
LATEST_REDUCE_ROWS = 1_000_000  # event-log records between two reductions to the latest per key
ORDER_SAMPLE = 100  # ordering values tested as numbers before the whole column
PSEUDONYM_CHARS = 16  # 64 bits of HMAC-SHA256: collisions need ~4 billion people


def pseudonym(value: str, key: str) -> str:
    """Keyed hash of a person's identifier: HMAC-SHA256(key, value), first 16 hex digits.

    Keyed, so that nobody without the key can test a guessed name against it
    (a plain hash of "Caller 1234" is one lookup away from the name).
    """
    return hmac.new(key.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def check_columns(path: Path, names: list[str], profile: Profile) -> None:
    """Every column the profile reads must be in the header (pivoted questions excepted)."""
    pivot = profile.pivot
    if pivot is not None:
        needed = {pivot.key, pivot.metric, pivot.value, *([pivot.text] if pivot.text else [])} | set(profile.dimensions)
    else:
        needed = profile.source_columns()
    _require(path, names, needed, profile)


def _require(path: Path, names: list[str], needed: set[str], profile: Profile) -> None:
    absent = sorted(name for name in needed if name not in names)
    if absent:
        raise FileFormatError(
            path, 1, f"header lacks column(s) {', '.join(absent)} that profile {profile.name!r} reads", absent[0]
        )


def clean(table: pa.Table, profile: Profile) -> pa.Table:
    """Trimmed cells, missing tokens emptied, value maps applied, dropped people gone."""
    keep = [name for name in table.column_names if profile.people.get(name) != PersonAction.DROP]
    columns = {}
    missing = pa.array(sorted(profile.missing), type=pa.string())
    for name in keep:
        values = pc.utf8_trim_whitespace(table.column(name).combine_chunks())
        values = pc.if_else(pc.is_in(values, value_set=missing), "", values)
        mapping = profile.value_maps.get(name)
        if mapping:
            text = values.to_pylist()
            values = pa.array([mapping.get(v, v) for v in text], type=pa.string())
        columns[name] = values
    return pa.table(columns) if columns else table.select([])


def read_profiled(path: Path, profile: Profile, batch_rows: int) -> Iterator[RecordBatch]:
    """Cleaned source batches; pivoted or reduced to the latest row per key when asked.

    A pivot needs the whole file: it is read into one table first. The latest-row rule
    reads the file twice instead: first only its key and ordering columns (what
    decides which record of each key is kept), then every column of the kept records,
    batch by batch; so an event log of five million updates never sits in memory whole.
    """
    batches = read_source(path, batch_rows, profile.sheet)
    if profile.pivot is None and profile.latest is None:
        for batch in batches:
            check_columns(path, batch.table.column_names, profile)
            yield RecordBatch(path, batch.records, clean(batch.table, profile), batch.problems)
        return
    if profile.pivot is None:
        yield from _read_latest(path, profile, batch_rows, batches)
        return
    tables, records, problems = [], [], []
    for batch in batches:
        check_columns(path, batch.table.column_names, profile)
        tables.append(clean(batch.table, profile))
        records.append(batch.records)
        problems.extend(batch.problems)
    table = pa.concat_tables(tables) if tables else pa.table({})
    numbers = np.concatenate(records) if records else np.array([], dtype=np.int64)
    numbers, table = pivot_rows(table, numbers, profile)
    for start in range(0, max(table.num_rows, 1), batch_rows):
        yield RecordBatch(path, numbers[start : start + batch_rows], table.slice(start, batch_rows), problems if start == 0 else [])


def _read_latest(path: Path, profile: Profile, batch_rows: int, batches: Iterator[RecordBatch]) -> Iterator[RecordBatch]:
    """``latest_rows`` over a first pass of the deciding columns, then the kept records."""
    latest = profile.latest
    assert latest is not None
    deciding = list(dict.fromkeys([*latest.key, *latest.order]))
    # The winners so far are kept, and every LATEST_REDUCE_ROWS new records they are
    # reduced again with them: memory holds about (tickets + LATEST_REDUCE_ROWS) rows of
    # the deciding columns, not the whole log. Winners precede the new records in the
    # file, so "then by position" still means file order; each record is checked once.
    empty = pa.table({name: pa.array([], pa.string()) for name in deciding})
    tables: list[pa.Table] = [empty]
    records: list[np.ndarray] = [np.array([], dtype=np.int64)]
    problems: list[Problem] = []
    fresh = 0

    def reduce() -> None:
        numbers, table, bad = latest_rows(pa.concat_tables(tables), np.concatenate(records), profile)
        problems.extend(bad)
        tables[:] = [table.combine_chunks()]
        records[:] = [numbers]

    for batch in batches:
        check_columns(path, batch.table.column_names, profile)
        tables.append(clean(batch.table.select(deciding), profile))
        records.append(batch.records)
        problems.extend(batch.problems)
        fresh += batch.table.num_rows
        if fresh >= LATEST_REDUCE_ROWS:
            reduce()
            fresh = 0
    reduce()
    kept = np.sort(records[0])
    # Free the deciding columns before the second pass.
    tables.clear()
    records.clear()
    pending: list[pa.Table] = []
    pending_numbers: list[np.ndarray] = []
    size = 0
    first = True

    def flush() -> RecordBatch:
        return RecordBatch(path, np.concatenate(pending_numbers), pa.concat_tables(pending).combine_chunks(), problems if first else [])

    for batch in read_source(path, batch_rows, profile.sheet):
        at = np.searchsorted(kept, batch.records)
        take = (at < len(kept)) & (kept[np.minimum(at, len(kept) - 1)] == batch.records) if len(kept) else np.zeros(len(batch.records), dtype=bool)
        if not take.any():
            continue
        pending.append(clean(batch.table.filter(pa.array(take)), profile))
        pending_numbers.append(batch.records[take])
        size += int(take.sum())
        if size >= batch_rows:
            yield flush()
            first, pending, pending_numbers, size = False, [], [], 0
    if pending or first:
        if not pending:
            yield RecordBatch(path, np.array([], dtype=np.int64), pa.table({}), problems)
            return
        yield flush()


def pivot_rows(table: pa.Table, numbers: np.ndarray, profile: Profile) -> tuple[np.ndarray, pa.Table]:
    """One row per pivot key: a column per metric, other columns from the key's first row."""
    pivot = profile.pivot
    assert pivot is not None
    frame = table.to_pandas()
    frame["__record"] = numbers
    if pivot.text is not None:
        cell = frame[pivot.text].where(frame[pivot.text] != "", frame[pivot.value])
    else:
        cell = frame[pivot.value]
    frame["__cell"] = cell
    answered = frame[frame["__cell"] != ""]
    separator = profile.factor_separator
    wide = (
        answered.groupby([pivot.key, pivot.metric], sort=False)["__cell"]
        .agg(lambda values: separator.join(dict.fromkeys(values)))
        .unstack(pivot.metric, fill_value="")
    )
    others = [c for c in table.column_names if c not in {pivot.metric, pivot.value, pivot.text}]
    first = frame.groupby(pivot.key, sort=False)[[*(c for c in others if c != pivot.key), "__record"]].first()
    merged = first.join(wide, how="left").fillna("").reset_index()
    merged = merged.sort_values("__record", kind="stable")
    result_numbers = merged.pop("__record").to_numpy(dtype=np.int64)
    names = [c for c in merged.columns]
    result = pa.table({str(name): pa.array(merged[name].astype(str).tolist(), type=pa.string()) for name in names})
    return result_numbers, result


def numbers_of(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, empty) of a text column, NaN where not a number: Arrow's cast when
    every value is a number (the usual case, no Python objects), pandas otherwise."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    is_empty = pc.equal(values, "")
    empty = np.asarray(is_empty.to_numpy(zero_copy_only=False), dtype=bool)
    try:
        numbers = pc.cast(pc.if_else(is_empty, None, values), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Some value is not a number (a date ordering column, a typo): each distinct
        # value once through pandas, not a Python string per row.
        encoded = pc.dictionary_encode(values)
        unique = pd.to_numeric(pd.Series(encoded.dictionary.to_pylist(), dtype=object).replace("", np.nan), errors="coerce").to_numpy(dtype=float)
        numbers = unique[encoded.indices.to_numpy(zero_copy_only=False)] if len(unique) else np.full(len(values), np.nan)
    return np.asarray(numbers, dtype=float), empty


def _order_values(values: pa.Array, profile: Profile, zone: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """Sortable numbers for an ordering column: numbers as they are, else dates.

    Empty sorts first; the mask marks values that are neither. A column whose first
    values are not all numbers is not all numbers: it goes straight to the dates,
    without converting every distinct date through pandas to find that out.
    """
    head, head_empty = numbers_of(values.slice(0, ORDER_SAMPLE))
    if np.isfinite(head[~head_empty]).all():
        numeric, empty = numbers_of(values)
        if np.isfinite(numeric[~empty]).all():
            return np.where(empty, -np.inf, numeric), np.zeros(len(values), dtype=bool)
    empty = np.asarray(pc.equal(values, "").to_numpy(zero_copy_only=False), dtype=bool)
    micros, bad = parse_dates(values, profile, zone)
    return np.where(empty, -np.inf, micros.astype(float)), bad


def latest_rows(table: pa.Table, numbers: np.ndarray, profile: Profile, zone: ZoneInfo | None = None) -> tuple[np.ndarray, pa.Table, list[Problem]]:
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
    # Keys as dictionary codes and a lexicographic sort: no Python object per row.
    codes = []
    for column in latest.key:
        values = table.column(column).combine_chunks()
        empty = np.asarray(pc.equal(values, "").to_numpy(zero_copy_only=False), dtype=bool)
        problems.extend(Problem(int(numbers[p]), column, "required: the key of the latest-row rule is empty") for p in np.flatnonzero(empty))
        bad |= empty
        codes.append(pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False))
    orders = []
    for column in latest.order:
        values, unparsed = _order_values(table.column(column).combine_chunks(), profile, zone)
        orders.append(values)
        problems.extend(
            Problem(int(numbers[p]), column, f"ordering value is neither a number nor a date in the profile's format(s): {table.column(column)[int(p)].as_py()!r}")
            for p in np.flatnonzero(unparsed)
        )
        bad |= unparsed
    good = np.flatnonzero(~bad)
    # np.lexsort sorts by its last key first: keys, then ordering columns, then position.
    order = good[np.lexsort([good, *(o[good] for o in reversed(orders)), *(c[good] for c in reversed(codes))])]
    if len(order):
        same_key = np.ones(len(order) - 1, dtype=bool)
        for c in codes:
            same_key &= c[order[1:]] == c[order[:-1]]
        kept = np.sort(order[np.append(~same_key, True)])
    else:
        kept = order
    return numbers[kept], table.take(pa.array(kept, type=pa.int64())), problems


def parse_dates(values: pa.Array, profile: Profile, zone: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (UTC) per value, and the mask of unparsable ones.

    Each of the profile's ``date_formats`` is tried in turn (strptime codes; day
    and month need not be zero-padded); what none of them reads is tried as ISO 8601,
    then, with ``day_first``, as a free-form day-first date. Values with an offset
    are absolute; others are in the profile's time zone (else the configured one).
    Empty values give NAT and are not errors here. Each distinct value is parsed once
    (exports repeat times a lot: an event log's updates share their minutes).
    """
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if len(values) > 1_000:
        encoded = pc.dictionary_encode(values)
        if len(encoded.dictionary) < 0.8 * len(values):
            micros, unparsed = parse_dates(encoded.dictionary, profile, zone)
            positions = encoded.indices.to_numpy(zero_copy_only=False)
            return micros[positions], unparsed[positions]
    result = np.full(len(values), NAT, dtype=np.int64)
    todo = np.asarray(pc.fill_null(pc.not_equal(values, ""), True).to_numpy(zero_copy_only=False), dtype=bool)
    # Python strings only for what Arrow's kernels leave to pandas (usually nothing).
    texts: list[str] | None = None

    def text(positions: np.ndarray) -> pd.Series:
        nonlocal texts
        texts = values.to_pylist() if texts is None else texts
        return pd.Series([texts[p] for p in positions.tolist()], dtype=object)

    for fmt in profile.date_formats:
        if not todo.any():
            break
        positions = np.flatnonzero(todo)
        naive, ok = strptime_digits(values.take(pa.array(positions)), fmt)
        if ok.any():
            result[positions[ok]] = _localise(naive[ok], zone)
            todo[positions[ok]] = False
        rest = positions[~ok]
        if len(rest):
            parsed = pd.to_datetime(text(rest), format=fmt, errors="coerce")
            ok = parsed.notna().to_numpy()
            if ok.any():
                result[rest[ok]] = _localise(parsed[ok].to_numpy(), zone)
                todo[rest[ok]] = False
    if todo.any():
        positions = np.flatnonzero(todo)
        subset = text(positions)
        absolute = _has_offset(values.take(pa.array(positions)), subset)
        if absolute.any():
            parsed = pd.to_datetime(subset[absolute], format="ISO8601", utc=True, errors="coerce")
            ok = parsed.notna().to_numpy()
            result[positions[absolute][ok]] = parsed[ok].dt.tz_localize(None).astype("datetime64[us]").to_numpy().astype(np.int64)
            todo[positions[absolute][ok]] = False
        naive = ~absolute
        if naive.any():
            parsed = pd.to_datetime(subset[naive], format="ISO8601", errors="coerce")
            ok = parsed.notna().to_numpy()
            if profile.day_first and not ok.all():
                rest = subset[naive][~ok]
                extra = pd.to_datetime(rest, format="mixed", dayfirst=True, errors="coerce")
                parsed = parsed.copy()
                parsed[~ok] = extra
                ok = parsed.notna().to_numpy()
            if ok.any():
                result[positions[naive][ok]] = _localise(parsed[ok].to_numpy(), zone)
                todo[positions[naive][ok]] = False
    return result, todo


def _has_offset(values: pa.Array, text: pd.Series) -> np.ndarray:
    """Whether each value ends in a time with an offset (``_HAS_OFFSET``): RE2 for ASCII
    text, Python's ``re`` for the rest (their ``\\d`` and ``\\s`` differ beyond ASCII)."""
    ascii_text = np.asarray(pc.string_is_ascii(values).to_numpy(zero_copy_only=False), dtype=bool)
    found = np.asarray(pc.match_substring_regex(values, _HAS_OFFSET).to_numpy(zero_copy_only=False), dtype=bool)
    if not ascii_text.all():
        others = np.flatnonzero(~ascii_text)
        found[others] = text.iloc[others].str.contains(_HAS_OFFSET, regex=True).to_numpy(dtype=bool)
    return found


# strptime directives read by ``strptime_digits``: ASCII digits of a width pandas'
# format regex also accepts, range-checked below. Anything else goes to pandas.
_DIGIT_DIRECTIVES = {"Y": r"\d{4}", "m": r"\d{1,2}", "d": r"\d{1,2}", "H": r"\d{1,2}", "M": r"\d{2}", "S": r"\d{2}"}
_DIRECTIVE = re.compile(r"%(.)")


def _digit_pattern(fmt: str) -> tuple[str, list[str]] | None:
    """An anchored RE2 pattern for ``fmt`` and its directives in order, or None when
    ``fmt`` has another directive, repeats one, or has two in a row or a digit in its
    text (where the split between the numbers would be a guess)."""
    parts = _DIRECTIVE.split(fmt)
    literals, codes = parts[0::2], parts[1::2]
    if any(code not in _DIGIT_DIRECTIVES for code in codes) or len(set(codes)) < len(codes):
        return None
    if any(not literal for literal in literals[1:-1]) or any(c.isdigit() for c in "".join(literals)):
        return None
    pattern = "".join(re.escape(literal) + f"(?P<{code}>{_DIGIT_DIRECTIVES[code]})" for literal, code in zip(literals, codes, strict=False))
    return "^" + pattern + re.escape(literals[-1]) + "$", codes


def strptime_digits(values: pa.Array, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Naive ``datetime64[us]`` of the values that ``fmt`` reads as plain digits, and
    that mask; what it leaves (other forms, impossible dates) is for pandas, which
    gives the same value for everything read here, Arrow kernels instead of a
    Python string per value."""
    size = len(values)
    naive = np.zeros(size, dtype="datetime64[us]")
    spec = _digit_pattern(fmt)
    if spec is None or not size:
        return naive, np.zeros(size, dtype=bool)
    pattern, codes = spec
    parts = pc.extract_regex(values, pattern)
    ok = np.asarray(pc.is_valid(parts).to_numpy(zero_copy_only=False), dtype=bool)
    if not ok.any():
        return naive, ok
    parts = parts.filter(pa.array(ok))
    field = {code: pc.cast(parts.field(code), pa.int64()).to_numpy() for code in codes}
    count = len(parts)
    number = {code: field.get(code, np.full(count, default, dtype=np.int64))
              for code, default in (("Y", 1900), ("m", 1), ("d", 1), ("H", 0), ("M", 0), ("S", 0))}
    month = (number["Y"] - 1970) * 12 + number["m"] - 1
    first = month.astype("datetime64[M]").astype("datetime64[D]")
    days_in_month = ((month + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
    valid = (
        (number["Y"] >= 1000) & (number["m"] >= 1) & (number["m"] <= 12) & (number["d"] >= 1) & (number["d"] <= days_in_month)
        & (number["H"] <= 23) & (number["M"] <= 59) & (number["S"] <= 59)
    )
    seconds = ((number["d"] - 1) * 24 + number["H"]) * 3600 + number["M"] * 60 + number["S"]
    at = np.flatnonzero(ok)
    naive[at] = first.astype("datetime64[us]") + (seconds * 10**6).astype("timedelta64[us]")
    ok[at[~valid]] = False
    return naive, ok


def _localise(naive: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Local wall times to UTC microseconds: an ambiguous autumn hour is its first
    occurrence, a spring-forward gap moves to the first valid instant (as ``rules``)."""
    index = pd.DatetimeIndex(naive).tz_localize(
        zone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
    )
    return index.tz_convert("UTC").tz_localize(None).astype("datetime64[us]").asi8


def iso_utc(micros: np.ndarray) -> list[str]:
    """UTC instants as ISO 8601 text with a Z (absolute for the canonical rules); empty for NAT."""
    texts = np.datetime_as_string(np.where(micros == NAT, 0, micros).astype("datetime64[us]"), unit="us")
    return ["" if m == NAT else t + "Z" for m, t in zip(micros.tolist(), texts.tolist(), strict=True)]


@dataclass
class Checked:
    """A batch after the profile's field conversions: good rows and the errors of others."""

    records: np.ndarray
    columns: dict[str, pa.Array]  # field or ``dim:NAME`` -> text values of the good rows
    problems: list[Problem]


class FieldCheck:
    """Marks rows bad with a message naming the source column, as validation does."""

    def __init__(self, records: np.ndarray) -> None:
        self.records = records
        self.bad = np.zeros(len(records), dtype=bool)
        self.problems: list[Problem] = []

    def flag(self, mask: np.ndarray, column: str, values: list[str], message) -> None:  # type: ignore[no-untyped-def]
        for position in np.flatnonzero(mask):
            self.bad[position] = True
            self.problems.append(Problem(int(self.records[position]), column, message(values[position])))


def field_values(batch: RecordBatch, profile: Profile) -> dict[str, pa.Array]:
    """Field -> text values from the mapped columns and the constants."""
    size = batch.table.num_rows
    out: dict[str, pa.Array] = {}
    for source, target in profile.columns.items():
        if source in batch.table.column_names:
            out[target] = batch.table.column(source).combine_chunks()
        else:  # a pivoted question nobody answered in this file
            out[target] = pa.array([""] * size, type=pa.string())
    for target, value in profile.constants.items():
        out[target] = pa.array([value] * size, type=pa.string())
    return out


def convert_dates(check: FieldCheck, fields: dict[str, pa.Array], profile: Profile, zone: ZoneInfo) -> dict[str, np.ndarray]:
    """Parse every mapped date field; an unparsable one is an error on its source column."""
    source_of = profile.source_of
    shown = " or ".join(profile.date_formats) if profile.date_formats else "ISO 8601"
    parsed: dict[str, np.ndarray] = {}
    for name in DATE_FIELDS:
        if name not in fields:
            continue
        values = fields[name]
        micros, bad = parse_dates(values, profile, zone)
        text = values.to_pylist() if bad.any() else []
        check.flag(bad, source_of.get(name, name), text, lambda v, shown=shown: f"not a date in the format {shown}: {v!r}")
        parsed[name] = micros
    return parsed


def convert_rating(check: FieldCheck, values: pa.Array, profile: Profile) -> pa.Array:
    """Source ratings to 0-10 text by the profile's scale (see ``RatingScale``)."""
    scale = profile.rating
    if scale is None:
        return values
    column = profile.source_of.get("rating", "rating")
    text = values.to_pylist()
    if scale.kind == "yes-no":
        lowered = [v.lower() for v in text]
        out = ["10" if v in scale.yes else "0" if v in scale.no else "" for v in lowered]
        unknown = np.array([v not in scale.yes and v not in scale.no for v in lowered], dtype=bool)
        check.flag(unknown, column, text, lambda v: f"expected yes ({', '.join(scale.yes)}) or no ({', '.join(scale.no)}), got {v!r}")
        return pa.array(out, type=pa.string())
    numbers = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=float)
    empty = np.array([v == "" for v in text], dtype=bool)
    not_number = ~np.isfinite(numbers) & ~empty
    out_of_range = np.isfinite(numbers) & ((numbers < scale.low) | (numbers > scale.high))
    check.flag(empty, column, text, lambda v: "required: a rating")
    check.flag(not_number, column, text, lambda v: f"must be a number from {scale.low:g} to {scale.high:g}, got {v!r}")
    check.flag(out_of_range, column, text, lambda v: f"must be from {scale.low:g} to {scale.high:g} on this profile's scale, got {v}")
    converted = np.floor((np.nan_to_num(numbers) - scale.low) * 10.0 / (scale.high - scale.low) + 0.5)
    return pa.array([str(int(c)) if ok else v for c, ok, v in zip(converted, np.isfinite(numbers) & ~out_of_range, text, strict=True)], type=pa.string())


# Stand-ins for values the profile already refused, so that the canonical rules still
# check the row's other columns (every error of a row is reported at once) without
# repeating the profile's error in their own words.
_PLACEHOLDERS = {"submitted_at": "2000-01-03T00:00:00Z", "rating": "0"}


def to_responses(batch: RecordBatch, profile: Profile, zone: ZoneInfo) -> tuple[pa.Table, np.ndarray, list[Problem], tuple[str, ...]]:
    """A cleaned source batch as canonical text columns, ready for ``rules.validate_batch``.

    Returns the canonical table of every row, the mask of rows the profile refused
    (their refused fields hold stand-ins), the profile's errors (source columns
    named) and the dimension names.
    """
    assert profile.kind is Kind.RESPONSES
    check = FieldCheck(batch.records)
    fields = field_values(batch, profile)
    size = batch.table.num_rows
    dates = convert_dates(check, fields, profile, zone)
    date_bad = check.bad.copy()
    if "submitted_at" in dates:
        text = iso_utc(dates["submitted_at"])
        fields["submitted_at"] = pa.array([_PLACEHOLDERS["submitted_at"] if b else t for t, b in zip(text, date_bad, strict=True)], type=pa.string())
    if "rating" in fields:
        before = check.bad.copy()
        converted = convert_rating(check, fields["rating"], profile)
        refused = check.bad & ~before
        fields["rating"] = pa.array([_PLACEHOLDERS["rating"] if b else t for t, b in zip(converted.to_pylist(), refused, strict=True)], type=pa.string())
    if "factors" in fields and profile.factor_separator != ";":
        text = fields["factors"].to_pylist()
        fields["factors"] = pa.array([";".join(v.split(profile.factor_separator)) for v in text], type=pa.string())
    if "ticket_type" not in fields:
        fields["ticket_type"] = pa.array(["other"] * size, type=pa.string())
    columns = {name: fields.get(name, pa.array([""] * size, type=pa.string())) for name in (
        "response_id", "submitted_at", "ticket_id", "ticket_type", "rating", "lost_time_minutes", "factors", "comment"
    )}
    dimensions = tuple(profile.dimensions.values())
    for source, target in profile.dimensions.items():
        columns[target] = batch.table.column(source).combine_chunks() if source in batch.table.column_names else pa.array([""] * size, type=pa.string())
    return pa.table(columns), check.bad, check.problems, dimensions
