"""Values from stores and catalogues as plain JSON: the one conversion every STAC value goes through.

A Zarr attribute, a CSV cell or an intake catalogue's metadata can hold anything JSON,
YAML or numpy can: integers beyond 64 bits (orjson refuses them, JavaScript rounds them),
NaN and infinities (not JSON at all), bytes, numpy scalars and arrays, datetimes, sets,
mappings with non-string keys, nesting a thousand levels deep, strings of megabytes.
`plain()` turns any value into JSON that every encoder zarr-stac uses accepts (orjson
without options, `json` with `allow_nan=False`, psycopg's Jsonb), in time and memory
bounded by the limits below, and never raises:

- integers outside [-2**63, 2**64): their decimal text (longer than `MAX_DIGITS`: dropped);
- NaN and infinities: null;
- bytes: their text when they are UTF-8, else dropped;
- numpy scalars and arrays, tuples and sets: numbers and lists; datetimes: ISO 8601 text;
- mapping keys: text; anything else: its `str()`;
- deeper than `MAX_DEPTH`, a string longer than `MAX_TEXT`, a list or mapping of more than
  `MAX_ENTRIES`, or past `MAX_SIZE` in all: dropped.

A dropped value leaves its mapping (in a list it becomes null, so positions keep their
meaning); each value dropped or replaced is said in `notes`, which the crawl reports.
`dumps()` is orjson as it is, and this conversion only for the rare document orjson
refuses: the encoder of what may not fail on a value (the ledger and its digests, facet
values, pgstac's load of a static catalogue's Items). The static catalogue's writer keeps
orjson alone: an Item the crawl did not make plain is refused (`render-error`), not changed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

MAX_DEPTH = 32  # lists and mappings within one another
MAX_TEXT = 65_536  # characters of one string
MAX_ENTRIES = 10_000  # entries of one list or mapping
MAX_SIZE = 4_000_000  # characters (about) of one whole value
MAX_DIGITS = 100  # an integer beyond 64 bits is kept as text up to this length
MAX_NOTES = 10  # notes of one conversion; more are counted in a last one
ENTRY_SIZE = 8  # what a number, a null or a list or mapping entry counts for in MAX_SIZE

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_DROP = object()


class _Conversion:
    """One call's budget and notes."""

    __slots__ = ("left", "notes", "noted", "more")

    def __init__(self, notes: list[str] | None):
        self.left = MAX_SIZE
        self.notes = notes
        self.noted = self.more = 0

    def note(self, where: tuple, what: str) -> None:
        if self.notes is None:
            return
        if self.noted >= MAX_NOTES:
            self.more += 1
            return
        self.noted += 1
        self.notes.append(f"{_where(where)}: {what}")


