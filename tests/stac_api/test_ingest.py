"""Loading into pgstac: idempotent, and `may_delete` lets it delete only what a complete crawl says is gone."""

import copy
import threading
import time

import psycopg
import pytest

from stac_api.db import parse_dsn
from stac_api.loading.ingest import Ingest, load


def state(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        items = conn.execute("SELECT collection, id, md5(content::text) FROM pgstac.items ORDER BY 1, 2").fetchall()
        collections = conn.execute("SELECT id, content->'extent' FROM pgstac.collections ORDER BY 1").fetchall()
    return {"items": items, "collections": collections}


def test_loading_twice_changes_nothing(pgstac_dsn, sample_crawl):
    first = load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    before = state(pgstac_dsn)
    again = load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    assert (first.items, again.items) == (10, 10)
    assert state(pgstac_dsn) == before
    assert len(before["items"]) == 10


def test_sync_deletes_stores_that_are_gone_after_a_complete_crawl(pgstac_dsn, sample_crawl):
    load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    remaining = [i for i in sample_crawl.items if i.id != "ModelA.historical.r1i1p1f1.pr.gn"]
    report = load(pgstac_dsn, sample_crawl.collections, remaining, may_delete=lambda collection_id: True)
    assert report.deleted == 1
    assert [row[1] for row in state(pgstac_dsn)["items"] if row[1].startswith("ModelA.historical")] == [
        "ModelA.historical.r1i1p1f1.tas.gn"
    ]


def test_sync_deletes_nothing_from_a_collection_the_crawl_did_not_fully_see(pgstac_dsn, sample_crawl):
    load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    remaining = [i for i in sample_crawl.items if i.collection_id != "cmip6" or i.id.startswith("ModelB")]
    report = load(
        pgstac_dsn, sample_crawl.collections, remaining, may_delete=lambda collection_id: collection_id != "cmip6"
    )
    assert report.deleted == 0
    assert len(state(pgstac_dsn)["items"]) == 10


def test_a_partial_load_only_widens_extents(pgstac_dsn, sample_crawl):
    load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    narrow = [copy.deepcopy(c) for c in sample_crawl.collections]
    for collection in narrow:
        collection.extent.spatial.bboxes = [[0.0, 0.0, 1.0, 1.0]]
    load(pgstac_dsn, narrow, [])
    extents = dict(state(pgstac_dsn)["collections"])
    assert extents["cmip6"]["spatial"]["bbox"] == [[-180.0, -87.5, 180.0, 87.5]]


def test_a_load_into_a_database_without_pgstac_fails_clearly(pg_cluster):
    with psycopg.connect(pg_cluster._dsn_for("postgres"), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "plain"')
        conn.execute('CREATE DATABASE "plain"')
    with pytest.raises(Exception) as raised:
        load(pg_cluster._dsn_for("plain"), [], [])
    assert pg_cluster.password not in str(raised.value)


def test_an_ingest_opens_nothing_until_it_is_opened(pg_cluster, pgstac_dsn):
    database = parse_dsn(pgstac_dsn)["dbname"]
    threads = threading.active_count()
    ingest = Ingest(pgstac_dsn)
    time.sleep(0.5)  # a pool opened in the background would have connected by now
    assert (sessions_on(pg_cluster, database), threading.active_count()) == (0, threads)
    with ingest:
        assert sessions_on(pg_cluster, database) > 0
    ingest.close()  # closing twice is harmless


def sessions_on(pg_cluster, database: str) -> int:
    with psycopg.connect(pg_cluster._dsn_for("postgres"), autocommit=True) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        return conn.execute(query, (database,)).fetchone()[0]


def test_an_ingest_that_cannot_open_leaves_no_session(pg_cluster):
    """Its pools opened before the search-order index failed (no pgstac): all closed again."""
    with psycopg.connect(pg_cluster._dsn_for("postgres"), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "ingest_no_pgstac"')
        conn.execute('CREATE DATABASE "ingest_no_pgstac"')
    ingest = Ingest(pg_cluster._dsn_for("ingest_no_pgstac"))  # kept: its collection would close what leaked
    with pytest.raises(psycopg.Error):
        ingest.open()
    deadline = time.monotonic() + 10  # a closed connection's backend ends just after
    while sessions_on(pg_cluster, "ingest_no_pgstac") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sessions_on(pg_cluster, "ingest_no_pgstac") == 0
    ingest.close()  # and closing again is harmless
