"""Bounds on CQL2 filters, checked before the cql2 library sees them.

cql2 (Rust) parses cql2-text by recursive descent without a depth limit, and its
JSON Schema validation slows down with every nested operator. Measured with cql2
0.6 on an 8 MB stack (tests/stac_api/test_robustness.py):

- about 1,500 nested parentheses (3 KB of text), or 4,000 chained minus signs,
  overflow the stack: the whole API process dies with SIGSEGV on one GET request;
- 1,000 nested `NOT (...)` validate for minutes, blocking the event loop, and a sum
  of 1,500 terms (6 KB) makes validation allocate more than 20 GB;
- past 126 nested operators pydantic refuses to serialise the search (a 500).

So a filter is refused with a 400 when it is longer, deeper or has longer runs of
prefix operators than any real filter; well below where anything breaks.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import orjson
from cql2 import Expr, parse_json
from stac_fastapi.types.errors import InvalidQueryParameter

MAX_TEXT_LENGTH = 8192  # characters of cql2-text (longer filters: POST cql2-json)
MAX_TEXT_NESTING = 32  # parentheses and brackets within one another
MAX_PREFIX_RUN = 8  # `NOT NOT - - x`: prefix operators in a row
MAX_JSON_DEPTH = 40  # objects and arrays within one another: 2 per nested operator

# String literals and quoted identifiers (a doubled quote escapes one): they may
# hold any character without opening anything.
_QUOTED = re.compile(r"'(?:[^']|'')*'?|\"[^\"]*\"?")
_PREFIX_RUN = re.compile(r"(?:(?:\bNOT\b|[-+])\s*){%d,}" % (MAX_PREFIX_RUN + 1), re.IGNORECASE)


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def json_depth(value: Any) -> int:
    """How many objects and arrays lie within one another (iterative: no recursion limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json(filter_expr: Any) -> None:
    if json_depth(filter_expr) > MAX_JSON_DEPTH:
        raise InvalidQueryParameter(f"Invalid filter: nested deeper than {MAX_JSON_DEPTH} levels")


def check_text(text: str) -> None:
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidQueryParameter(f"Invalid filter: longer than {MAX_TEXT_LENGTH} characters (send longer filters as cql2-json by POST)")
    unquoted = _QUOTED.sub("''", text)
    if _nesting(unquoted) > MAX_TEXT_NESTING:
        raise InvalidQueryParameter(f"Invalid filter: parentheses nested deeper than {MAX_TEXT_NESTING} levels")
    if _PREFIX_RUN.search(unquoted):
        raise InvalidQueryParameter(f"Invalid filter: more than {MAX_PREFIX_RUN} NOT or sign operators in a row")
    try:
        parsed = Expr(text).to_json()  # safe now; cql2's JSON Schema validation comes later
    except Exception:
        return  # a syntax error: stac-fastapi's own parse answers 400 with cql2's message
    check_json(parsed)


def check_get_filter(filter_query: str | None, filter_lang: str | None) -> None:
    """A GET `filter` (cql2-text, or cql2-json with `filter-lang`)."""
    if not filter_query:
        return
    if filter_lang == "cql2-json":
        try:
            parsed = orjson.loads(filter_query)
        except orjson.JSONDecodeError:
            return  # stac-fastapi answers 400
        check_json(parsed)
    else:
        check_text(filter_query)


def validate_post_filter(filter_expr: dict[str, Any] | None) -> None:
    """A POST filter, bounded and then checked as stac-fastapi checks a GET one (cql2's
    JSON Schema): unchecked, `{"op": "and", "args": []}` or a geometry of an unknown
    type reached pgstac and came back as a 500."""
    if filter_expr is None:
        return
    check_json(filter_expr)
    try:
        # json, not orjson: integers beyond 64 bits and NaN are refused (400), not a 500.
        text = json.dumps(filter_expr, sort_keys=True, allow_nan=False)
        (_validate_cached if len(text) <= MAX_CACHED_LENGTH else _validate)(text)
    except Exception as exc:  # cql2 raises plain exceptions (ValueError, ...)
        raise InvalidQueryParameter(f"Invalid filter: {exc}") from None


def _validate(text: str) -> None:
    parse_json(text).validate()


# Validation takes a tenth of a second (cql2 0.6), in the event loop: the filters that
# pass are remembered, since clients repeat them (paging, a dashboard's refresh).
MAX_CACHED_LENGTH = 4096
_validate_cached = functools.lru_cache(maxsize=1024)(_validate)