def _where(path: tuple) -> str:
    """`title`, `a.b[3]`: where a value sits, as a short, printable name."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    text = text or "value"
    return repr(text if len(text) <= 80 else text[:77] + "...")


def plain(value: Any, notes: list[str] | None = None, where: str | None = None) -> Any:
    """`value` as plain JSON (see the module's docstring); None if nothing of it can be kept.

    Each value dropped or replaced adds a line to `notes`, naming it from `where` (e.g.
    "attribute"); at most `MAX_NOTES` lines, then one line counting the others."""
    conversion = _Conversion(notes)
    result = _plain(value, conversion, (where,) if where else (), 0)
    if conversion.more and notes is not None:
        notes.append(f"and {conversion.more} more value(s) dropped or replaced")
    return None if result is _DROP else result


def _plain(value: Any, conversion: _Conversion, path: tuple, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return _text(value, conversion, path)
    conversion.left -= ENTRY_SIZE
    if conversion.left < 0:
        return _over_budget(conversion, path)
    if kind is bool or value is None:
        return value
    if kind is int:
        return _integer(value, conversion, path)
    if kind is float:
        if math.isfinite(value):
            return value
        conversion.note(path, f"{value} is not a JSON number: null")
        return None
    if isinstance(value, dict):
        return _mapping(value, conversion, path, depth)
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return _sequence(value, conversion, path, depth)
    return _other(value, conversion, path, depth)


def _text(value: str, conversion: _Conversion, path: tuple) -> Any:
    if len(value) > MAX_TEXT:
        conversion.note(path, f"text of {len(value)} characters (more than {MAX_TEXT}): dropped")
        return _DROP
    conversion.left -= len(value)
    if conversion.left < 0:
        return _over_budget(conversion, path)
    return value


def _integer(value: int, conversion: _Conversion, path: tuple) -> Any:
    if _INT_MIN <= value <= _INT_MAX:
        return value
    # int -> str refuses more than sys.get_int_max_str_digits() digits: bits tell the length first.
    if value.bit_length() > MAX_DIGITS * 3.3:
        conversion.note(path, f"an integer of {value.bit_length()} bits: dropped")
        return _DROP
    conversion.note(path, "an integer beyond 64 bits: kept as text")
    return _text(str(value), conversion, path)


def _mapping(value: dict, conversion: _Conversion, path: tuple, depth: int) -> Any:
    if depth >= MAX_DEPTH:
        conversion.note(path, f"nested deeper than {MAX_DEPTH} levels: dropped")
        return _DROP
    if len(value) > MAX_ENTRIES:
        conversion.note(path, f"a mapping of {len(value)} entries (more than {MAX_ENTRIES}): dropped")
        return _DROP
    result = {}
    for key, item in value.items():
        key = key if type(key) is str else _key(key)
        if key is None or len(key) > MAX_TEXT:
            conversion.note(path, "a key that is not text: its entry dropped")
            continue
        converted = _plain(item, conversion, (*path, key), depth + 1)
        if converted is not _DROP:
            result[key] = converted
        if conversion.left < 0:
            break
    return result


def _key(key: Any) -> str | None:
    if isinstance(key, bool | int | float | np.generic) or key is None:
        converted = _plain(key.item() if isinstance(key, np.generic) else key, _Conversion(None), (), MAX_DEPTH)
        return None if converted is _DROP else orjson.dumps(converted).decode()
    if isinstance(key, bytes):
        try:
            return key.decode()
        except UnicodeDecodeError:
            return None
    return None


def _sequence(value: Any, conversion: _Conversion, path: tuple, depth: int) -> Any:
    if depth >= MAX_DEPTH:
        conversion.note(path, f"nested deeper than {MAX_DEPTH} levels: dropped")
        return _DROP
    size = value.size if isinstance(value, np.ndarray) else len(value)
    if size > MAX_ENTRIES:
        conversion.note(path, f"a list of {size} entries (more than {MAX_ENTRIES}): dropped")
        return _DROP
    items = value.tolist() if isinstance(value, np.ndarray) else value
    result = []
    for index, item in enumerate(items):
        converted = _plain(item, conversion, (*path, index), depth + 1)
        result.append(None if converted is _DROP else converted)
        if conversion.left < 0:
            break
    return result


def _other(value: Any, conversion: _Conversion, path: tuple, depth: int) -> Any:
    if isinstance(value, np.datetime64 | np.timedelta64):
        if np.isnat(value):
            return None
        return _text(str(value), conversion, path)
    if isinstance(value, np.generic):
        return _plain(value.item(), conversion, path, depth)
    if isinstance(value, bytes | bytearray | memoryview):
        if len(value) > MAX_TEXT * 4:
            conversion.note(path, f"{len(value)} bytes (more than {MAX_TEXT} characters): dropped")
            return _DROP
        try:
            return _text(bytes(value).decode(), conversion, path)
        except UnicodeDecodeError:
            conversion.note(path, "bytes that are not UTF-8 text: dropped")
            return _DROP
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _mapping(dict(value), conversion, path, depth)
    if isinstance(value, int | float | str):  # subclasses (IntEnum, numpy's str_...)
        return _plain({int: int, float: float, str: str}[_base(value)](value), conversion, path, depth)
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - an object whose str() fails is dropped like any other
        conversion.note(path, f"a {type(value).__name__} that has no text form: dropped")
        return _DROP
    return _text(text, conversion, path)


def _base(value: Any) -> type:
    return int if isinstance(value, int) else float if isinstance(value, float) else str


def _over_budget(conversion: _Conversion, path: tuple) -> Any:
    conversion.note(path, f"more than {MAX_SIZE} characters in all: the rest dropped")
    return _DROP


def dumps(value: Any, notes: list[str] | None = None, option: int = 0) -> bytes:
    """orjson's bytes of `value` (with orjson `option`s), through `plain()` when orjson refuses it:
    the encoder of every document a publisher writes, which never fails on a value."""
    try:
        return orjson.dumps(value, option=option)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(plain(value, notes), option=option)
