"""``mspmon ingest --suggest-profile FILE``: a starting profile from a header and a sample.

Guesses, each written as a commented TOML line a person reviews:

* dates: the strptime format that reads at least 95% of a column's sample; between
  day-first and month-first, a first part above 12 proves day-first, a second part
  above 12 month-first, and neither leaves it ambiguous (said in a comment);
* missing-value tokens seen (``?``, ``N/A``, ``NULL``, ``-``);
* an id: a column named like one whose sample values are all distinct;
* a rating: whole numbers within 0-10, 1-5 or 0-100, named like a rating;
* people: known names (caller_id, opened_by, user...) or e-mail-like values: hashed
  or dropped, never kept in clear;
* dimensions: text with few distinct values (at most 50, and under half the sample).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from monitor.ingest.profiles import PERSON_COLUMNS
from monitor.ingest.sources import read_source

SAMPLE_ROWS = 2000
MISSING_TOKENS = ("?", "N/A", "n/a", "NA", "NULL", "null", "-", "(empty)")
_DATE_SHAPES = [
    # (regex, candidate formats by order of preference: day-first, month-first, other)
    (r"^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}:\d{2}", ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    (r"^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}$", ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    (r"^\d{4}-\d{1,2}-\d{1,2}$", ["%Y-%m-%d"]),
    (r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4} \d{1,2}:\d{2}:\d{2}$", ["{d}{s}{m}{s}%Y %H:%M:%S"]),
    (r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4} \d{1,2}:\d{2}$", ["{d}{s}{m}{s}%Y %H:%M"]),
    (r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$", ["{d}{s}{m}{s}%Y"]),
]
_ID_NAME = re.compile(r"(^|_)(id|number|no|key|instance|sys_id|ref)$|^(number|id)$", re.I)
_RATING_NAME = re.compile(r"rating|score|satisf|stars|nps|value|grade", re.I)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_DIMENSION_NAMES = {"assignment_group", "location", "category", "subcategory", "contact_type", "channel", "country", "department", "service", "site", "company", "business_unit", "region"}
_TICKET_HINTS = {"opened_at", "resolved_at", "number", "priority", "assignment_group"}


def _date_format(values: pd.Series) -> tuple[str | None, str]:
    """(format, note) for a text column, or (None, "") when it is not a date."""
    sample = values[values != ""]
    if sample.empty:
        return None, ""
    for shape, templates in _DATE_SHAPES:
        if not sample.str.match(shape).mean() >= 0.95:
            continue
        if "{d}" not in templates[0]:
            for fmt in templates:
                if pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean() >= 0.95:
                    return fmt, ""
            continue
        separator = re.match(r"^\d{1,2}([/.-])", sample.iloc[0]).group(1)  # type: ignore[union-attr]
        parts = sample.str.extract(r"^(\d{1,2})[/.-](\d{1,2})").astype(int)
        first_big, second_big = (parts[0] > 12).any(), (parts[1] > 12).any()
        day_first = bool(first_big or not second_big)
        note = "" if first_big or second_big else "ambiguous: no day above 12 in the sample; day-first assumed, check it"
        order = ("%d", "%m") if day_first else ("%m", "%d")
        fmt = templates[0].format(d=order[0], m=order[1], s=separator)
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean() >= 0.95:
            return fmt, note or ("day first" if day_first else "month first")
    return None, ""


def suggest_profile(path: Path, *, sample_rows: int = SAMPLE_ROWS) -> str:
    """A TOML profile for ``path``, for a person to review and complete."""
    batch = next(read_source(path, sample_rows), None)
    if batch is None:
        return "# the file has a header but no rows: nothing to suggest from\n"
    frame = batch.table.to_pandas().apply(lambda column: column.str.strip())
    seen_missing = sorted({token for token in MISSING_TOKENS if (frame == token).any().any()})
    cleaned = frame.replace({token: "" for token in seen_missing})
    names = list(frame.columns)
    tickets = len(_TICKET_HINTS & set(names)) >= 3
    columns: dict[str, str] = {}
    dimensions: list[str] = []
    people: dict[str, str] = {}
    notes: list[str] = []
    formats: list[str] = []
    day_first = False
    rating_scale: str | None = None
    for name in names:
        values = cleaned[name]
        present = values[values != ""]
        lowered = name.lower()
        if present.empty:
            notes.append(f"{name}: always empty in the sample, left out")
            continue
        if lowered in PERSON_COLUMNS or present.str.match(_EMAIL).mean() > 0.5:
            people[name] = "hash" if lowered in {"caller_id", "caller"} and tickets else "drop"
            if people[name] == "hash":
                columns[name] = "caller"
            notes.append(f"{name}: identifies a person, {people[name]}ped" if people[name] == "drop" else f"{name}: identifies a person, kept only as a keyed hash")
            continue
        fmt, note = _date_format(present)
        if fmt is not None:
            if fmt not in formats:
                formats.append(fmt)
            day_first = day_first or fmt.startswith("%d")
            notes.append(f"{name}: date, {fmt}" + (f" ({note})" if note else ""))
            target = _date_target(lowered, tickets, columns)
            if target:
                columns[name] = target
            continue
        distinct = present.nunique()
        if tickets and lowered == "number":
            columns[name] = "ticket_id"
            if distinct < len(present):
                latest = [c for c in ("sys_updated_at", "sys_mod_count") if c in names]
                notes.append(f"{name}: repeats, an event log: the latest row per {name} is kept")
                columns["__latest__"] = json.dumps([name, latest])
            continue
        numeric = pd.to_numeric(present, errors="coerce")
        whole = numeric.notna().all() and (numeric % 1 == 0).all()
        if _ID_NAME.search(name) and distinct == len(present):
            target = "ticket_id" if tickets or lowered in {"number", "ticket", "ticket_id", "trigger_id"} else "response_id"
            if target not in columns.values():
                columns[name] = target
                notes.append(f"{name}: unique in the sample, an id")
                continue
        if not tickets and whole and _RATING_NAME.search(name) and "rating" not in columns.values():
            low, high = int(numeric.min()), int(numeric.max())
            rating_scale = "0-10" if low >= 0 and high <= 10 and high > 5 else "1-5" if low >= 1 and high <= 5 else "0-100" if high <= 100 else None
            if rating_scale:
                columns[name] = "rating"
                notes.append(f"{name}: whole numbers {low}-{high}, a rating on {rating_scale}")
                continue
        if tickets and lowered in {"priority", "made_sla", "reassignment_count", "reopen_count"}:
            columns[name] = {"made_sla": "sla_met"}.get(lowered, lowered)
            continue
        known_dimension = lowered in _DIMENSION_NAMES
        if known_dimension or (not whole and distinct <= 50 and (distinct <= len(present) // 2 or len(present) < 20)):
            dimensions.append(name)
            notes.append(f"{name}: {distinct} distinct values, a dimension")
            continue
        notes.append(f"{name}: not recognised ({distinct} distinct values), left out")
    return _render(path, "tickets" if tickets else "responses", columns, dimensions, people, formats, day_first, seen_missing, rating_scale, notes)


def _date_target(lowered: str, tickets: bool, columns: dict[str, str]) -> str | None:
    if tickets:
        for field in ("opened_at", "resolved_at", "closed_at"):
            if lowered == field and field not in columns.values():
                return field
        if lowered in {"sys_updated_at", "updated_at", "sys_updated_on"} and "updated_at" not in columns.values():
            return "updated_at"
        return None
    if "submitted_at" not in columns.values() and any(hint in lowered for hint in ("submit", "created", "date", "time", "answered", "when")):
        return "submitted_at"
    return None


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _render(path: Path, kind: str, columns: dict[str, str], dimensions: list[str], people: dict[str, str], formats: list[str], day_first: bool, missing: list[str], rating: str | None, notes: list[str]) -> str:
    lines = [f"# Suggested from {path.name}: review every line before use.", f"kind = {_q(kind)}"]
    if formats:
        lines.append(f"date_formats = [{', '.join(_q(f) for f in formats)}]")
    lines.append(f"day_first = {'true' if day_first else 'false'}")
    lines.append(f"missing = [{', '.join(_q(m) for m in ['', *missing])}]")
    if rating and rating != "0-10":
        lines.append(f"rating = {{ scale = {_q(rating)} }}")
    if kind == "tickets":
        lines.append('constants = { ticket_type = "incident" }')
    if dimensions:
        lines.append(f"dimensions = [{', '.join(_q(d) for d in dimensions)}]")
    latest = columns.pop("__latest__", None)
    if latest:
        key, order = json.loads(latest)
        lines.append(f"latest = {{ key = [{_q(key)}], order = [{', '.join(_q(o) for o in order)}] }}")
    lines.append("")
    lines.append("[columns]")
    lines.extend(f"{_q(source)} = {_q(target)}" for source, target in columns.items())
    if people:
        lines.append("")
        lines.append("[people]")
        lines.extend(f"{_q(source)} = {_q(action)}" for source, action in people.items())
    lines.append("")
    lines.append("# What was seen:")
    lines.extend(f"#   {note}" for note in notes)
    return "\n".join(lines) + "\n"
