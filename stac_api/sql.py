"""The one value of a query that returns one row (`SELECT to_regclass(...) IS NOT NULL`,
a count, a flag), for the modules that talk to PostgreSQL directly."""

from __future__ import annotations

from typing import Any

from psycopg import Connection


def scalar(conn: Connection, query: Any, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    if row is None:  # only a query that returns no row at all, which callers never send
        raise LookupError(f"no row from {query!r}")
    return row[0]
