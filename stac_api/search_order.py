"""The index behind the order pgstac returns items in.

pgstac sorts every item search by `datetime DESC, collection DESC, id DESC` (its
paging tokens are made of those three) but indexes only `(datetime DESC,
end_datetime)`. Where many items share a start time, as Zarr stores do (every
historical run of a CMIP model starts in 1850), PostgreSQL must then read every
matching item of every partition and sort them all to return one page: 40 ms for
a CQL2 filter matching 4,000 of 100,000 items, 135 ms for `/search` with no
filter. With an index in exactly that order it reads the first page and stops
(3 ms; figures in BENCHMARKS.md).

One index on `pgstac.items`: PostgreSQL gives every partition its copy, including
the partitions pgstac creates later. pgstac does not know it, so
`maintain_partitions(dropindexes => true)` would try to drop those copies and fail
(they belong to this index): drop `pgstac.items_search_order_idx` before, and
`zarr-stac db migrate` makes it again after.
"""

from __future__ import annotations

import psycopg

from .sql import scalar

NAME = "items_search_order_idx"
_LOCK = 0x7A61_7272  # pg_advisory_xact_lock key: one builder at a time ("zarr")


def exists(conn: psycopg.Connection) -> bool:
    return scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (f"pgstac.{NAME}",))


def ensure(conn: psycopg.Connection) -> bool:
    """Build the index unless it exists; True if it was built now. Needs to own
    `pgstac.items` (pgstac's admin role, or the superuser that migrated it)."""
    if exists(conn):
        return False
    with conn.transaction():
        # Two loaders starting together must not both create it (IF NOT EXISTS alone
        # races on the catalogue's unique names).
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        if exists(conn):
            return False
        conn.execute(f"CREATE INDEX {NAME} ON pgstac.items (datetime DESC, collection DESC, id DESC)")
    return True
