"""A load survives the database: an interruption is a clear error and a rerun completes it.

These tests own their PostgreSQL cluster (they stop it) and run the real CLI,
`zarr-stac load`, as operators do, on a static catalogue big enough that the
load is still running when the database goes away.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from static_catalog.write import write_catalog
from zarr_stac.services.postgres import PostgresCluster

from ..conftest import own_pgstac_cluster
from ..static_catalog.test_publish import synthetic

# Their own cluster (own_pgstac_cluster), and loads of 12,000 items.
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_ITEMS = 12_000
COLLECTIONS = tuple(f"c{n}" for n in range(6))


@pytest.fixture(scope="module")
def cluster():
    with own_pgstac_cluster("faults") as cluster:  # its own: these tests stop it
        yield cluster


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("static")
    write_catalog(*synthetic(N_ITEMS, COLLECTIONS), str(out))
    return out / "catalog.json"


_counter = iter(range(1000))


def fresh_database(cluster: PostgresCluster) -> str:
    return cluster.copy_database(f"faults_{next(_counter)}")


def start_load(catalogue: Path, dsn: str) -> subprocess.Popen:
    # The DSN (with its password) goes through the environment, never argv.
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "zarr-stac"), "load", str(catalogue)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def state(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        items = conn.execute("SELECT collection, id, md5(content::text) FROM pgstac.items ORDER BY 1, 2").fetchall()
        collections = conn.execute("SELECT id, md5(content::text) FROM pgstac.collections ORDER BY 1").fetchall()
    return {"items": items, "collections": collections}


def item_count(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0]
    except psycopg.OperationalError:
        return 0


@pytest.fixture(scope="module")
def uninterrupted(cluster, catalogue) -> dict:
    dsn = fresh_database(cluster)
    load = start_load(catalogue, dsn)
    _, stderr = load.communicate(timeout=300)
    assert load.returncode == 0, stderr
    return state(dsn)


def test_stopping_postgres_mid_load_is_a_clear_error_and_a_rerun_completes_it(cluster, catalogue, uninterrupted):
    dsn = fresh_database(cluster)
    load = start_load(catalogue, dsn)
    deadline = time.monotonic() + 120
    while item_count(dsn) == 0 and load.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert load.poll() is None, "the load finished before the database could be stopped: make it bigger"
    cluster.stop()
    try:
        _, stderr = load.communicate(timeout=120)
    finally:
        cluster.start()
    assert load.returncode == 1
    assert "Traceback" not in stderr
    assert "database" in stderr.lower() and "rerun" in stderr.lower(), stderr
    assert cluster.password not in stderr
    assert 0 < item_count(dsn) < N_ITEMS, "the interruption did not happen mid-load"

    rerun = start_load(catalogue, dsn)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert state(dsn) == uninterrupted


def test_two_loaders_at_once_neither_deadlock_nor_lose_items(cluster, catalogue, uninterrupted):
    dsn = fresh_database(cluster)
    loads = [start_load(catalogue, dsn) for _ in range(2)]
    for load in loads:
        _, stderr = load.communicate(timeout=300)
        assert load.returncode == 0, stderr
    assert state(dsn) == uninterrupted
