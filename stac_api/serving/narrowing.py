"""Searches that name no collection, narrowed to the collections that can match them.

pgstac keeps one partition per collection and plans every partition for a search that
names none: 1 s at 1,000 collections, "out of shared memory" at 10,000 (a lock on each
partition and its indexes). Before pgstac sees such a search, the collections whose
bounds (`stac_api.collection_bounds`, written at load) rule the search out are left out:

- its `datetime` interval, read by pgstac's own `parse_dtrange`, against the collection's
  least `datetime` and greatest `end_datetime` (the comparisons pgstac's WHERE makes);
- its `bbox` or `intersects`, read by pgstac's `stac_geom`, against the items' extent;
- in its CQL2 filter, `=` and `in` of a property and strings, through `and` and `or`,
  against the string values that property takes in the collection (absent: no item has
  it). Only where pgstac reads the property as text at its usual place (`queryable` says
  `to_text` of `properties -> name`), as a search naming no collection compares it.

Anything else (`not`, `<`, `like`, functions, ...) rules nothing out. A collection without
known bounds is always kept. pgstac then gets the same search with `collection IN (the
rest)` and'ed to its filter: the filter itself and its sort are translated exactly as
before (a `collections` list would change how pgstac resolves queryables), and the paging
links stac-fastapi writes come from the request, not from this copy, so a next page is
narrowed again the same way. Not narrowed: searches that name collections already, the
`query` extension (pgstac allows no filter beside it), filters other than CQL2 JSON.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import Request

from ..collection_bounds import TABLE

logger = logging.getLogger(__name__)


class _Sql:
    """An SQL condition being written, with its positional parameters ($2, $3, ...: $1 is the search)."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params) + 1}"

    def values_condition(self, prop: str, literals: list[str]) -> str:
        """No item of the collection has `prop` among `literals` unless this holds (see the module)."""
        name = prop.removeprefix("properties.")
        p_prop, p_name, p_literals = self.param(prop), self.param(name), self.param(literals)
        # Evaluated once per query (no reference to the row): does pgstac read the property as
        # text at properties -> name, as the values were gathered?
        read_as_gathered = (
            f"(SELECT coalesce(q.wrapper = 'to_text' AND q.path = format('content->''properties''->%L', "
            f"{p_name}::text), false) FROM pgstac.queryable({p_prop}::text) q)"
        )
        return (
            f"(CASE WHEN NOT {read_as_gathered} THEN true"
            f" WHEN NOT b.facets ? {p_name}::text THEN false"
            f" WHEN jsonb_typeof(b.facets -> {p_name}::text) <> 'array' THEN true"
            f" ELSE b.facets -> {p_name}::text ?| {p_literals}::text[] END)"
        )

    def condition(self, node: Any) -> str | None:
        """What a collection must satisfy to hold an item matching `node`; None: nothing is known."""
        if not isinstance(node, dict) or not isinstance(node.get("args"), list):
            return None
        op, args = node.get("op"), node["args"]
        if op == "and":
            parts = [part for arg in args if (part := self.condition(arg)) is not None]
            return f"({' AND '.join(parts)})" if parts else None
        if op == "or":
            mark = len(self.params)
            conditions = [self.condition(arg) for arg in args]
            written = [part for part in conditions if part is not None]
            if not written or len(written) < len(conditions):
                del self.params[mark:]  # the parts written are not used
                return None
            return f"({' OR '.join(written)})"
        if op in ("=", "in") and len(args) == 2:
            prop, literal = args
            if op == "=" and isinstance(prop, str):
                prop, literal = literal, prop  # 'tas' = variable_id
            literals = [literal] if op == "=" else literal
            if (
                isinstance(prop, dict)
                and set(prop) == {"property"}
                and isinstance(prop["property"], str)
                and isinstance(literals, list)
                and literals
                and all(isinstance(v, str) for v in literals)
            ):
                return self.values_condition(prop["property"], literals)
        return None


_QUERY = """WITH s AS (
    SELECT CASE WHEN j ? 'datetime' THEN pgstac.parse_dtrange(j -> 'datetime') END AS dt, pgstac.stac_geom(j) AS g
    FROM (SELECT $1::text::jsonb AS j) search
)
SELECT array_agg(c.id ORDER BY c.id) FILTER (WHERE k.keep), count(*)
FROM pgstac.collections c CROSS JOIN s
LEFT JOIN {table} b ON b.collection = c.id
CROSS JOIN LATERAL (SELECT b.collection IS NULL OR NOT b.known OR coalesce(
    (s.dt IS NULL OR (CASE WHEN upper_inc(s.dt) THEN b.datetime_min <= upper(s.dt)
        ELSE b.datetime_min < upper(s.dt) END AND b.end_datetime_max >= lower(s.dt)))
    AND (s.g IS NULL OR st_intersects(b.extent, s.g))
    AND (b.facets IS NULL OR {facets}),
    false) AS keep) k"""

# `in` with no collection is refused by pgstac: a list that no collection can be in
# instead (pgstac ids are never empty), when every collection is ruled out.
_NONE = ""


def narrowable(search_request: Any) -> bool:
    if getattr(search_request, "collections", None) or getattr(search_request, "query", None):
        return False
    filter_expr = getattr(search_request, "filter_expr", None)
    if filter_expr is None:
        return True
    # Without an "op" pgstac takes a filter for CQL1 and translates it: left as it is.
    return getattr(search_request, "filter_lang", None) in (None, "cql2-json") and (
        isinstance(filter_expr, dict) and "op" in filter_expr
    )


async def narrow(search_request: Any, request: Request) -> Any:
    """The search to give pgstac: `search_request` itself, or a copy whose filter also names
    the only collections that can match."""
    if not request.app.state.settings.narrow_searches or not narrowable(search_request):
        return search_request
    filter_expr = getattr(search_request, "filter_expr", None)
    sql = _Sql()
    facets = sql.condition(filter_expr) if filter_expr is not None else None
    if search_request.datetime is None and search_request.bbox is None and search_request.intersects is None:
        if facets is None:
            return search_request  # nothing to narrow with
    query = _QUERY.format(table=TABLE, facets=facets or "true")
    # As pgstac will get it: text, read as jsonb in SQL (as stac-fastapi-pgstac sends it).
    search_json = search_request.model_dump_json(exclude_none=True, by_alias=True)
    try:
        async with request.app.state.get_connection(request, "r") as conn:
            kept, total = await conn.fetchrow(query, search_json, *sql.params)
    except (asyncpg.exceptions.UndefinedTableError, asyncpg.exceptions.UndefinedFunctionError):
        return search_request  # a database without the bounds: searched as it is
    except asyncpg.exceptions.PostgresError as exc:
        # A search pgstac will refuse (a bad datetime or geometry): let it say why.
        logger.debug("search not narrowed: %s: %s", type(exc).__name__, exc)
        return search_request
    kept = kept or []
    if len(kept) == total:
        return search_request
    only = {"op": "in", "args": [{"property": "collection"}, kept or [_NONE]]}
    narrowed = {"op": "and", "args": [filter_expr, only]} if filter_expr is not None else only
    return search_request.model_copy(update={"filter_expr": narrowed, "filter_lang": "cql2-json"})
