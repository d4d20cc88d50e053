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

Extension fields (`cube:*`, `proj:*`, ...), the free-text and time fields
that pgstac already indexes and the Item's own fields (`id`, `collection`, ...) are
left out. A facet whose name holds a dot (a CSV column `model.version`) is registered
with its property path, so that a filter on it reads that property (pgstac would
otherwise read `model -> version`, and the advertised queryable would match nothing).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from psycopg import Connection
from psycopg.types.json import Jsonb

from zarr_stac.common.facets import MAX_ENUM, FacetStats, is_facet, observe, summary  # noqa: F401 - one copy, shared

from ..sql import scalar

log = logging.getLogger(__name__)


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
    sample = stats["sample"] or []
    # Values of mixed types (read as text, see FacetStats.add) offer no enum of strings to pick from.
    if kind == "string" and stats["distinct"] <= MAX_ENUM and all(isinstance(v, str) for v in sample):
        schema["enum"] = sorted(sample)
    return schema


def property_path(name: str) -> list[str] | None:
    """The keys pgstac must read for the facet `name`, when its name does not say them: pgstac
    takes a dot for a step into an object (`a.b`: properties -> a -> b), but a catalogue's
    column `a.b` is one property. Without this path a filter on it would never match."""
    return ["properties", name] if "." in name else None


def _existing(
    conn: Connection, names: Iterable[str]
) -> dict[str, tuple[dict[str, Any], list[str] | None, list[str] | None]]:
    rows = conn.execute(
        "SELECT name, definition, collection_ids, property_path FROM pgstac.queryables WHERE name = ANY(%s)",
        (list(names),),
    )
    return {name: (definition or {}, ids, path) for name, definition, ids, path in rows}


def refresh(
    conn: Connection,
    observed: dict[str, dict[str, FacetStats]],
    *,
    queue_index_builds: bool = False,
    defer_trigger: bool = False,
) -> dict[str, list[str]]:
    """Queryables, property indexes and summaries after a load of these collections.

    `observed` holds each loaded collection's facet statistics, gathered as its items
    went by (scanning the items' JSON in the database instead took 34 s for 100,000
    items). One queryables row per facet, naming every collection that has it (not
    one row per collection: pgstac's index maintenance grows with the number of
    rows: 1 s per collection per row at 100 collections); only facets whose row
    changes are registered again, since each builds an index on every partition.
    Returns the facets of each collection.
    """
    touched = list(observed)
    per_collection = {
        cid: {name: st.as_dict() for name, st in stats.items() if st.kind} for cid, stats in observed.items()
    }
    registered = {cid: sorted(stats) for cid, stats in per_collection.items()}
    names = {name for stats in per_collection.values() for name in stats}
    existing = _existing(conn, names)
    upserts = []
    for name in sorted(names):
        having = {cid for cid, stats in per_collection.items() if name in stats}
        old_definition, old_ids, old_path = existing.get(name, ({}, None, None))
        if name in existing and old_ids is None:
            continue  # an operator's queryable for every collection: leave it be
        ids = sorted((set(old_ids or []) - set(touched)) | having)
        merged = _merged_stats([per_collection[cid][name] for cid in having], old_definition)
        new_definition = definition(name, merged)
        if (new_definition, ids, property_path(name)) == (old_definition, sorted(old_ids or []), old_path):
            continue  # unchanged: no index maintenance
        index = None if merged["kind"] == "array" else "BTREE"
        upserts.append((name, Jsonb(new_definition), index, ids))
    # The index builds they cause (one per partition) are queued when
    # `queue_index_builds`, for `build_queued_indexes`.
    with _queued(conn, queue_index_builds):
        register(conn, upserts, defer=defer_trigger)
    for cid, stats in per_collection.items():
        summaries = {name: value for name, st in stats.items() if (value := summary(st)) is not None}
        row = conn.execute("SELECT content FROM pgstac.collections WHERE id = %s", (cid,)).fetchone()
        if row is not None and summaries:
            content = row[0] if isinstance(row[0], dict) else orjson.loads(row[0])
            if content.get("summaries", {}) != {**content.get("summaries", {}), **summaries}:
                content["summaries"] = {**content.get("summaries", {}), **summaries}
                conn.execute("SELECT pgstac.update_collection(%s)", (Jsonb(content),))
    return registered


# pgstac's `upsert_queryable`, for many rows at once: the same advisory locks, the
# same deletion of the rows each new one conflicts with, then ONE insert. pgstac's
# statement trigger on queryables (`queryables_trigger_func`: `maintain_partitions`
# of every partition the new rows name) then runs once for the load instead of once
# per facet: facets x collections partition checks became collections (35 s of 45 s
# at 100,000 items in 1,000 collections). Its row triggers (the checks of each row,
# the reference index) run per row as before, and rows get their ids in this order.
_LOCK = """SELECT pg_advisory_xact_lock(hashtext(n))
FROM (SELECT DISTINCT pgstac.strip_properties_prefix(n) AS n FROM unnest(%(names)s::text[]) n ORDER BY 1) s"""
_ROWS = """SELECT r.ord, r.name, r.definition, r.index_type, pgstac.canonical_collection_ids(
    ARRAY(SELECT jsonb_array_elements_text(r.ids))) AS collection_ids,
    ARRAY(SELECT jsonb_array_elements_text(r.path)) AS path
FROM unnest(%(names)s::text[], %(definitions)s::jsonb[], %(index_types)s::text[], %(ids)s::jsonb[],
    %(paths)s::jsonb[]) WITH ORDINALITY AS r(name, definition, index_type, ids, path, ord)"""
