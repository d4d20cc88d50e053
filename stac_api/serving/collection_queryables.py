"""Facets as queryables of collection search (pgstac#350): `GET /collections?filter=experiment_id='ssp585'`.

pgstac's collection search reads a filter's properties in the Collection document, where
no facet is: a filter on one matched nothing. zarr-stac summarises each facet of a
collection (`summaries`: its values, or its range when numeric) when it loads, so a
comparison on a facet is rewritten into one on its summary, which pgstac evaluates:

- `f = v` → `a_contains(summaries.f, [v])`, `f IN (v, w)` → `a_overlaps(summaries.f, [v, w])`:
  the collections with an Item whose `f` is `v`;
- numeric facets: `f = v` → `summaries.f.minimum <= v AND summaries.f.maximum >= v`, `f < v`
  → `summaries.f.minimum < v`, `f > v` → `summaries.f.maximum > v` (and `<=`, `>=`).

A conjunction is decided per collection: `f = v AND g = w` finds a collection with an Item
whose `f` is `v` and one whose `g` is `w`, not necessarily the same Item (a summary does not
say which values go together). Any other operator on a facet is refused with a 400 saying what is possible, rather than
matching nothing. A facet with more than MAX_ENUM (100) values in a collection has no value
list there (see zarr_stac.common.facets), so such a collection is not found by its values;
facets whose name holds a dot, or whose values are lists (`variables`), are not summarised
and are not rewritten. `GET /collections/queryables` lists the facets, with their values.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from stac_fastapi.api.models import JSONSchemaResponse
from stac_fastapi.types.errors import InvalidQueryParameter

from .filters import get_filter

RANGES = {"<": "minimum", "<=": "minimum", ">": "maximum", ">=": "maximum"}
MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


async def collection_facets(conn: Any) -> dict[str, dict[str, Any]]:
    """The facets zarr-stac registered (queryables of named collections), by name: their schema."""
    rows = await conn.fetch(
        "SELECT name, definition FROM pgstac.queryables WHERE collection_ids IS NOT NULL AND position('.' in name) = 0"
    )
    facets = {}
    for row in rows:
        definition = row["definition"]
        definition = orjson.loads(definition) if isinstance(definition, str) else dict(definition or {})
        if definition.get("type") in ("string", "integer", "number", "boolean"):
            facets[row["name"]] = definition
    return facets


def on_summaries(node: Any, facets: dict[str, dict[str, Any]]) -> Any:
    """The cql2-json filter with each comparison on a facet made one on the collection's summary."""
    if isinstance(node, list):
        return [on_summaries(n, facets) for n in node]
    if not isinstance(node, dict):
        return node
    op, args = node.get("op"), node.get("args")
    if isinstance(op, str) and isinstance(args, list):
        facet = next((a["property"] for a in args if _is_property(a) and a["property"] in facets), None)
        if facet is not None:
            return _rewritten(op.lower(), args, facet, facets[facet])
        return {**node, "args": on_summaries(args, facets)}
    return node


def _is_property(arg: Any) -> bool:
    return isinstance(arg, dict) and set(arg) == {"property"} and isinstance(arg["property"], str)


def _rewritten(op: str, args: list[Any], facet: str, definition: dict[str, Any]) -> dict[str, Any]:
    summary = {"property": f"summaries.{facet}"}
    numeric = definition.get("type") in ("integer", "number")
    if len(args) == 2 and op in MIRRORED:
        if _is_property(args[1]) and args[1]["property"] == facet:
            op, args = MIRRORED[op], [args[1], args[0]]  # `v < f` is `f > v`
        value = args[1]
        if not _is_property(args[0]) or isinstance(value, (dict, list)):
            pass  # refused below
        elif numeric and op == "=":
            return {
                "op": "and",
                "args": [
                    {"op": "<=", "args": [{"property": f"summaries.{facet}.minimum"}, value]},
                    {"op": ">=", "args": [{"property": f"summaries.{facet}.maximum"}, value]},
                ],
            }
        elif numeric:
            return {"op": op, "args": [{"property": f"summaries.{facet}.{RANGES[op]}"}, value]}
        elif op == "=":
            return {"op": "a_contains", "args": [summary, [value]]}
    if op == "in" and len(args) == 2 and _is_property(args[0]) and isinstance(args[1], list):
        if numeric:
            return {"op": "or", "args": [_rewritten("=", [args[0], v], facet, definition) for v in args[1]]}
        return {"op": "a_overlaps", "args": [summary, args[1]]}
    allowed = "=, <, <=, >, >= and IN" if numeric else "= and IN"
    raise InvalidQueryParameter(
        f"Collection search can compare the facet {facet!r} only with {allowed} and a value "
        f"(collections are matched by their summary of it)"
    )


async def facet_filter(
    request: Request, filter_expr: str | None, filter_lang: str | None
) -> tuple[str | None, str | None]:
    """A collection search's GET filter, rewritten onto the summaries when it names a facet."""
    if not filter_expr:
        return filter_expr, filter_lang
    parsed, _ = get_filter(filter_expr, filter_lang)
    async with request.app.state.get_connection(request, "r") as conn:
        facets = await collection_facets(conn)
    rewritten = on_summaries(parsed, facets)
    if rewritten == parsed:
        return filter_expr, filter_lang
    return orjson.dumps(rewritten).decode(), "cql2-json"


def add_collection_queryables(app: FastAPI, prefix: str = "") -> None:
    """`GET /collections/queryables`: what a collection search may filter on."""

    async def collection_queryables(request: Request) -> dict[str, Any]:
        async with request.app.state.get_connection(request, "r") as conn:
            facets = await collection_facets(conn)
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": str(request.url),
            "type": "object",
            "title": "Collection search queryables",
            "description": "Facets of the collections' items: a collection matches when an item of it has the value",
            "properties": {
                "id": {"title": "Collection ID", "type": "string"},
                "title": {"title": "Title", "type": "string"},
                **{name: facets[name] for name in sorted(facets)},
            },
            "additionalProperties": True,
        }

    path = f"{prefix}/collections/queryables"
    app.add_api_route(
        path,
        collection_queryables,
        methods=["GET"],
        name="Collection search queryables",
        response_class=JSONSchemaResponse,
        tags=["Filter Extension"],
    )
    # First: the core routes (in included routers) would take `queryables` for a collection's id.
    app.router.routes.insert(0, app.router.routes.pop())
