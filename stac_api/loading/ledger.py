"""Where pgstac's database keeps the crawl's ledger (see loaders.running.ledger): `zarr_stac.ledger`.

One row per set of sources (a load of `s3://a` and one of `s3://b` into one database keep
a ledger each), holding the gzip-compressed ledger and its MD5: a load that changed nothing
rewrites nothing. The ledger is only ever a shortcut: without it (a new database, a role
that may not create the table) every store is read, as on a first load.
"""

from __future__ import annotations

import hashlib

from psycopg import Connection

from ..sql import scalar

SCHEMA = "zarr_stac"
TABLE = f"{SCHEMA}.ledger"
_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {TABLE} (
    sources text PRIMARY KEY,
    md5 text NOT NULL,
    data bytea NOT NULL,
    saved timestamptz NOT NULL DEFAULT now()
)
"""
_LOCK = 7_366_024_011  # creating the table once when two loads start together


def read(conn: Connection, sources: str) -> bytes | None:
    """The ledger the last load of `sources` kept, if any."""
    if not scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (TABLE,)):
        return None
    row = conn.execute(f"SELECT data FROM {TABLE} WHERE sources = %s", (sources,)).fetchone()
    return None if row is None else bytes(row[0])


def save(conn: Connection, sources: str, data: bytes) -> bool:
    """Keep `data` as the ledger of `sources`; False when it was the same already. Raises
    psycopg.errors.InsufficientPrivilege when this role may not create the table."""
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        if not scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (TABLE,)):
            conn.execute(_CREATE)
        changed = conn.execute(
            f"INSERT INTO {TABLE} (sources, md5, data) VALUES (%s, %s, %s) "
            f"ON CONFLICT (sources) DO UPDATE SET md5 = EXCLUDED.md5, data = EXCLUDED.data, saved = now() "
            f"WHERE {TABLE}.md5 <> EXCLUDED.md5",
            (sources, digest, data),
        ).rowcount
    return bool(changed)
