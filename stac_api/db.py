"""Connections to a pgstac database: one DSN parser, a pool, migration, and checks
that say in one line what is wrong with a database before anything is loaded or served.

A DSN is a URL (`postgresql://USER:PASSWORD@HOST:PORT/DB`) or libpq key/value pairs
(`host=... dbname=... user=...`); both are read by libpq's own parser (psycopg's
`conninfo_to_dict`), for loading, serving and the local cluster alike. Only
`host:port/database` of it is ever printed: never the user's password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool
from pypgstac.db import PgstacDB
from pypgstac.db import settings as pgstac_settings
from pypgstac.migrate import Migrate

from . import collection_bounds, search_order
from .sql import scalar

# Seconds to wait for a connection before the database counts as gone: pypgstac's
# pool waits 30 s on every reconnection, so a lost database took 30 s or more to report.
CONNECT_TIMEOUT = 10.0
MIGRATE_ADVICE = "run `zarr-stac db migrate` (with the same --dsn) to install it"


class DsnError(ValueError):
    """A DSN libpq cannot parse; the message never quotes it (it may hold a password)."""


class DatabaseProblem(RuntimeError):
    """A database that cannot be used, and why, in one line that names only host:port/db."""


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The parts of a DSN (URL or key/value), as libpq reads them."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise DsnError(
            "the database DSN cannot be parsed: use postgresql://USER:PASSWORD@HOST:PORT/DB "
            "or host=... dbname=... user=..."
        ) from None


def public_dsn(dsn: str) -> str:
    """`host:port/database` of a DSN: what a message may name (never user or password)."""
    try:
        parts = parse_dsn(dsn)
    except DsnError:
        return "the configured database"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', parts.get('user', ''))}"


def cause(exc: BaseException) -> str:
    """Why a connection failed, as a person fixing it needs to hear it."""
    text = " ".join(str(exc).split()).lower()
    if "password authentication failed" in text or "authentication failed" in text or "no password supplied" in text:
        return "authentication failed: check the user and password of the DSN"
    if "does not exist" in text and "database" in text:
        return "no such database on this server"
    if "role" in text and "does not exist" in text:
        return "no such user (role) on this server"
    if "could not translate host name" in text or "name or service not known" in text:
        return "unreachable: unknown host name"
    if "connection refused" in text or "timeout expired" in text or "timed out" in text or "no route to host" in text:
        return "unreachable: nothing answers there (is PostgreSQL running, and the host and port right?)"
    if "terminating connection" in text or "server closed the connection" in text or "consuming input failed" in text:
        return "the server closed the connection (restarted or shut down)"
    return " ".join(str(exc).split()) or type(exc).__name__


def check(dsn: str, *, pgstac: bool = True) -> None:
    """Raise `DatabaseProblem` unless the database answers (and, with `pgstac`, has
    pgstac installed). One short connection: no pool, no retries, no waiting."""
    try:
        parse_dsn(dsn)
    except DsnError as exc:
        raise DatabaseProblem(str(exc)) from None
    where = public_dsn(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=int(CONNECT_TIMEOUT), autocommit=True) as conn:
            if pgstac and scalar(conn, "SELECT to_regnamespace('pgstac') IS NULL"):
                raise DatabaseProblem(f"the database at {where} has no pgstac: {MIGRATE_ADVICE}")
    except psycopg.Error as exc:
        reason = cause(exc)
        again = "; rerun the same command once it answers" if is_transient(reason) else ""
        raise DatabaseProblem(f"the database at {where} failed while connecting: {reason}{again}") from None


def is_transient(reason: str) -> bool:
    """Whether a `cause` may go away by itself (a rerun helps), unlike a wrong password."""
    return reason.startswith(("unreachable", "the server closed"))


@contextmanager
def open_pgstac(dsn: str) -> Iterator[PgstacDB]:
    """pypgstac's database object on a pool that gives up after CONNECT_TIMEOUT. On the
    way out, whatever raised, its connection goes back and the pool is closed (pypgstac's
    own exit drops the pool open; a pool's close leaves a connection that is out open)."""
    pool = ConnectionPool(
        conninfo=dsn,
        min_size=pgstac_settings.db_min_conn_size,
        max_size=pgstac_settings.db_max_conn_size,
        max_idle=pgstac_settings.db_max_idle,
        timeout=CONNECT_TIMEOUT,
        kwargs={"connect_timeout": int(CONNECT_TIMEOUT)},
        open=True,
    )
    db = PgstacDB(dsn=dsn, pool=pool)
    try:
        yield db
    finally:
        db.disconnect()
        pool.close()


def migrate(dsn: str) -> str:
    """Install or upgrade pgstac in the database, with the index of its search order
    (`search_order`) and the table of collection bounds (`collection_bounds`); returns the
    pgstac version."""
    with open_pgstac(dsn) as db:
        version = Migrate(db).run_migration()
        conn = db.connect()
        conn.execute("RESET ROLE")  # pgstac's migration ends its session as pgstac_ingest
        search_order.ensure(conn)
        collection_bounds.ensure(conn)
        return version
