"""Validation of one survey response record, shared by file imports and the HTTP API.

The rules live here once, so a CSV row, a JSON line and an API payload are accepted
or refused for exactly the same reasons, with the same messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from monitor.models import TicketType
from monitor.readers import CANONICAL_COLUMNS

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
MAX_LOST_MINUTES = 60 * 24 * 365  # a year: anything above is a unit or typing error
MAX_TEXT = {"response_id": 200, "ticket_id": 100, "comment": 20_000}
MAX_LABEL = 200  # dimension values and factor names
FUTURE_TOLERANCE = dt.timedelta(days=1)
_TICKET_TYPES = {member.value for member in TicketType}


@dataclass(frozen=True, slots=True)
class FieldError:
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class CleanRecord:
    """A validated response, normalised so that equal content gives an equal hash."""

    response_id: str
    submitted_at: dt.datetime  # aware, UTC
    local_day: int  # days since 1970-01-01 in the configured time zone
    ticket_id: str
    ticket_type: str
    rating: int
    lost_time_minutes: float | None
    factors: tuple[str, ...]
    comment: str
    dimensions: dict[str, str | None]
    content_hash: int


def to_local_day(moment: dt.datetime, zone: ZoneInfo) -> int:
    return moment.astimezone(zone).date().toordinal() - EPOCH_ORDINAL


def from_local_day(day: int) -> dt.date:
    return dt.date.fromordinal(day + EPOCH_ORDINAL)


class _Invalid(ValueError):
    """Raised by a field parser; caught per field so every bad field is reported."""


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Invalid(f"expected text, got {type(value).__name__}")
    text = value.strip() if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise _Invalid(f"longer than {limit} characters ({len(text)})")
    return text


def _timestamp(value: Any, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("required: an ISO 8601 date-time such as 2025-03-04T09:15:00+01:00")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Invalid(f"not an ISO 8601 date-time: {value.strip()!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)  # fold=0: an ambiguous hour is the first one
    moment = parsed.astimezone(dt.UTC)
    if moment > now + FUTURE_TOLERANCE:
        raise _Invalid(f"{value.strip()!r} is in the future")
    return moment


def _ticket_type(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in _TICKET_TYPES:
        raise _Invalid(f"must be one of {', '.join(sorted(_TICKET_TYPES))}, got {value!r}")
    return str(text)


def _rating(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise _Invalid(f"must be a whole number from 0 to 10, got {value!r}")
    if not 0 <= number <= 10:
        raise _Invalid(f"must be from 0 to 10, got {number}")
    return number


def _lost_time(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _Invalid(f"must be a number of minutes, got {value!r}")
    try:
        minutes = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _Invalid(f"must be a number of minutes, got {value!r}") from None
    if not math.isfinite(minutes):
        raise _Invalid(f"must be a finite number of minutes, got {value!r}")
    if minutes < 0:
        raise _Invalid(f"must not be negative, got {value!r}")
    if minutes > MAX_LOST_MINUTES:
        raise _Invalid(f"{minutes:g} minutes is more than a year: check the unit")
    return minutes


def _factors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.split(";")
    elif isinstance(value, list) and all(isinstance(part, str) for part in value):
        parts = value
    else:
        raise _Invalid("expected ';'-separated text or a list of strings")
    names = [part.strip() for part in parts if part.strip()]
    for name in names:
        if len(name) > MAX_LABEL:
            raise _Invalid(f"factor longer than {MAX_LABEL} characters: {name[:40]!r}...")
    return tuple(dict.fromkeys(names))  # drop repeats, keep order


def _content_hash(fields: tuple[Any, ...]) -> int:
    """A signed 64-bit digest of the normalised content, to tell updates from repeats."""
    digest = hashlib.blake2b(repr(fields).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def validate_record(
    values: Mapping[str, Any],
    dimension_names: tuple[str, ...],
    zone: ZoneInfo,
    now: dt.datetime,
) -> CleanRecord | list[FieldError]:
    """Return the clean record, or every field error found in it."""
    errors: list[FieldError] = []

    def field(column: str, parse: Any, *args: Any) -> Any:
        try:
            return parse(values.get(column), *args)
        except _Invalid as exc:
            errors.append(FieldError(column, str(exc)))
            return None

    response_id = field("response_id", _text, MAX_TEXT["response_id"])
    if response_id == "":
        errors.append(FieldError("response_id", "required: a non-empty identifier"))
    submitted_at = field("submitted_at", _timestamp, zone, now)
    ticket_id = field("ticket_id", _text, MAX_TEXT["ticket_id"])
    ticket_type = field("ticket_type", _ticket_type)
    rating = field("rating", _rating)
    lost_time = field("lost_time_minutes", _lost_time)
    factors = field("factors", _factors)
    comment = field("comment", _text, MAX_TEXT["comment"])
    dimensions = {name: field(name, _text, MAX_LABEL) or None for name in dimension_names}
    if errors:
        return errors
    digest = _content_hash(
        (
            submitted_at.isoformat(),
            ticket_id,
            ticket_type,
            rating,
            lost_time,
            factors,
            comment,
            tuple(sorted((name, value) for name, value in dimensions.items() if value)),
        )
    )
    return CleanRecord(
        response_id=response_id,
        submitted_at=submitted_at,
        local_day=to_local_day(submitted_at, zone),
        ticket_id=ticket_id,
        ticket_type=ticket_type,
        rating=rating,
        lost_time_minutes=lost_time,
        factors=factors,
        comment=comment,
        dimensions=dimensions,
        content_hash=digest,
    )


def dimension_columns(header: tuple[str, ...]) -> tuple[str, ...]:
    """The dimension columns of a header: every column after the canonical ones."""
    return tuple(name for name in header if name not in CANONICAL_COLUMNS)
