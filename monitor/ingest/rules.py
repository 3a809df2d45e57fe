"""Validation of survey responses, a batch of text columns at a time.

One set of rules for file imports and the HTTP API: every field arrives as text (a
CSV cell, or a JSON value rendered as a cell would hold it) and is checked here with
Apache Arrow compute kernels, so a million rows validate in about a second while
every bad field still gets its own message. Where Arrow refuses a whole column
(an unparsable date somewhere in it), the exact per-value path in pandas takes over
for that batch only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from monitor.store.models import TicketType

MAX_LOST_MINUTES = 60 * 24 * 365  # a year: anything above is a unit or typing error
MAX_LENGTH = {"response_id": 200, "ticket_id": 100, "comment": 20_000}
MAX_LABEL = 200  # dimension values and factor names
FUTURE_TOLERANCE = dt.timedelta(days=1)
DEFAULT_EARLIEST = dt.date(2000, 1, 1)  # the ``earliest_date`` setting's default
# Text rules, as RE2 classes for Arrow and as Python sets for the messages. Control
# characters are refused everywhere (PostgreSQL cannot store NUL at all), except
# tab and line ends in comments. In labels (dimension values and names, factor
# names), invisible characters are refused too: zero-width ones and bidirectional
# controls make look-alike values that would become separate segments.
_CONTROLS = r"[\x00-\x1F\x7F-\x9F]"
_COMMENT_CONTROLS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"
_INVISIBLE_RANGES = ((0x00AD, 0x00AD), (0x061C, 0x061C), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x2069), (0xFEFF, 0xFEFF))
_INVISIBLE = "[" + "".join(f"\\x{{{low:04X}}}-\\x{{{high:04X}}}" for low, high in _INVISIBLE_RANGES) + "]"
_LABEL_REFUSED = _CONTROLS[:-1] + _INVISIBLE[1:-1] + "]"
# Dimension names are written ``name=value`` in filters and scopes, and
# ``[name=value,name=value]`` in targets and lists of names are comma-separated.
NAME_SEPARATORS = "=,[]"
TICKET_TYPES = tuple(member.value for member in TicketType)
_US_PER_DAY = 86_400 * 10**6
# A time of day followed by an offset: such values are absolute; others are local.
_HAS_OFFSET = r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_UTC_US = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class FieldError:
    position: int  # row position in the batch
    column: str
    message: str


@dataclass(frozen=True)
class NormalisedFactors:
    names: tuple[str, ...]
    as_json: str
    error: str | None


def _bools(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


class _Checker:
    """Collects field errors for one batch: a boolean mask per rule, a message per hit."""

    def __init__(self, size: int) -> None:
        self.bad = np.zeros(size, dtype=bool)
        self.errors: list[FieldError] = []

    def flag(self, mask: np.ndarray, column: str, values: pa.Array, message: Callable[[str], str]) -> None:
        positions = np.flatnonzero(mask)
        if positions.size == 0:
            return
        self.bad[positions] = True
        for position in positions:
            self.errors.append(FieldError(int(position), column, message(values[int(position)].as_py())))


def _first_bad_character(text: str, *, allow_line_ends: bool = False, label: bool = False) -> str:
    """Describe the first refused character of ``text`` (for messages; the masks decide)."""
    for index, char in enumerate(text, start=1):
        code = ord(char)
        control = code < 0x20 or 0x7F <= code <= 0x9F
        if control and not (allow_line_ends and char in "\t\n\r"):
            return f"contains the control character U+{code:04X} at character {index}"
        if label and any(low <= code <= high for low, high in _INVISIBLE_RANGES):
            name = unicodedata.name(char, "invisible character")
            return f"contains the invisible character U+{code:04X} ({name.lower()}) at character {index}"
    return "contains a character that is not allowed"


def label_problem(text: str) -> str | None:
    """Why a label (dimension value or name, factor name) is refused, or None."""
    if text.isascii() and text.isprintable():
        return None
    problem = _first_bad_character(text, label=True)
    return None if problem.endswith("not allowed") else problem


def name_problem(name: str) -> str | None:
    """Why a dimension name is refused, or None: label rules plus filter syntax."""
    if not name:
        return "a dimension name must not be empty"
    problem = label_problem(name)
    if problem is not None:
        return f"dimension name {name!r} {problem}"
    used = sorted({char for char in name if char in NAME_SEPARATORS})
    if used:
        return (
            f"dimension name {name!r} contains {' '.join(repr(c) for c in used)}: "
            f"names are written name=value in filters and targets, so {' '.join(NAME_SEPARATORS)} cannot be in one"
        )
    return None


def _text(check: _Checker, batch: pa.Table, column: str, limit: int, *, label: bool = False, comment: bool = False) -> pa.Array:
    """Trimmed text, its length and characters checked; labels normalised to NFC."""
    values = pc.utf8_trim_whitespace(batch.column(column))
    ascii_only = pc.all(pc.string_is_ascii(values)).as_py() is not False
    if label and not ascii_only:  # ASCII is NFC already: the usual case costs one scan
        values = pc.utf8_normalize(values, form="NFC")
    # In ASCII text only the non-printable characters are controls: a cheap kernel
    # tells whether the regular expression needs to run at all.
    clean_ascii = ascii_only and pc.all(pc.ascii_is_printable(values)).as_py() is not False
    if not clean_ascii:
        refused = _COMMENT_CONTROLS if comment else _LABEL_REFUSED if label and not ascii_only else _CONTROLS
        bad = _bools(pc.match_substring_regex(values, refused))
        check.flag(bad, column, values, lambda v: _first_bad_character(v, allow_line_ends=comment, label=label))
    too_long = _bools(pc.greater(pc.utf8_length(values), limit))
    check.flag(too_long, column, values, lambda v: f"longer than {limit} characters ({len(v)})")
    return values


def _parse_timestamps(values: pa.Array, zone: ZoneInfo) -> np.ndarray:
    """Microseconds since the epoch (UTC) per value; int64 min where unparsable."""
    absolute = _bools(pc.match_substring_regex(values, _HAS_OFFSET))
    result = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
    for subset_mask, is_absolute in ((absolute, True), (~absolute, False)):
        if not subset_mask.any():
            continue
        subset = values.filter(pa.array(subset_mask))
        try:
            if is_absolute:
                parsed = pc.cast(subset, _UTC_US)
            else:
                # An ambiguous autumn hour is read as its first occurrence; a time in
                # the spring-forward gap as the first valid instant after it.
                parsed = pc.assume_timezone(
                    pc.cast(subset, pa.timestamp("us")), str(zone), ambiguous="earliest", nonexistent="latest"
                )
            micros = parsed.cast(pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            micros = _parse_timestamps_one_by_one(subset, zone, is_absolute)
        result[subset_mask] = micros
    return result


def _parse_timestamps_one_by_one(values: pa.Array, zone: ZoneInfo, is_absolute: bool) -> np.ndarray:
    """The exact path for a batch where some value does not parse."""
    series = pd.Series(values.to_pylist(), dtype=object)
    if is_absolute:
        parsed = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
    else:
        naive = pd.to_datetime(series, format="ISO8601", errors="coerce")
        parsed = naive.dt.tz_localize(
            zone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
        ).dt.tz_convert("UTC")
    micros = parsed.dt.tz_localize(None).astype("datetime64[us]").to_numpy().astype(np.int64)
    return np.where(parsed.isna().to_numpy(), np.iinfo(np.int64).min, micros)


def _timestamps(check: _Checker, raw: pa.Array, zone: ZoneInfo, now: dt.datetime, earliest: dt.date) -> np.ndarray:
    """Instants in UTC microseconds, within [``earliest`` (local midnight), now + a day]."""
    values = pc.utf8_trim_whitespace(raw)
    empty = _bools(pc.equal(values, ""))
    micros = _parse_timestamps(values, zone)
    unparsed = (micros == np.iinfo(np.int64).min) & ~empty
    check.flag(empty, "submitted_at", values, lambda v: "required: an ISO 8601 date-time such as 2025-03-04T09:15:00+01:00")
    check.flag(unparsed, "submitted_at", values, lambda v: f"not an ISO 8601 date-time: {v!r}")
    limit = int((now + FUTURE_TOLERANCE).timestamp() * 10**6)
    check.flag((micros > limit), "submitted_at", values, lambda v: f"{v!r} is more than a day in the future")
    first = int(dt.datetime.combine(earliest, dt.time(), tzinfo=zone).timestamp() * 10**6)
    too_early = (micros < first) & ~unparsed & ~empty
    check.flag(too_early, "submitted_at", values, lambda v: f"{v!r} is before {earliest.isoformat()}, the earliest date accepted (setting earliest_date)")
    return micros


def _numbers(values: pa.Array) -> np.ndarray:
    """Text to float, NaN where it is not a number: Arrow's cast, pandas on failure."""
    try:
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return pd.to_numeric(pd.Series(values.to_pylist(), dtype=object), errors="coerce").to_numpy(dtype=float)


