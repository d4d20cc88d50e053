"""Queryables, property indexes and summaries, derived from what is loaded.

For every collection a load touched, the item properties users filter on (the
"facets": path-template fields such as `variable_id` or `experiment_id`, CSV and
intake metadata, `variables`) are found in the database and:

- registered as pgstac queryables of the collections that have them (JSON Schema
  with `enum` when there are few values), so `/collections/{id}/queryables` lists
  them and stac-browser offers them as filters;
- given a property index (pgstac creates it on every partition), so a CQL2 filter
  such as `variable_id = 'tas' AND experiment_id = 'ssp585'` is an index lookup
  rather than a scan of every item;
- summarised in the collection (`summaries`: the values, or the range).

Extension fields (`cube:*`, `proj:*`, ...) and the free-text and time fields
that pgstac already indexes are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from psycopg import Connection
from psycopg.types.json import Jsonb

NOT_FACETS = {"datetime", "start_datetime", "end_datetime", "created", "updated", "title", "description"}
MAX_ENUM = 100  # more distinct values than this: no enum, no summary list


def is_facet(name: str) -> bool:
    return ":" not in name and name not in NOT_FACETS


FACET_STATS = """
SELECT p.key,
       jsonb_typeof(p.value) AS kind,
       count(DISTINCT p.value) AS distinct_values,
       (array_agg(DISTINCT p.value))[1:%(max_enum)s + 1] AS sample,
       min(CASE WHEN jsonb_typeof(p.value) = 'number' THEN (p.value)::text::float8 END) AS low,
       max(CASE WHEN jsonb_typeof(p.value) = 'number' THEN (p.value)::text::float8 END) AS high
FROM pgstac.items i, jsonb_each(i.content->'properties') p
WHERE i.collection = %(collection)s
GROUP BY p.key, jsonb_typeof(p.value)
"""


def facets(conn: Connection, collection_id: str) -> dict[str, dict[str, Any]]:
    """{property: stats} of the facets of one collection's items."""
    found: dict[str, dict[str, Any]] = {}
    for key, kind, distinct, sample, low, high in conn.execute(FACET_STATS, {"collection": collection_id, "max_enum": MAX_ENUM}):
        if not is_facet(key) or kind in ("object", "null"):
            continue
        if key in found:  # mixed types: keep the most common reading, as text
            found[key]["kind"] = "string"
            continue
        found[key] = {"kind": kind, "distinct": distinct, "sample": sample, "low": low, "high": high}
    return found


def _all_integers(values: Iterable[Any]) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def definition(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one facet."""
    kind = stats["kind"]
    schema: dict[str, Any] = {"title": name}
    if kind == "array":
        schema.update(type="array", items={"type": "string"})
        return schema
    if kind == "number":
        schema["type"] = "integer" if _all_integers(stats["sample"] or []) else "number"
        return schema
    schema["type"] = {"string": "string", "boolean": "boolean"}.get(kind, "string")
    if kind == "string" and stats["distinct"] <= MAX_ENUM:
        schema["enum"] = sorted(stats["sample"])
    return schema


def summary(stats: dict[str, Any]) -> Any | None:
    if stats["kind"] == "number":
        return {"minimum": stats["low"], "maximum": stats["high"]}
    if stats["kind"] in ("string", "boolean") and stats["distinct"] <= MAX_ENUM:
        return sorted(stats["sample"], key=str)
    return None


def _existing(conn: Connection, names: Iterable[str]) -> dict[str, tuple[dict[str, Any], list[str] | None]]:
    rows = conn.execute(
        "SELECT name, definition, collection_ids FROM pgstac.queryables WHERE name = ANY(%s)",
        (list(names),),
    )
    return {name: (definition or {}, ids) for name, definition, ids in rows}


def refresh(conn: Connection, collection_ids: Iterable[str]) -> dict[str, list[str]]:
    """Queryables, property indexes and summaries after a load of these collections.

    One queryables row per facet, naming every collection that has it (not one row
    per collection: pgstac's index maintenance grows with the number of rows, and
    measured 1 s per collection per row at 100 collections). Returns the facets of
    each collection.
    """
    touched = list(collection_ids)
    per_collection = {cid: facets(conn, cid) for cid in touched}
    registered = {cid: sorted(stats) for cid, stats in per_collection.items()}
    names = {name for stats in per_collection.values() for name in stats}
    existing = _existing(conn, names)
    for name in sorted(names):
        having = {cid for cid, stats in per_collection.items() if name in stats}
        old_definition, old_ids = existing.get(name, ({}, None))
        if name in existing and old_ids is None:
            continue  # an operator's queryable for every collection: leave it be
        ids = sorted((set(old_ids or []) - set(touched)) | having)
        merged = _merged_stats([per_collection[cid][name] for cid in having], old_definition)
        new_definition = definition(name, merged)
        if (new_definition, ids) == (old_definition, sorted(old_ids or [])):
            continue  # unchanged: no index maintenance
        index = None if merged["kind"] == "array" else "BTREE"
        conn.execute("SELECT pgstac.upsert_queryable(%s, %s, NULL, %s, %s)", (name, Jsonb(new_definition), index, ids))
    for cid, stats in per_collection.items():
        summaries = {name: value for name, st in stats.items() if (value := summary(st)) is not None}
        row = conn.execute("SELECT content FROM pgstac.collections WHERE id = %s", (cid,)).fetchone()
        if row is not None and summaries:
            content = row[0] if isinstance(row[0], dict) else orjson.loads(row[0])
            if content.get("summaries", {}) != {**content.get("summaries", {}), **summaries}:
                content["summaries"] = {**content.get("summaries", {}), **summaries}
                conn.execute("SELECT pgstac.update_collection(%s)", (Jsonb(content),))
    return registered


def _merged_stats(stats: list[dict[str, Any]], old_definition: dict[str, Any]) -> dict[str, Any]:
    """One facet's statistics over several collections (and the values already listed)."""
    kinds = {s["kind"] for s in stats}
    values = {orjson.dumps(v) for s in stats for v in (s["sample"] or [])}
    values |= {orjson.dumps(v) for v in old_definition.get("enum", [])}
    complete = all(s["distinct"] <= MAX_ENUM for s in stats)
    return {
        "kind": kinds.pop() if len(kinds) == 1 else "string",
        "distinct": len(values) if complete else MAX_ENUM + 1,
        "sample": [orjson.loads(v) for v in values],
        "low": min((s["low"] for s in stats if s["low"] is not None), default=None),
        "high": max((s["high"] for s in stats if s["high"] is not None), default=None),
    }
