"""The partitions of a load's new collections, made in one pass rather than one by one.

pgstac makes a collection's partition when its first items arrive (`check_partition`, called
by pypgstac per partition): the table, its constraints, and `maintain_partitions` of that
partition, a pass over the catalogue of every partition that grows with their number (17 ms
of check_partition's 60 ms at 1,000 collections). Per new collection, that was the load's
bound: 126 items/s at 10,000 collections of 10 items (issue 27).

Before the waiting items are loaded, the partitions of the collections that have none are
made here as `check_partition` makes them (same name, unique id index, grant, constraints on
the items' time ranges, `partition_stats` row), CHUNK to a transaction, and then the property
indexes of all of them in one pass (`maintain_index` of each missing one, as
`maintain_partitions` would). pgstac's `check_partition` then finds each partition with
constraints that already cover its items and returns at once. Only where this role owns
`pgstac.items` (pgstac's admin); otherwise pgstac makes them one by one as before. A collection
partitioned by time (`partition_trunc`), or whose items' times cannot be read, is left to pgstac.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg import Connection, sql

CHUNK = 100  # partitions per transaction (each holds ~10 locks until it commits)


class TimeRanges:
    """Per collection, the least and greatest `datetime` and `end_datetime` pgstac will give its items."""

    def __init__(self) -> None:
        self.ranges: dict[str, list[datetime] | None] = {}

    def observe(self, collection_id: str, properties: dict[str, Any]) -> None:
        known = self.ranges.get(collection_id, [])
        if known is None:
            return
        try:
            start, end = properties.get("start_datetime"), properties.get("end_datetime")
            if start is not None and end is not None:  # pgstac's stac_daterange
                low, high = datetime.fromisoformat(start), datetime.fromisoformat(end)
            else:
                low = high = datetime.fromisoformat(properties["datetime"])
            if low.tzinfo is None or high.tzinfo is None:
                raise ValueError("no time zone")
        except (KeyError, TypeError, ValueError):
            self.ranges[collection_id] = None  # left to pgstac
            return
        if not known:
            self.ranges[collection_id] = [low, low, high, high]
            return
        known[0], known[1] = min(known[0], low), max(known[1], low)
        known[2], known[3] = min(known[2], high), max(known[3], high)


def owner(conn: Connection) -> str | None:
    """The owner of `pgstac.items` if this role may act as it (add partitions), else None."""
    row = conn.execute(
        "SELECT relowner::regrole::text, pg_has_role(relowner, 'MEMBER') FROM pg_class "
        "WHERE oid = to_regclass('pgstac.items')"
    ).fetchone()
    return row[0] if row and row[1] else None


_NEW = """SELECT c.id, c.key FROM pgstac.collections c
WHERE c.id = ANY(%s) AND c.partition_trunc IS NULL
    AND NOT EXISTS (SELECT FROM pgstac.partition_stats p WHERE p.collection = c.id)
    AND to_regclass(format('pgstac._items_%%s', c.key)) IS NULL"""
_CONSTRAIN = "SELECT pgstac.create_table_constraints(%s, tstzrange(%s, %s, '[]'), tstzrange(%s, %s, '[]'))"
_STATS = """INSERT INTO pgstac.partition_stats (partition, collection, partition_dtrange)
VALUES (%s, %s, '[-infinity,infinity]') ON CONFLICT (partition) DO NOTHING"""
_INDEXES = """SELECT pgstac.maintain_index(partition, indexname, queryable_id, false, false)
FROM pgstac.queryable_indexes('items', true)
WHERE queryable_id IS NOT NULL AND indexname IS NULL AND partition = ANY(%s)"""


def create_missing(conn: Connection, collection_ids: Iterable[str], times: TimeRanges) -> int:
    """Make the partitions these collections lack (see the module); returns how many."""
    role = owner(conn)
    if role is None:
        return 0
    # As the owner of items, as pgstac's SECURITY DEFINER functions make them: its
    # maintain_index may only index tables that role owns.
    as_owner = sql.SQL("SET LOCAL ROLE {}").format(sql.SQL(role))
    wanted = [cid for cid in collection_ids if times.ranges.get(cid)]
    if not wanted:
        return 0
    new = conn.execute(_NEW, (wanted,)).fetchall()
    made: list[str] = []
    for start in range(0, len(new), CHUNK):
        with conn.transaction():
            conn.execute(as_owner)
            for cid, key in new[start : start + CHUNK]:
                name = f"_items_{key}"
                low, high, elow, ehigh = times.ranges[cid]  # type: ignore[misc]
                table = sql.Identifier("pgstac", name)
                conn.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF pgstac.items FOR VALUES IN ({})").format(
                        table, sql.Literal(cid)
                    )
                )
                conn.execute(sql.SQL("CREATE UNIQUE INDEX {} ON {} (id)").format(sql.Identifier(f"{name}_pk"), table))
                conn.execute(sql.SQL("GRANT ALL ON {} TO pgstac_ingest").format(table))
                conn.execute(_CONSTRAIN, (name, low, high, elow, ehigh))
                conn.execute(_STATS, (name, cid))
                made.append(name)
    if made:
        # What check_partition's maintain_partitions does for each: once for all of them.
        with conn.transaction():
            conn.execute(as_owner)
            conn.execute("SELECT pgstac.maintain_reference_index()")
            conn.execute(_INDEXES, (made,))
    return len(made)
