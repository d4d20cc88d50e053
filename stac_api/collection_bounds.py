"""What each collection's items can match, kept beside pgstac: `zarr_stac.collection_bounds`.

pgstac keeps one partition per collection and plans every partition for a search that
names no collection: over 10,000 collections that is seconds, or "out of shared memory"
(a lock on each partition and index). The API narrows such a search first
(`serving.narrowing`) to the collections whose bounds it can match; this table holds
those bounds, one row per collection, written by each load (`loading.bounds`):

- `datetime_min`, `end_datetime_max`, `extent`: the least `datetime`, the greatest
  `end_datetime` and the 2-D extent (EPSG:4326) of the collection's items, read from
  `pgstac.items` itself (the columns pgstac's search filters on);
- `facets`: for each property of the collection's items, the string values it takes (all
  of them), or null where a value is not a string or there are too many. NULL (the whole
  column): not known (a load that did not see every item of the collection);
- `known`: false while a load is still reading the bounds (the row promises nothing yet).

A row is a promise that no item outside these bounds exists, so any write to the items of
a collection must break it: a row trigger on `pgstac.items` deletes the row of the
collection of every item inserted or updated, whoever writes it (the transactions API,
psql, pypgstac, whose loader copies straight into the partitions, where no statement trigger
of `pgstac.items` fires; PostgreSQL gives every partition, later ones too, its copy of a row
trigger). Deletions are left alone: bounds of fewer items still hold. A collection without a row (or
not `known`) is never narrowed away; a load writes the rows of its collections again once
its items are in (`loading.bounds.record`: how it never keeps bounds a concurrent write broke).
"""

from __future__ import annotations

import psycopg

SCHEMA = "zarr_stac"
TABLE = f"{SCHEMA}.collection_bounds"
TRIGGER_FUNCTION = f"{SCHEMA}.forget_collection_bounds"
_LOCK = 0x7A61_7262  # pg_advisory_xact_lock key: one creator at a time

_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {TABLE} (
    collection text PRIMARY KEY,
    datetime_min timestamptz,
    end_datetime_max timestamptz,
    extent geometry,
    facets jsonb,
    known boolean NOT NULL DEFAULT false,
    recorded timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION}() RETURNS trigger AS $$
BEGIN
    -- After the first item of a collection, a probe of the primary key that finds nothing.
    DELETE FROM {TABLE} WHERE collection = NEW.collection;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- Any writer of items (pgstac_ingest, the transactions API's role) forgets bounds through the
-- trigger, as its owner (SECURITY DEFINER); loads by pgstac_ingest write them, the API reads them.
GRANT USAGE ON SCHEMA {SCHEMA} TO pgstac_read, pgstac_ingest;
GRANT SELECT ON {TABLE} TO pgstac_read;
GRANT SELECT, INSERT, UPDATE ON {TABLE} TO pgstac_ingest;
"""
_TRIGGERS = {"write": "AFTER INSERT OR UPDATE ON pgstac.items FOR EACH ROW"}


def trigger_name(event: str) -> str:
    return f"zarr_stac_forget_bounds_after_{event}"


def exists(conn: psycopg.Connection) -> bool:
    """Whether the table and all its triggers are there (without the triggers the rows cannot be trusted)."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AND (SELECT count(*) FROM pg_trigger "
        "WHERE tgrelid = 'pgstac.items'::regclass AND tgname = ANY(%s)) = %s",
        (TABLE, [trigger_name(e) for e in _TRIGGERS], len(_TRIGGERS)),
    ).fetchone()
    return bool(row and row[0])


def ensure(conn: psycopg.Connection) -> bool:
    """Create the table and the triggers unless they exist; True if made now. Needs to own
    `pgstac.items` (raises psycopg.errors.InsufficientPrivilege otherwise)."""
    if exists(conn):
        return False
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        if exists(conn):
            return False
        conn.execute(_CREATE)
        # Rows written before the triggers existed (if any) were never guarded: forget them.
        conn.execute(f"TRUNCATE {TABLE}")
        for event, clause in _TRIGGERS.items():
            name = trigger_name(event)
            conn.execute(f"DROP TRIGGER IF EXISTS {name} ON pgstac.items")
            conn.execute(f"CREATE TRIGGER {name} {clause} EXECUTE FUNCTION {TRIGGER_FUNCTION}()")
    return True