RATING_RULE = "a whole number from 0 to 10"


def _ratings(check: _Checker, raw: pa.Array) -> np.ndarray:
    """The one rating rule, for files and the API alike: a whole number 0-10.

    ``7.0`` counts as the whole number 7, as JSON has one number type (7 and 7.0 are
    the same JSON number) and spreadsheet or pandas exports of an integer column
    with blanks write ``7.0``; ``7.5``, ``7e0``, ``+7`` and booleans are refused.
    """
    values = pc.utf8_trim_whitespace(raw)
    whole = _bools(pc.match_substring_regex(values, r"^\d{1,3}(?:\.0+)?$"))
    numbers = np.where(whole, _numbers(pc.if_else(pa.array(whole), values, "0")), -1)
    check.flag(~whole, "rating", values, lambda v: f"must be {RATING_RULE}, got {v!r}")
    check.flag(whole & (numbers > 10), "rating", values, lambda v: f"must be {RATING_RULE}, got {v}")
    return numbers.astype(np.int16)


def _lost_minutes(check: _Checker, raw: pa.Array) -> np.ndarray:
    values = pc.utf8_trim_whitespace(raw)
    empty = _bools(pc.equal(values, ""))
    numbers = _numbers(pc.if_else(pa.array(empty), "nan", values))
    numeric_text = _bools(pc.match_substring_regex(values, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"))
    check.flag(~empty & ~numeric_text, "lost_time_minutes", values, lambda v: f"must be a number of minutes, got {v!r}")
    numbers = np.where(numeric_text, numbers, np.nan)
    check.flag(numbers < 0, "lost_time_minutes", values, lambda v: f"must not be negative, got {v!r}")
    check.flag(numbers > MAX_LOST_MINUTES, "lost_time_minutes", values, lambda v: f"{float(v):g} minutes is more than a year: check the unit")
    return numbers


def normalise_factors(text: str) -> NormalisedFactors:
    """``;``-separated factors: trimmed, NFC, empty parts and repeats dropped, order kept."""
    text = unicodedata.normalize("NFC", text)
    names = tuple(dict.fromkeys(part.strip() for part in text.split(";") if part.strip()))
    too_long = [name for name in names if len(name) > MAX_LABEL]
    refused = [(name, problem) for name in names if (problem := label_problem(name)) is not None]
    if refused:
        error = f"factor {refused[0][0][:40]!r} {refused[0][1]}"
    elif too_long:
        error = f"factor longer than {MAX_LABEL} characters: {too_long[0][:40]!r}..."
    else:
        error = None
    return NormalisedFactors(names, json.dumps(list(names), ensure_ascii=False), error)


def _factors(check: _Checker, raw: pa.Array, cache: dict[str, NormalisedFactors]) -> list[NormalisedFactors]:
    """Factor strings repeat a lot, so each distinct one is normalised once."""
    for text in pc.unique(raw).to_pylist():
        if text not in cache:
            cache[text] = normalise_factors(text)
    normalised = [cache[text] for text in raw.to_pylist()]
    errors = np.fromiter((item.error is not None for item in normalised), dtype=bool, count=len(normalised))
    check.flag(errors, "factors", raw, lambda v: cache[v].error or "")
    return normalised


def _hash_rows(parts: list[pa.Array]) -> np.ndarray:
    """Signed 64-bit BLAKE2 digests of each row's normalised content.

    A cryptographic hash of a canonical text, not a library's internal hashing, so
    the value stays the same across versions and re-imports stay no-ops.
    """
    joined = pc.binary_join_element_wise(*parts, "\x1f").to_pylist()
    digests = b"".join(hashlib.blake2b(text.encode(), digest_size=8).digest() for text in joined)
    return np.frombuffer(digests, dtype=">i8").astype(np.int64)


@dataclass
class ValidatedBatch:
    """Normalised columns of the valid rows, and the errors of the others.

    ``valid`` marks the batch positions that passed; the columns hold only those.
    """

    valid: np.ndarray
    columns: dict[str, list]
    errors: list[FieldError]


def validate_batch(
    batch: pa.Table,
    dimensions: tuple[str, ...],
    zone: ZoneInfo,
    now: dt.datetime,
    factor_cache: dict[str, NormalisedFactors],
    *,
    earliest: dt.date = DEFAULT_EARLIEST,
) -> ValidatedBatch:
    """Validate a batch of text columns and return the normalised values."""
    check = _Checker(batch.num_rows)
    response_id = _text(check, batch, "response_id", MAX_LENGTH["response_id"])
    check.flag(_bools(pc.equal(response_id, "")), "response_id", response_id, lambda v: "required: a non-empty identifier")
    submitted = _timestamps(check, batch.column("submitted_at"), zone, now, earliest)
    ticket_id = _text(check, batch, "ticket_id", MAX_LENGTH["ticket_id"])
    ticket_type = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column("ticket_type")))
    unknown_type = ~_bools(pc.is_in(ticket_type, value_set=pa.array(TICKET_TYPES)))
    check.flag(unknown_type, "ticket_type", batch.column("ticket_type"), lambda v: f"must be one of {', '.join(TICKET_TYPES)}, got {v!r}")
    rating = _ratings(check, batch.column("rating"))
    lost = _lost_minutes(check, batch.column("lost_time_minutes"))
    factors = _factors(check, batch.column("factors"), factor_cache)
    comment = _text(check, batch, "comment", MAX_LENGTH["comment"], comment=True)
    dims = {name: _text(check, batch, name, MAX_LABEL, label=True) for name in dimensions}

    valid = ~check.bad
    keep = pa.array(valid)
    offsets = _utc_offsets_us(submitted[valid], zone)
    local_day = (submitted[valid] + offsets) // _US_PER_DAY
    factor_json = [item.as_json for item, ok in zip(factors, valid, strict=True) if ok]
    lost_valid = lost[valid]
    kept = {
        "response_id": response_id.filter(keep),
        "ticket_id": ticket_id.filter(keep),
        "ticket_type": ticket_type.filter(keep),
        "comment": comment.filter(keep),
        **{f"dim:{name}": values.filter(keep) for name, values in dims.items()},
    }
    columns: dict[str, list] = {name: array.to_pylist() for name, array in kept.items()}
    columns.update(
        submitted_us=submitted[valid].tolist(),
        local_day=local_day.tolist(),
        rating=rating[valid].tolist(),
        lost_time_minutes=[None if v != v else v for v in lost_valid.tolist()],  # NaN -> None
        factors=[item.names for item, ok in zip(factors, valid, strict=True) if ok],
        factors_json=factor_json,
    )
    if len(factor_json):
        columns["content_hash"] = _hash_rows(
            [
                pa.array(submitted[valid]).cast(pa.string()),
                kept["ticket_id"],
                kept["ticket_type"],
                pa.array(rating[valid]).cast(pa.string()),
                pa.array(lost_valid.astype("U32")),
                pa.array(factor_json, type=pa.string()),
                kept["comment"],
                _dimensions_text(dimensions, kept),
            ]
        ).tolist()
    else:
        columns["content_hash"] = []
    return ValidatedBatch(valid, columns, check.errors)


def _dimensions_text(dimensions: tuple[str, ...], kept: dict[str, pa.Array]) -> pa.Array:
    """``name=value`` pairs sorted by name, empty values left out, as one text.

    Leaving empty values out means adding an empty column to a file does not change
    any response's content.
    """
    text = pa.array([""] * len(kept["response_id"]), type=pa.string())
    for name in sorted(dimensions):
        values = kept[f"dim:{name}"]
        pair = pc.binary_join_element_wise(pa.scalar(f"\x1e{name}"), values, "=")
        text = pc.binary_join_element_wise(text, pc.if_else(pc.equal(values, ""), "", pair), "")
    return text


def _utc_offsets_us(micros: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """The zone's UTC offset at each instant, in microseconds (daylight saving aware)."""
    if not len(micros):
        return micros
    utc = pd.DatetimeIndex(micros.astype("datetime64[us]"), tz="UTC")
    local = utc.tz_convert(zone).tz_localize(None)
    return local.asi8 - utc.tz_localize(None).asi8
