"""A search over more partitions than the database's lock table holds gets a 503 that says so
(not "database unavailable"), and the same search narrowed to a few collections answers.

The database is a cluster of its own with a lock table far too small for its 150 collections
(max_locks_per_transaction 10): what a default PostgreSQL is to 10,000 collections.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pystac
import pytest

from stac_api.loading.ingest import load
from tests.conftest import serve_api
from zarr_stac.services import PostgresCluster, ensure_postgis, free_port

N_COLLECTIONS = 150


@pytest.fixture(scope="module")
def small_lock_table_dsn():
    ensure_postgis(install=False)
    root = Path(tempfile.mkdtemp(prefix="zarr-stac-pg-locks-"))
    root.chmod(0o755)  # the postgres user must reach it when we are root
    cluster = PostgresCluster(
        root,
        port=free_port(),
        durable=False,
        settings={"max_locks_per_transaction": "10", "max_connections": "20"},
    )
    try:
        cluster.start()
        cluster.migrate()
        collections, items = [], []
        for n in range(N_COLLECTIONS):
            cid = f"c{n:03d}"
            west = -180 + n * 2
            collections.append(
                pystac.Collection(
                    cid,
                    cid,
                    pystac.Extent(
                        pystac.SpatialExtent([[west, 0, west + 1, 1]]),
                        pystac.TemporalExtent([[datetime(2000, 1, 1, tzinfo=UTC), None]]),
                    ),
                )
            )
            geometry = {
                "type": "Polygon",
                "coordinates": [[[west, 0], [west + 1, 0], [west + 1, 1], [west, 1], [west, 0]]],
            }
            items.append(
                pystac.Item(
                    f"{cid}-item",
                    geometry,
                    [west, 0, west + 1, 1],
                    datetime(2000, 1, 1, tzinfo=UTC),
                    {"variable_id": "tas" if n % 2 else "pr"},
                    collection=cid,
                )
            )
        load(cluster.dsn, collections, items)
        yield cluster.dsn
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def api(small_lock_table_dsn):
    with serve_api(small_lock_table_dsn) as live:
        yield live.url


# `not` and `like` rule no collection out: pgstac plans every partition.
UNNARROWABLE = {"op": "not", "args": [{"op": "like", "args": [{"property": "variable_id"}, "x%"]}]}


def test_a_search_over_too_many_partitions_says_it_is_too_large(api):
    response = httpx.post(f"{api}/search", json={"filter": UNNARROWABLE, "filter-lang": "cql2-json"}, timeout=60)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "SearchTooLarge"
    assert "max_locks_per_transaction" in body["description"]
    assert "Retry-After" not in response.headers


def test_the_same_search_narrowed_by_bbox_answers(api):
    # Two collections' extents touch this box: pgstac plans two partitions.
    search = {"filter": UNNARROWABLE, "filter-lang": "cql2-json", "bbox": [-179.5, 0.2, -177.5, 0.8]}
    response = httpx.post(f"{api}/search", json=search, timeout=60)
    assert response.status_code == 200, response.text
    assert {f["id"] for f in response.json()["features"]} == {"c000-item", "c001-item"}


def test_the_api_answers_again_afterwards(api):
    assert httpx.get(f"{api}/collections/c003/items", timeout=60).status_code == 200


def test_the_project_cluster_holds_the_locks_of_searches_over_10000_collections(pg_cluster):
    # What a search over every partition locks: each partition and its ~8 indexes; two at once.
    with psycopg.connect(pg_cluster.dsn) as conn:
        locks = int(conn.execute("SHOW max_locks_per_transaction").fetchone()[0])
        connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    assert locks * connections >= 2 * 10_000 * 9
