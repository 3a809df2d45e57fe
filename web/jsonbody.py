"""Request bodies parsed as JSON with limits, so hostile input is a 400, never a 500.

The standard library's parser accepts what is valid JSON but dangerous here:
nesting deep enough to exhaust the interpreter's stack (RecursionError), numbers
of thousands of digits (slow to convert, and refused by ``int`` past 4300 digits
with a ValueError), ``NaN``/``Infinity`` (not JSON), and ``\\ud800`` escapes that
decode to lone surrogates, which no UTF-8 file or database can hold. Each is
refused here, at the parsing layer, with a message saying what and where.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 20  # a response record is an object holding a list of strings: depth 3
MAX_NUMBER_CHARACTERS = 100


class BodyRefused(ValueError):
    """JSON that is refused; the message says why (and, for JSON lines, which line)."""


def _number(convert: type) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARACTERS:
            raise BodyRefused(f"a number of {len(text)} characters; at most {MAX_NUMBER_CHARACTERS} are accepted")
        return convert(text)

    return parse


def _no_constant(text: str) -> Any:
    raise BodyRefused(f"{text} is not a JSON number")


def _check_values(value: Any) -> None:
    """Depth and lone surrogates, without recursion (the value may be deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise BodyRefused("a string holds a lone surrogate (an unpaired \\ud800-\\udfff escape)") from None
            continue
        if depth > MAX_DEPTH:
            raise BodyRefused(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def loads(text: str) -> Any:
    """Parse one JSON document; json.JSONDecodeError for bad syntax, BodyRefused for the rest."""
    try:
        value = json.loads(text, parse_int=_number(int), parse_float=_number(float), parse_constant=_no_constant)
    except RecursionError:
        raise BodyRefused(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_values(value)
    return value


def check_lines(text: str) -> None:
    """Refuse the hazards in JSON lines; syntax errors are left to the import, which reports them per record."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            loads(line)
        except json.JSONDecodeError:
            continue
        except BodyRefused as exc:
            raise BodyRefused(f"line {number}: {exc}") from None
