"""Each loaded collection's bounds, for the API's narrowing (see `stac_api.collection_bounds`).

While items go by, `FacetValues` keeps, per collection, the string values of every
property (bounded: a property with a non-string value or more than MAX_VALUES values
is just "unknown"). At the end of a load, `record` reads the time range and extent of
the loaded collections from `pgstac.items` in one grouped pass, and writes a row for each.
The facet values go with it only where this load saw every item the collection has (the
database counts as many as the load saw, none refused): otherwise the row says "facets
unknown" and only time and extent narrow that collection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from .. import collection_bounds

# Collections filled per statement: each statement locks its collections' partitions and their
# indexes (about 9 locks each) until it ends, in a lock table a default PostgreSQL sizes for
# 6,400: all 10,000 collections of a load at once would not fit.
CHUNK = 25

# More distinct values than this: the property is not narrowed on (rows stay small).
MAX_VALUES = 100

_UNKNOWN = None  # a property whose values are not all known strings


class FacetValues:
    """The string values each property takes in each collection's items, as they go by."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, set[str] | None]] = {}

    def observe(self, collection_id: str, properties: dict[str, Any]) -> None:
        seen = self.values.setdefault(collection_id, {})
        for name, value in properties.items():
            if value is None:
                continue  # pgstac reads JSON null as SQL NULL: it equals nothing
            values = seen.get(name, ())
            if values is _UNKNOWN:
                continue
            if not isinstance(value, str) or "\x00" in value:  # NUL: no jsonb holds it (pgstac refuses the item)
                seen[name] = _UNKNOWN
            elif not isinstance(values, set):  # the first value (`()`)
                seen[name] = {value}
            elif value not in values:
                values.add(value)
                if len(values) > MAX_VALUES:
                    seen[name] = _UNKNOWN

    def of(self, collection_id: str) -> dict[str, list[str] | None]:
        return {
            name: sorted(values) if values is not None else None
            for name, values in self.values.get(collection_id, {}).items()
        }


# First a row that promises nothing (`known` false), committed; then the bounds read from
# the items, written only into rows still there, in one statement (one snapshot). A write to
# these collections' items that commits meanwhile deletes the row (the trigger) before it is
# filled, or waits for the fill to commit and deletes it then: either way no row keeps
# bounds that miss an item.
_PROMISE_NOTHING = f"""INSERT INTO {collection_bounds.TABLE} AS b (collection, known)
SELECT unnest(%s::text[]), false
ON CONFLICT (collection) DO UPDATE SET known = false"""
# The facets only where the database holds as many items as the load saw, none refused.
_FILL = f"""UPDATE {collection_bounds.TABLE} AS b
SET datetime_min = e.low, end_datetime_max = e.high, extent = e.extent, known = true, recorded = now(),
    facets = CASE WHEN coalesce(e.n, 0) = u.seen AND NOT u.refused THEN u.facets END
FROM unnest(%s::text[], %s::bigint[], %s::boolean[], %s::jsonb[]) AS u(collection, seen, refused, facets)
LEFT JOIN (
    SELECT collection, count(*) AS n, min(datetime) AS low, max(end_datetime) AS high,
        st_setsrid(st_extent(geometry)::geometry, 4326) AS extent
    FROM pgstac.items WHERE collection = ANY(%s::text[]) GROUP BY collection
) e ON e.collection = u.collection
WHERE b.collection = u.collection AND NOT b.known"""


def record(
    conn: Connection,
    collection_ids: Iterable[str],
    facets: FacetValues,
    seen: dict[str, int],
    refused: set[str],
) -> int:
    """Write the bounds of these collections, after their items are in; `seen` counts the
    items this load brought (or kept) per collection, `refused` names the collections with an
    item refused. Returns the number of rows filled."""
    ids = sorted(set(collection_ids))
    if not ids:
        return 0
    with conn.transaction():
        conn.execute(_PROMISE_NOTHING, (ids,))
    # One grouped pass over the items of the load's collections, CHUNK collections at a time.
    filled = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        params = (
            chunk,
            [seen.get(cid, 0) for cid in chunk],
            [cid in refused for cid in chunk],
            [Jsonb(facets.of(cid)) for cid in chunk],
            chunk,
        )
        with conn.transaction():
            filled += conn.execute(_FILL, params).rowcount
    return filled
