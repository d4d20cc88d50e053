"""Bounds on CQL2 filters, checked before the cql2 library sees them.

cql2 (Rust) parses cql2-text by recursive descent without a depth limit, and its
JSON Schema validation slows down with every nested operator. Measured with cql2
0.6 on an 8 MB stack (tests/stac_api/test_robustness.py):

- about 1,500 nested parentheses (3 KB of text), or 4,000 chained minus signs,
  overflow the stack: the whole API process dies with SIGSEGV on one GET request;
- 1,000 nested `NOT (...)` validate for minutes, blocking the event loop, and a sum
  of 1,500 terms (6 KB) makes validation allocate more than 20 GB;
- past 126 nested operators pydantic refuses to serialise the search (a 500);
- pgstac translates a filter to SQL in PL/pgSQL at about 1 ms per operator: a flat
  `or` of 20,000 comparisons (1 MB, within MAX_BODY_SIZE) kept a backend busy 23 s.

So a filter is refused with a 400 when it is longer, deeper or has longer runs of
prefix operators than any real filter; well below where anything breaks.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from cql2 import Expr, parse_json
from stac_fastapi.types.errors import InvalidQueryParameter

MAX_TEXT_LENGTH = 8192  # characters of cql2-text (longer filters: POST cql2-json)
MAX_TEXT_NESTING = 32  # parentheses and brackets within one another
MAX_PREFIX_RUN = 8  # `NOT NOT - - x`: prefix operators in a row
MAX_JSON_DEPTH = 40  # objects and arrays within one another: 2 per nested operator
MAX_OPERATORS = 1000  # operators in one filter (`in` with a long list is one): about 1 s in pgstac

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
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def operator_count(value: Any) -> int:
    """How many operators (objects with an `op`) a cql2-json expression holds."""
    count = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += "op" in node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def check_json(filter_expr: Any) -> None:
    if json_depth(filter_expr) > MAX_JSON_DEPTH:
        raise InvalidQueryParameter(f"Invalid filter: nested deeper than {MAX_JSON_DEPTH} levels")
    if operator_count(filter_expr) > MAX_OPERATORS:
        raise InvalidQueryParameter(
            f"Invalid filter: more than {MAX_OPERATORS} operators (use `in` with a list rather than many `or`s)"
        )


def check_text(text: str) -> None:
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidQueryParameter(
            f"Invalid filter: longer than {MAX_TEXT_LENGTH} characters (send longer filters as cql2-json by POST)"
        )
    unquoted = _QUOTED.sub("''", text)
    if _nesting(unquoted) > MAX_TEXT_NESTING:
        raise InvalidQueryParameter(f"Invalid filter: parentheses nested deeper than {MAX_TEXT_NESTING} levels")
    if _PREFIX_RUN.search(unquoted):
        raise InvalidQueryParameter(f"Invalid filter: more than {MAX_PREFIX_RUN} NOT or sign operators in a row")
    try:
        parsed = Expr(text).to_json()  # safe now; cql2's JSON Schema validation comes later
    except Exception:  # noqa: BLE001 - cql2 raises plain exceptions
        return  # a syntax error: stac-fastapi's own parse answers 400 with cql2's message
    check_json(parsed)


def get_filter(filter_query: str, filter_lang: str | None) -> tuple[dict[str, Any], str]:
    """A GET `filter` (cql2-text, or cql2-json with `filter-lang`) as pgstac takes it:
    the cql2-json expression and its language, bounded, then validated as stac-fastapi
    validates it (`clean_search_args`), but remembered (see `_valid_json`)."""
    if filter_lang == "cql2-json":
        try:
            parsed = orjson.loads(filter_query)
        except orjson.JSONDecodeError as exc:
            raise InvalidQueryParameter(f"Invalid filter: {exc}") from None
        check_json(parsed)
        return orjson.loads(_valid(_json_text(parsed), parse_json)), filter_lang
    check_text(filter_query)
    return orjson.loads(_valid(filter_query, Expr)), "cql2-json"


def validate_post_filter(filter_expr: dict[str, Any] | None) -> None:
    """A POST filter, bounded and then checked as stac-fastapi checks a GET one (cql2's
    JSON Schema): unchecked, `{"op": "and", "args": []}` or a geometry of an unknown
    type reached pgstac and came back as a 500."""
    if filter_expr is None:
        return
    check_json(filter_expr)
    _valid(_json_text(filter_expr), parse_json)


def _json_text(filter_expr: Any) -> str:
    try:
        # json, not orjson: integers beyond 64 bits and NaN are refused (400), not a 500.
        return json.dumps(filter_expr, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidQueryParameter(f"Invalid filter: {exc}") from None


def _valid(text: str, parse: Callable[[str], Expr]) -> str:
    """The cql2-json text of a valid filter; a 400 naming cql2's complaint otherwise."""
    try:
        return (_valid_json_cached if len(text) <= MAX_CACHED_LENGTH else _valid_json)(text, parse)
    except Exception as exc:  # noqa: BLE001 - cql2 raises plain exceptions (ValueError, ...)
        raise InvalidQueryParameter(f"Invalid filter: {exc}") from None


def _valid_json(text: str, parse: Callable[[str], Expr]) -> str:
    expr = parse(text)
    expr.validate()
    return json.dumps(expr.to_json())


# cql2 0.6 compiles its JSON Schema on every `validate()`: 35-50 ms of CPU per request,
# in the event loop, a third of a filtered search's time. The filters that pass are
# remembered, since clients repeat them (paging, a dashboard's refresh, stac-browser).
MAX_CACHED_LENGTH = 4096
_valid_json_cached = functools.lru_cache(maxsize=1024)(_valid_json)
