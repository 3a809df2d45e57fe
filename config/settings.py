"""Settings: defaults in code < a TOML file (``MSPMON_CONFIG``) < ``MSPMON_<KEY>`` variables.

Everything is validated once, when the settings are loaded, so a typo in a key or a
bad value stops the program at start with a message naming the key, instead of
surfacing hours later inside a scheduled job.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "MSPMON_"
CONFIG_PATH_VARIABLE = "MSPMON_CONFIG"
TEST_PREFIX = "MSPMON_TEST_"  # reserved for the test suite's own variables
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SMTP_SECURITY_MODES = ("none", "starttls", "ssl")
PERIODS = ("week", "day")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


@dataclass(frozen=True)
class Settings:
    """The validated, immutable configuration of one mspmon process."""

    database_url: str = "sqlite:///mspmon.db"
    # Dimension columns of the import files; empty means "every column after the
    # canonical ones is a dimension".
    dimensions: tuple[str, ...] = ()
    anonymity_min_responses: int = 5
    timezone: str = "UTC"
    period: str = "week"
    ingest_batch_rows: int = 20_000
    # Responses submitted before this date (local midnight in ``timezone``) are
    # refused at import: a stray 0001-01-01 would stretch every series over
    # two thousand years of empty weeks.
    earliest_date: dt.date = dt.date(2000, 1, 1)
    max_errors_listed: int = 20
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: str = "none"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_sender: str = "mspmon@localhost"
    smtp_timeout_seconds: float = 30.0
    digest_weekday: str = "mon"
    digest_hour: int = 7
    # A digest missed while the scheduler was down is sent when it comes back within
    # this many hours (once, however many weeks were missed), else skipped.
    digest_grace_hours: float = 24.0
    digest_max_attempts: int = 5  # per recipient, then the delivery is marked failed
    digest_retry_seconds: float = 300.0  # wait before the first retry, doubled each time
    # A claimed digest or a delivery in flight whose process went silent for this
    # long is taken over (claim) or marked uncertain and never resent (delivery).
    digest_lease_seconds: float = 900.0
    secret_key: str = field(default="", repr=False)
    base_url: str = "http://127.0.0.1:8000"
    # Course-correction suggestions by feedback factor, merged over the defaults in
    # ``monitor.analysis.suggestions``: a TOML table ``[mspmon.suggestions]`` (or a JSON
    # object in MSPMON_SUGGESTIONS). ``{where}``, ``{service}``, ``{channel}`` ... are
    # filled from the root segment of a finding.
    suggestions: dict[str, str] = field(default_factory=dict)
    # Import profiles by name (``[profiles.NAME]`` tables, or a JSON object in
    # MSPMON_PROFILES); their content is validated by ``monitor.ingest.profiles`` when
    # one is used, since only it knows the fields a profile may map.
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Key of the keyed hash (HMAC-SHA256) that pseudonymises people's identifiers
    # (caller_id, user...) when a profile says ``hash``; best set as
    # MSPMON_PSEUDONYM_KEY in the environment. Changing it changes every pseudonym.
    pseudonym_key: str = field(default="", repr=False)
    # Sign of feedback factors, {factor: "positive" | "negative" | "neutral"}; factors
    # not listed get theirs from the ratings of the respondents citing them
    # (``detectors.polarity``). A TOML table ``[mspmon.factor_polarity]``.
    factor_polarity: dict[str, str] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_list(value: Any) -> tuple[str, ...]:
    """Lists come as TOML arrays or as comma-separated environment values."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        return tuple(item for item in items if item)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value)
    raise ValueError(f"expected a list of strings, got {value!r}")


def _parse_mapping(value: Any) -> dict[str, str]:
    """Tables come from TOML, or as a JSON object in an environment variable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON object, got {value!r}") from exc
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise ValueError(f"expected a table of strings, got {value!r}")


def _parse_tables(value: Any) -> dict[str, dict[str, Any]]:
    """A table of tables (``[profiles.NAME]``), or a JSON object of objects."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON object, got {value!r}") from exc
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items()):
        return {name: dict(table) for name, table in value.items()}
    raise ValueError(f"expected a table of tables such as [profiles.NAME], got {value!r}")


