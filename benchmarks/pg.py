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
