"""Transitions with their scope and targets, declared in a TOML file.

A team that tracks several go-lives (one per country wave, say) keeps them in a
reviewed file rather than in shell history; ``mspmon transitions import`` reads it.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from monitor.store.models import (
    DEFAULT_BASELINE_WEEKS,
    DEFAULT_OBSERVATION_WEEKS,
    Transition,
)
from monitor.targets import TargetError, parse_target

_KEYS = {"name", "go_live", "scope", "description", "targets", "baseline_weeks", "observation_weeks"}


class TransitionFileError(ValueError):
    """The file or one of its entries is invalid; the message says where and why."""


def _weeks(where: str, entry: dict[str, Any], key: str, default: int) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 104:
        raise TransitionFileError(f"{where}: {key} must be a whole number of weeks from 1 to 104, got {value!r}")
    return value


def _scope(where: str, raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise TransitionFileError(f"{where}: scope must be a table of dimension = [values]")
    scope = {}
    for name, values in raw.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise TransitionFileError(f"{where}: scope.{name} must be a value or a list of values")
        scope[name] = list(dict.fromkeys(values))
    return scope


def read_transitions_file(path: Path, *, now: dt.datetime) -> list[Transition]:
    """Parse and validate every entry; nothing is returned unless all are valid."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TransitionFileError(f"{path}: not valid TOML: {exc}") from None
    entries = data.get("transition")
    if not isinstance(entries, list) or not entries:
        raise TransitionFileError(f"{path}: expected one or more [[transition]] tables")
    transitions, names = [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: transition {number}"
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise TransitionFileError(f"{where}: unknown key(s) {', '.join(unknown)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise TransitionFileError(f"{where}: name is required")
        if name in names:
            raise TransitionFileError(f"{where}: name {name!r} appears twice")
        names.add(name)
        go_live = entry.get("go_live")
        if not isinstance(go_live, dt.date) or isinstance(go_live, dt.datetime):
            raise TransitionFileError(f"{where} ({name}): go_live must be a date such as 2025-09-01")
        targets = entry.get("targets", [])
        if not isinstance(targets, list):
            raise TransitionFileError(f"{where} ({name}): targets must be a list of expressions")
        try:
            parsed = [parse_target(text).as_dict() for text in targets]
        except (TargetError, TypeError) as exc:
            raise TransitionFileError(f"{where} ({name}): {exc}") from None
        transitions.append(
            Transition(
                name=name.strip(),
                go_live=go_live,
                scope=_scope(f"{where} ({name})", entry.get("scope", {})),
                description=str(entry.get("description", "")),
                baseline_weeks=_weeks(where, entry, "baseline_weeks", DEFAULT_BASELINE_WEEKS),
                observation_weeks=_weeks(where, entry, "observation_weeks", DEFAULT_OBSERVATION_WEEKS),
                targets=parsed,
                created_at=now,
            )
        )
    return transitions