_DELETE = f"""DELETE FROM pgstac.queryables q USING ({_ROWS}) r,
    LATERAL pgstac.conflicting_queryables(r.name, r.collection_ids) c
WHERE q.id = c.id"""
_INSERT = f"""INSERT INTO pgstac.queryables
    (name, definition, property_wrapper, property_index_type, collection_ids, property_path)
SELECT r.name, r.definition, NULL, r.index_type, r.collection_ids, nullif(r.path, '{{}}')
FROM ({_ROWS}) r ORDER BY r.ord"""


# Where the role owns pgstac.queryables, the statement trigger is also deferred: disabled
# in the transaction (other sessions never see it off; writers of queryables wait, readers
# do not), and the maintenance it would do, `maintain_partitions` of each named partition,
# done for all of them in one pass over the catalogue: `maintain_reference_index()`, then
# pgstac's `maintain_index` statements of the partitions of these collections, run or
# queued as `run_or_queue` does in the trigger (16 ms per partition, 200 partitions in 0.2 s).
_MAY_DEFER = """SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c
WHERE c.oid = to_regclass('pgstac.queryables')
    AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'queryables_insert_trigger')"""
_MAINTAIN = """SELECT count(pgstac.run_or_queue(format('SELECT maintain_index(%%L,%%L,%%L,%%L,%%L);',
    partition, indexname, queryable_id, false, false)))
FROM pgstac.queryable_indexes('items', true)
WHERE queryable_id IS NOT NULL AND collection = ANY(%(collections)s::text[])"""


def may_defer_trigger(conn: Connection) -> bool:
    """Whether this role may disable pgstac's statement trigger on queryables (it owns the table)."""
    row = conn.execute(_MAY_DEFER).fetchone()
    return bool(row and row[0])


def register(conn: Connection, upserts: list[tuple[str, Jsonb, str | None, list[str]]], *, defer: bool) -> None:
    """`pgstac.upsert_queryable(name, definition, NULL, index_type, collection_ids,
    property_path(name))` of each row, in one transaction and with one INSERT (so pgstac's statement trigger runs
    once); with `defer`, the trigger's work is done in one pass instead."""
    if not upserts:
        return
    params = {
        "names": [name for name, _, _, _ in upserts],
        "definitions": [definition for _, definition, _, _ in upserts],
        "index_types": [index for _, _, index, _ in upserts],
        "ids": [Jsonb(ids) for _, _, _, ids in upserts],
        "paths": [Jsonb(property_path(name) or []) for name, _, _, _ in upserts],
        "collections": sorted({cid for _, _, _, ids in upserts for cid in ids}),
    }
    with conn.transaction():
        conn.execute(_LOCK, params)
        conn.execute(_DELETE, params)
        if not defer:
            conn.execute(_INSERT, params)
            return
        conn.execute("ALTER TABLE pgstac.queryables DISABLE TRIGGER queryables_insert_trigger")
        conn.execute(_INSERT, params)
        conn.execute("ALTER TABLE pgstac.queryables ENABLE TRIGGER queryables_insert_trigger")
        conn.execute("SELECT pgstac.maintain_reference_index()")
        conn.execute(_MAINTAIN, params)


def can_build_in_parallel(conn: Connection) -> bool:
    """Whether this role may run pgstac's queue (pgstac_admin and owners may, pgstac_ingest not)."""
    return bool(scalar(conn, "SELECT has_function_privilege('pgstac.run_queued_query()', 'EXECUTE')"))


@contextmanager
def _queued(conn: Connection, on: bool) -> Iterator[None]:
    """pgstac's `use_queue` for this session: maintenance statements are queued, not run."""
    if not on:
        yield
        return
    conn.execute("SELECT set_config('pgstac.use_queue', 'on', false)")
    try:
        yield
    finally:
        conn.execute("SELECT set_config('pgstac.use_queue', '', false)")


QUEUED_INDEX = re.compile(r"SELECT maintain_index\('([^']+)'")


def queued_by_partition(conn: Connection) -> list[list[str]]:
    """pgstac's queued statements, grouped by the partition they build indexes on.

    Each group must run on one connection, one statement after the other: index
    builds on the same table at once collide on PostgreSQL's generated index names.
    Groups run in parallel, so N connections build N indexes at a time (a
    registration of 5 facets on 1,000 collections is 5,000 small index builds).
    """
    groups: dict[str, list[str]] = {}
    for (query,) in conn.execute("SELECT query FROM pgstac.query_queue ORDER BY added"):
        match = QUEUED_INDEX.match(query)
        groups.setdefault(match.group(1) if match else "", []).append(query)
    return list(groups.values())


def run_queued(conn: Connection, statements: list[str]) -> None:
    """Run queued statements and take them off pgstac's queue; a failure stays queued."""
    for statement in statements:
        try:
            conn.execute(statement)
        except Exception as exc:  # noqa: BLE001 - left for pgstac's own runner, below
            log.warning(
                "queued pgstac statement failed, retried later: %s: %s",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            continue
        conn.execute("DELETE FROM pgstac.query_queue WHERE query = %s", (statement,))


def run_queue_to_the_end(conn: Connection) -> None:
    """pgstac's own runner, for what `run_queued` left (it retries and keeps a history)."""
    while scalar(conn, "SELECT pgstac.run_queued_query()"):
        pass


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