def _parse_date(value: Any) -> dt.date:
    """A TOML date (``2000-01-01``, unquoted) or an ISO text ``YYYY-MM-DD``."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")


def _coerce(kind: Any, value: Any) -> Any:
    """Convert a TOML value or an environment string to the field's type."""
    if kind == "tuple[str, ...]":
        return _parse_list(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if kind == "bool":
        return value if isinstance(value, bool) else _parse_bool(str(value))
    if kind == "dict[str, str]":
        return _parse_mapping(value)
    if kind == "dict[str, dict[str, Any]]":
        return _parse_tables(value)
    if kind == "dt.date":
        return _parse_date(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


def _check_range(low: float, high: float | None = None) -> Callable[[float], None]:
    def check(value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        if value < low or (high is not None and value > high):
            upper = f" and <= {high}" if high is not None else ""
            raise ValueError(f"must be >= {low}{upper}, got {value}")

    return check


def _check_earliest_date(value: dt.date) -> None:
    if not dt.date(1900, 1, 1) <= value <= dt.date(2100, 1, 1):
        raise ValueError(f"must be a date from 1900-01-01 to 2100-01-01, got {value.isoformat()}")


def _check_choice(choices: tuple[str, ...]) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")

    return check


def _check_database_url(url: str) -> None:
    if not url.startswith(("sqlite:", "postgresql")):
        raise ValueError(f"only sqlite:// and postgresql:// URLs are supported, got {url!r}")


MIN_SECRET_KEY_LENGTH = 16


def _check_secret_key(key: str) -> None:
    # Empty is allowed here (only the web view needs one; it refuses to start without).
    if key and len(key.strip()) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(f"must have at least {MIN_SECRET_KEY_LENGTH} characters that are not blanks")


def _check_base_url(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError(f"must be an http:// or https:// address such as https://mspmon.example.com, got {url!r}")


def _check_dimensions(names: tuple[str, ...]) -> None:
    if len(set(names)) != len(names):
        raise ValueError("dimension names must be unique")


def _check_templates(templates: dict[str, str]) -> None:
    for factor, template in templates.items():
        try:
            template.format_map(collections.defaultdict(str))
        except (ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"suggestion for {factor!r} is not a valid template ({exc}); use {{where}}, {{service}} ...") from exc


FACTOR_POLARITIES = ("positive", "negative", "neutral")


def _check_polarities(polarities: dict[str, str]) -> None:
    for factor, polarity in polarities.items():
        if polarity not in FACTOR_POLARITIES:
            raise ValueError(f"polarity of {factor!r} must be one of {', '.join(FACTOR_POLARITIES)}, got {polarity!r}")


_CHECKS: dict[str, Callable[[Any], None]] = {
    "database_url": _check_database_url,
    "dimensions": _check_dimensions,
    "anonymity_min_responses": _check_range(1),
    "timezone": _check_zone,
    "period": _check_choice(PERIODS),
    "ingest_batch_rows": _check_range(100, 1_000_000),
    "earliest_date": _check_earliest_date,
    "max_errors_listed": _check_range(1),
    "smtp_port": _check_range(1, 65535),
    "smtp_security": _check_choice(SMTP_SECURITY_MODES),
    "smtp_timeout_seconds": _check_range(0.1, 600),
    "digest_weekday": _check_choice(WEEKDAYS),
    "digest_hour": _check_range(0, 23),
    "digest_grace_hours": _check_range(0, 24 * 14),
    "digest_max_attempts": _check_range(1, 50),
    "digest_retry_seconds": _check_range(1, 86_400),
    "digest_lease_seconds": _check_range(10, 86_400),
    "suggestions": _check_templates,
    "secret_key": _check_secret_key,
    "base_url": _check_base_url,
    "factor_polarity": _check_polarities,
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{CONFIG_PATH_VARIABLE}: file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    # Allow either top-level keys or an [mspmon] table.
    return dict(data.get("mspmon", data))


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build validated settings from defaults, the TOML file, the environment and overrides.

    ``overrides`` are for tests and for commands that set a value themselves (the
    demo points ``database_url`` at its own folder); they win over everything.
    """
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    raw: dict[str, tuple[str, Any]] = {}

    config_path = environ.get(CONFIG_PATH_VARIABLE)
    if config_path:
        for key, value in _read_toml(Path(config_path)).items():
            if key not in fields:
                raise ConfigError(f"{config_path}: unknown setting {key!r}")
            raw[key] = (f"{config_path}: {key}", value)
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_VARIABLE:
            continue
        if name.startswith(TEST_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in fields:
            raise ConfigError(f"{name}: unknown setting (known: {', '.join(sorted(fields))})")
        raw[key] = (name, value)
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ConfigError(f"override {key!r}: unknown setting")
        raw[key] = (key, value)

    values: dict[str, Any] = {}
    for key, (origin, value) in raw.items():
        try:
            converted = _coerce(fields[key].type, value)
            if key in _CHECKS:
                _CHECKS[key](converted)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
        values[key] = converted
    return Settings(**values)


def database_error(url: str, exc: BaseException) -> ConfigError:
    """A one-line error naming ``database_url`` for a database that cannot be opened.

    For a missing SQLite folder, a dead server, bad credentials: the driver's
    first line says why; the password is never shown.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "(not a database URL)"
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    hint = ""
    if shown.startswith("sqlite") and make_url(url).database:
        folder = Path(make_url(url).database).expanduser().resolve().parent
        if not folder.is_dir():
            hint = f"; the folder {folder} does not exist"
    return ConfigError(f"database_url: cannot open {shown}: {reason[0] if reason else type(exc).__name__}{hint}")
