"""Loading into pgstac: idempotent, and `may_delete` lets it delete only what a complete crawl says is gone."""

import copy

import psycopg
import pytest

from stac_api.loading.ingest import load


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
