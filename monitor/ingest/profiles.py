"""Import profiles: how to read a source system's export as survey responses or tickets.

A profile is a TOML table, either ``[profiles.NAME]`` in the configuration file, a
file of its own (``--profile path.toml``, its keys at the top level), or one of the
built-ins shipped in ``builtin_profiles/``. Every option is checked here, once, and a
bad one stops the import with a message that names the profile key
(``profiles.snow.rating.scale: ...``) before any row is read.

The profile only turns source columns into the canonical fields; the canonical rules
(``monitor.ingest.rules``) still validate the result, and their errors are reported
against the *source* column the value came from.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.store.models import TicketType


class ProfileError(ValueError):
    """A profile option is missing, unknown or invalid; the message names the key."""


class Kind(StrEnum):
    RESPONSES = "responses"
    TICKETS = "tickets"


RESPONSE_FIELDS = (
    "response_id",
    "submitted_at",
    "ticket_id",
    "ticket_type",
    "rating",
    "lost_time_minutes",
    "factors",
    "comment",
)
TICKET_FIELDS = (
    "ticket_id",
    "ticket_type",
    "opened_at",
    "resolved_at",
    "closed_at",
    "updated_at",
    "priority",
    "sla_met",
    "reassignment_count",
    "reopen_count",
    "caller",
)
FIELDS = {Kind.RESPONSES: RESPONSE_FIELDS, Kind.TICKETS: TICKET_FIELDS}
REQUIRED = {Kind.RESPONSES: ("response_id", "submitted_at", "rating"), Kind.TICKETS: ("ticket_id", "opened_at")}
DATE_FIELDS = frozenset({"submitted_at", "opened_at", "resolved_at", "closed_at", "updated_at"})
# Fields that hold a person's identifier: only ever stored as a keyed hash.
PERSON_FIELDS = frozenset({"caller"})
# Source columns that name a person in the systems we know; a profile must say what
# to do with them (drop or hash) before they can be kept in any form.
PERSON_COLUMNS = frozenset(
    {
        "caller_id",
        "caller",
        "opened_by",
        "resolved_by",
        "closed_by",
        "assigned_to",
        "requested_for",
        "requested_by",
        "user",
        "user_name",
        "email",
        "respondent",
        "sys_created_by",
        "sys_updated_by",
    }
)
DEFAULT_MISSING = ("",)
MAX_DATE_FORMATS = 10
_KNOWN_KEYS = frozenset(
    {
        "kind",
        "description",
        "columns",
        "dimensions",
        "date_formats",
        "day_first",
        "timezone",
        "missing",
        "latest",
        "constants",
        "value_maps",
        "rating",
        "factor_separator",
        "people",
        "sheet",
        "pivot",
    }
)
_YES = ("yes", "y", "true", "1")
_NO = ("no", "n", "false", "0")
_SCALE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


class PersonAction(StrEnum):
    DROP = "drop"  # never read past the reader
    HASH = "hash"  # HMAC-SHA256 with the settings' pseudonym_key, 16 hex characters kept


@dataclass(frozen=True)
class RatingScale:
    """Conversion of a source rating to the 0-10 scale, with its exact rule.

    ``low-high`` (for example ``1-5`` stars, ``0-100``, ``1-7``): a number x in
    [low, high] becomes ``floor((x - low) * 10 / (high - low) + 0.5)``, that is, the
    linear map of low to 0 and high to 10, rounded half up. For 1-5 stars:
    1 -> 0, 2 -> 3 (2.5 rounded up), 3 -> 5, 4 -> 8 (7.5 up), 5 -> 10, so only 5
    stars is a promoter and 1-3 stars are detractors. For 0-100: 95 -> 10, 85 -> 9,
    64 -> 6. ``yes-no``: a yes (yes, y, true, 1, or the profile's ``yes`` list)
    is 10, a no is 0. ``0-10`` keeps whole numbers as they are.
    """

    kind: str  # "linear" or "yes-no"
    low: float = 0.0
    high: float = 10.0
    yes: tuple[str, ...] = _YES
    no: tuple[str, ...] = _NO

    @property
    def rule(self) -> str:
        if self.kind == "yes-no":
            return f"yes ({', '.join(self.yes)}) -> 10, no ({', '.join(self.no)}) -> 0"
        return f"floor((x - {self.low:g}) * 10 / ({self.high:g} - {self.low:g}) + 0.5)"


@dataclass(frozen=True)
class Latest:
    """Keep one row per key: the last by the ordering columns (then by file order)."""

    key: tuple[str, ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class Pivot:
    """Rows of (key, metric, value) become one row per key with a column per metric.

    ServiceNow's survey results hold one row per question answered; the question's
    name (the ``metric`` column) becomes a column that ``columns`` maps like any other.
    A cell is the ``text`` column's value when it is not missing, else ``value``'s;
    several rows for one key and question (multiple choice) are joined with the
    factor separator. The other columns are taken from the key's first row.
    """

    key: str
    metric: str
    value: str
    text: str | None


@dataclass(frozen=True)
class Profile:
    name: str
    kind: Kind
    columns: dict[str, str]  # source column -> field
    dimensions: dict[str, str]  # source column -> dimension name
    date_formats: tuple[str, ...] = ()
    day_first: bool = False
    timezone: str | None = None
    missing: frozenset[str] = frozenset(DEFAULT_MISSING)
    latest: Latest | None = None
    constants: dict[str, str] = field(default_factory=dict)  # field -> value
    value_maps: dict[str, dict[str, str]] = field(default_factory=dict)  # source column -> {from: to}
    rating: RatingScale | None = None
    factor_separator: str = ";"
    people: dict[str, PersonAction] = field(default_factory=dict)  # source column -> action
    sheet: str | None = None
    pivot: Pivot | None = None
    description: str = ""

    @property
    def source_of(self) -> dict[str, str]:
        """Field (or ``dim:NAME``) -> the source column it comes from, for error messages."""
        names = {target: source for source, target in self.columns.items()}
        names.update({f"dim:{target}": source for source, target in self.dimensions.items()})
        names.update({target: source for source, target in self.dimensions.items() if target not in names})
        names.update({name: f"constants.{name}" for name in self.constants})
        return names

    def source_columns(self) -> set[str]:
        """Every source column the profile reads."""
        used = set(self.columns) | set(self.dimensions)
        if self.latest is not None:
            used |= set(self.latest.key) | set(self.latest.order)
        return used


def _key(profile: str, *parts: str) -> str:
    return ".".join(["profiles", profile, *parts]) if profile else ".".join(parts)


def _need(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ProfileError(f"{where}: {message}")


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    _need(
        isinstance(value, list) and all(isinstance(item, str) for item in value),
        where,
        f"expected a string or a list of strings, got {value!r}",
    )
    return tuple(value)


def _string_table(value: Any, where: str) -> dict[str, str]:
    _need(
        isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
        where,
        f"expected a table of strings, got {value!r}",
    )
    return {str(k): v for k, v in value.items()}


def _check_date_format(text: str, where: str) -> None:
    _need(bool(text.strip()), where, "a date format must not be empty")
    _need("%" in text, where, f"{text!r} has no % directive: use strftime codes such as %d/%m/%Y %H:%M")
    bad = re.findall(r"%(.)", text.replace("%%", ""))
    allowed = set("dmyYHIMSfpbBaAzjU")
    unknown = [code for code in bad if code not in allowed]
    _need(not unknown, where, f"{text!r} uses unsupported directive(s) {', '.join('%' + c for c in unknown)}")


def _rating(value: Any, where: str) -> RatingScale:
    if isinstance(value, str):
        value = {"scale": value}
    _need(isinstance(value, dict), where, f"expected a table such as {{ scale = \"1-5\" }}, got {value!r}")
    unknown = set(value) - {"scale", "yes", "no"}
    _need(not unknown, f"{where}.{sorted(unknown)[0]}" if unknown else where, "unknown option (known: scale, yes, no)")
    scale = value.get("scale")
    _need(isinstance(scale, str), f"{where}.scale", f"expected a scale such as \"1-5\", \"0-100\" or \"yes-no\", got {scale!r}")
    if scale.strip().lower() in {"yes-no", "yes/no", "boolean"}:
        yes = tuple(v.lower() for v in _string_list(value.get("yes", list(_YES)), f"{where}.yes"))
        no = tuple(v.lower() for v in _string_list(value.get("no", list(_NO)), f"{where}.no"))
        _need(not set(yes) & set(no), f"{where}.no", f"values both yes and no: {sorted(set(yes) & set(no))}")
        return RatingScale("yes-no", 0, 10, yes, no)
    _need(not ({"yes", "no"} & set(value)), f"{where}.yes", "yes/no lists only apply to scale = \"yes-no\"")
    match = _SCALE.match(scale)
    _need(match is not None, f"{where}.scale", f"expected LOW-HIGH such as \"1-5\" or \"0-100\", or \"yes-no\", got {scale!r}")
    assert match is not None
    low, high = int(match.group(1)), int(match.group(2))
    _need(high > low, f"{where}.scale", f"the high end must be above the low end, got {scale!r}")
    return RatingScale("linear", float(low), float(high))


def _latest(value: Any, where: str) -> Latest:
    _need(isinstance(value, dict), where, f"expected a table such as {{ key = \"number\", order = [\"sys_updated_at\"] }}, got {value!r}")
    unknown = set(value) - {"key", "order"}
    _need(not unknown, f"{where}.{sorted(unknown)[0]}" if unknown else where, "unknown option (known: key, order)")
    _need("key" in value, f"{where}.key", "required: the column(s) that identify a record, such as number")
    key = _string_list(value["key"], f"{where}.key")
    order = _string_list(value.get("order", []), f"{where}.order")
    _need(bool(key), f"{where}.key", "must name at least one column")
    return Latest(key, order)


def _pivot(value: Any, where: str) -> Pivot:
    _need(isinstance(value, dict), where, "expected a table with key, metric, value and optionally text")
    unknown = set(value) - {"key", "metric", "value", "text"}
    _need(not unknown, f"{where}.{sorted(unknown)[0]}" if unknown else where, "unknown option (known: key, metric, value, text)")
    for name in ("key", "metric", "value"):
        _need(isinstance(value.get(name), str) and value[name], f"{where}.{name}", "required: a source column name")
    text = value.get("text")
    _need(text is None or (isinstance(text, str) and text), f"{where}.text", "expected a source column name")
    return Pivot(value["key"], value["metric"], value["value"], text)


def parse_profile(name: str, raw: Mapping[str, Any], *, allowed_dimensions: tuple[str, ...] = ()) -> Profile:
    """Validate a profile table; ``ProfileError`` names the first bad key.

    ``name`` prefixes every key in messages (``profiles.NAME.``); an empty name is a
    profile file of its own, whose keys are named as they are written.
    """
    def key(*parts: str) -> str:
        return _key(name, *parts)

    _need(isinstance(raw, Mapping), key(), "expected a table")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    _need(not unknown, key(unknown[0]) if unknown else key(), f"unknown profile option (known: {', '.join(sorted(_KNOWN_KEYS))})")

    kind_text = raw.get("kind", "responses")
    _need(kind_text in tuple(Kind), key("kind"), f"must be one of {', '.join(Kind)}, got {kind_text!r}")
    kind = Kind(kind_text)
    fields = FIELDS[kind]

    columns = _string_table(raw.get("columns", {}), key("columns"))
    for source, target in columns.items():
        _need(target in fields, key("columns", source), f"unknown {kind} field {target!r} (known: {', '.join(fields)})")
        _need(bool(source.strip()), key("columns"), "a source column name must not be empty")
    targets = list(columns.values())
    duplicated = sorted({t for t in targets if targets.count(t) > 1})
    if duplicated:
        raise ProfileError(f"{key('columns')}: field {duplicated[0]!r} is mapped from more than one column")

    dims_raw = raw.get("dimensions", [])
    if isinstance(dims_raw, list):
        dimensions = {source: source for source in _string_list(dims_raw, key("dimensions"))}
    else:
        dimensions = _string_table(dims_raw, key("dimensions"))
    for source, target in dimensions.items():
        _need(bool(target.strip()) and len(target) <= 100, key("dimensions", source), f"a dimension name must have 1-100 characters, got {target!r}")
        _need(source not in columns, key("dimensions", source), f"column {source!r} is already mapped to the field {columns.get(source)!r}")
        _need(target not in fields, key("dimensions", source), f"{target!r} is a field name, not a dimension")
        if allowed_dimensions:
            _need(target in allowed_dimensions, key("dimensions", source), f"{target!r} is not a configured dimension ({', '.join(allowed_dimensions)})")
    dim_targets = list(dimensions.values())
    _need(len(set(dim_targets)) == len(dim_targets), key("dimensions"), "two columns map to the same dimension")

    date_formats = _string_list(raw.get("date_formats", []), key("date_formats"))
    _need(len(date_formats) <= MAX_DATE_FORMATS, key("date_formats"), f"at most {MAX_DATE_FORMATS} formats")
    for index, text in enumerate(date_formats):
        _check_date_format(text, key("date_formats") + f"[{index}]")
    day_first = raw.get("day_first", False)
    _need(isinstance(day_first, bool), key("day_first"), f"expected true or false, got {day_first!r}")

    timezone = raw.get("timezone")
    if timezone is not None:
        _need(isinstance(timezone, str), key("timezone"), f"expected an IANA time zone name, got {timezone!r}")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ProfileError(f"{key('timezone')}: unknown IANA time zone {timezone!r}") from None

    missing = frozenset(v.strip() for v in _string_list(raw.get("missing", list(DEFAULT_MISSING)), key("missing"))) | {""}

    latest = _latest(raw["latest"], key("latest")) if "latest" in raw else None

    constants = _string_table(raw.get("constants", {}), key("constants"))
    for target in constants:
        _need(target in fields, key("constants", target), f"unknown {kind} field (known: {', '.join(fields)})")
        if target in targets:
            source = next(s for s, t in columns.items() if t == target)
            raise ProfileError(f"{key('constants', target)}: field is also mapped from column {source!r}")
        _need(target not in DATE_FIELDS and target not in PERSON_FIELDS, key("constants", target), "a date or a person cannot be a constant")
    if "ticket_type" in constants:
        _need(constants["ticket_type"].lower() in tuple(TicketType), key("constants", "ticket_type"), f"must be one of {', '.join(TicketType)}")

    maps_raw = raw.get("value_maps", {})
    _need(isinstance(maps_raw, dict), key("value_maps"), "expected a table of tables: [value_maps.COLUMN] FROM = \"TO\"")
    value_maps = {source: _string_table(table, key("value_maps", source)) for source, table in maps_raw.items()}

    rating = _rating(raw["rating"], key("rating")) if "rating" in raw else None
    if rating is not None:
        _need(kind is Kind.RESPONSES, key("rating"), "only response profiles have a rating")

    separator = raw.get("factor_separator", ";")
    _need(isinstance(separator, str) and len(separator) >= 1 and not separator.isspace(), key("factor_separator"), f"expected a non-blank separator such as \";\" or \",\", got {separator!r}")

    people_raw = _string_table(raw.get("people", {}), key("people"))
    people: dict[str, PersonAction] = {}
    for source, action in people_raw.items():
        _need(action in tuple(PersonAction), key("people", source), f"must be \"drop\" or \"hash\", got {action!r}")
        people[source] = PersonAction(action)
        _need(source not in dimensions, key("people", source), "a person's identifier cannot be a dimension")
        if action == PersonAction.DROP:
            _need(source not in columns, key("people", source), f"column is dropped but mapped to {columns.get(source)!r}")
    for source, target in columns.items():
        if target in PERSON_FIELDS:
            _need(people.get(source) == PersonAction.HASH, key("people", source), f"column {source!r} fills {target!r}, a person's identifier: set people.{source} = \"hash\"")
        elif source.lower() in PERSON_COLUMNS or source in people:
            raise ProfileError(f"{key('columns', source)}: {source!r} identifies a person and may only fill a person field such as 'caller' (hashed), or be dropped")
    for source in dimensions:
        _need(source.lower() not in PERSON_COLUMNS, key("dimensions", source), f"{source!r} identifies a person: list it under people (drop or hash) instead")

    sheet = raw.get("sheet")
    _need(sheet is None or (isinstance(sheet, str) and bool(sheet)), key("sheet"), f"expected a worksheet name, got {sheet!r}")
    pivot = _pivot(raw["pivot"], key("pivot")) if "pivot" in raw else None
    if pivot is not None:
        _need(kind is Kind.RESPONSES, key("pivot"), "only response profiles can pivot")
        _need(latest is None, key("pivot"), "pivot and latest cannot be combined")
    description = raw.get("description", "")
    _need(isinstance(description, str), key("description"), "expected text")

    mapped = set(targets) | set(constants)
    missing_fields = [f for f in REQUIRED[kind] if f not in mapped]
    _need(not missing_fields, key("columns"), f"no column is mapped to the required field(s) {', '.join(missing_fields)}")
    if latest is not None:
        for column in latest.key:
            _need(column not in people or people[column] != PersonAction.DROP, key("latest", "key"), f"{column!r} is dropped")

    return Profile(
        name=name or "file",
        kind=kind,
        columns=columns,
        dimensions=dimensions,
        date_formats=date_formats,
        day_first=day_first,
        timezone=timezone,
        missing=missing,
        latest=latest,
        constants={k: (v.lower() if k == "ticket_type" else v) for k, v in constants.items()},
        value_maps=value_maps,
        rating=rating,
        factor_separator=separator,
        people=people,
        sheet=sheet,
        pivot=pivot,
        description=description,
    )


BUILTIN_PACKAGE = "monitor.ingest"
BUILTIN_FOLDER = "builtin_profiles"


def builtin_names() -> list[str]:
    folder = resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_FOLDER)
    return sorted(item.name.removesuffix(".toml") for item in folder.iterdir() if item.name.endswith(".toml"))


def _builtin_raw(name: str) -> dict[str, Any] | None:
    item = resources.files(BUILTIN_PACKAGE).joinpath(BUILTIN_FOLDER, f"{name}.toml")
    if not item.is_file():
        return None
    return tomllib.loads(item.read_text(encoding="utf-8"))


def resolve_profile(spec: str, configured: Mapping[str, Mapping[str, Any]], allowed_dimensions: tuple[str, ...] = ()) -> Profile:
    """A profile by name (configured first, then built-in) or by path to a ``.toml`` file."""
    if spec in configured:
        return parse_profile(spec, configured[spec], allowed_dimensions=allowed_dimensions)
    builtin = _builtin_raw(spec) if re.fullmatch(r"[A-Za-z0-9_\-]+", spec) else None
    if builtin is not None:
        return parse_profile(spec, builtin, allowed_dimensions=allowed_dimensions)
    path = Path(spec)
    if path.suffix.lower() == ".toml" or path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProfileError(f"--profile: file {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: not valid TOML: {exc}") from None
        raw = raw.get("profile", raw)
        try:
            return parse_profile("", raw, allowed_dimensions=allowed_dimensions)
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from None
    known = sorted(set(configured) | set(builtin_names()))
    raise ProfileError(f"--profile: no profile named {spec!r} (configured or built-in: {', '.join(known)}); or give a path to a .toml file")
