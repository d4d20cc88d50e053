"""A throw-away PostgreSQL cluster with pgstac for the benchmarks (as the tests have)."""

import contextlib
import tempfile
from pathlib import Path

from zarr_stac.services import PostgresCluster, ensure_postgis, free_port


@contextlib.contextmanager
def cluster():
    ensure_postgis(install=False)
    root = Path(tempfile.mkdtemp(prefix="zarr-stac-bench-pg-"))
    root.chmod(0o755)  # the postgres user must reach it when we are root
    pg = PostgresCluster(root, port=free_port(), durable=False)
    pg.start()
    pg.migrate()
    try:
        yield pg
    finally:
        pg.destroy()


def database_for(pg, engine: str, name: str) -> str:
    """A fresh copy of the migrated database for `engine`: zarr-stac's as `zarr-stac db
    migrate` leaves it; the peer's (stock pypgstac or stac-fastapi-pgstac) as `pypgstac
    migrate` alone does, without zarr-stac's search-order index."""
    import psycopg

    from stac_api import search_order

    dsn = pg.copy_database(name)
    if engine != "zarr-stac":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP INDEX pgstac.{search_order.NAME}")
    return dsn
