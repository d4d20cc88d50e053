"""The index of pgstac's search order: made by `migrate`, by a load where it is
missing, and what the first page of a search is read from."""

import json
import secrets
from datetime import datetime, timezone
from urllib.parse import quote

import psycopg
import pystac
import pytest

from stac_api import search_order
from stac_api.loading.ingest import Ingest, load


def partitions_without_the_index(dsn: str) -> list[str]:
    """Leaf partitions of pgstac.items that carry no copy of the search order index."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """
            SELECT t.relid::regclass::text FROM pg_partition_tree('pgstac.items') t
            WHERE t.isleaf AND NOT EXISTS (
                SELECT FROM pg_partition_tree(to_regclass(%s)) i
                JOIN pg_index x ON x.indexrelid = i.relid
                WHERE x.indrelid = t.relid)
            """,
            (f"pgstac.{search_order.NAME}",),
        ).fetchall()
    return [row[0] for row in rows]


def drop_the_index(dsn: str) -> None:
    """As a database that `pypgstac migrate` alone installed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP INDEX pgstac.{search_order.NAME}")


def has_the_index(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return search_order.exists(conn)


def test_migrate_makes_it_and_every_partition_a_load_creates_has_its_copy(pgstac_dsn, sample_crawl):
    assert has_the_index(pgstac_dsn)
    report = load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    assert report.notes == []
    assert partitions_without_the_index(pgstac_dsn) == []


def test_a_load_makes_it_where_pypgstac_alone_migrated(pgstac_dsn, sample_crawl):
    drop_the_index(pgstac_dsn)
    report = load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    assert has_the_index(pgstac_dsn) and partitions_without_the_index(pgstac_dsn) == []
    assert [w for w in report.notes if search_order.NAME in w and "built" in w]


def test_a_role_that_may_not_index_items_still_loads_and_is_told_why_searches_are_slow(
    pg_cluster, pgstac_dsn, sample_crawl
):
    drop_the_index(pgstac_dsn)
    role, password = f"ingest_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE pgstac_ingest")
    dsn = pgstac_dsn.replace(
        f"{pg_cluster.user}:{quote(pg_cluster.password, safe='')}@", f"{role}:{quote(password, safe='')}@"
    )
    assert dsn != pgstac_dsn

    report = load(dsn, sample_crawl.collections, sample_crawl.items)

    assert report.items == len(sample_crawl.items)
    assert not has_the_index(pgstac_dsn)
    (note,) = [w for w in report.notes if search_order.NAME in w]
    assert "zarr-stac db migrate" in note and password not in note


def model_collection(name: str) -> pystac.Collection:
    extent = pystac.Extent(
        pystac.SpatialExtent([[-180, -90, 180, 90]]),
        pystac.TemporalExtent([[datetime(1850, 1, 1, tzinfo=timezone.utc), None]]),
    )
    return pystac.Collection(name, f"The runs of {name}.", extent)


def first_page_plan(conn: psycopg.Connection, search: dict) -> str:
    """The plan of the statement pgstac's `search_rows` runs for the first page."""
    conn.execute("SET search_path TO pgstac, public")
    where, orderby = conn.execute(
        "SELECT _where, orderby FROM search_query(%s::jsonb)", (json.dumps(search),)
    ).fetchone()
    statement = (
        "SELECT * FROM pgstac.items WHERE datetime >= '-infinity' AND datetime < 'infinity' "
        f"AND ({where}) ORDER BY {orderby} LIMIT 11"
    )
    return json.dumps(conn.execute(f"EXPLAIN (FORMAT JSON) {statement}").fetchone()[0])


@pytest.mark.parametrize(
    "search",
    [
        pytest.param({}, id="no filter"),
        pytest.param(
            {"filter-lang": "cql2-json", "filter": {"op": "=", "args": [{"property": "experiment_id"}, "ssp585"]}},
            id="a facet",
        ),
        pytest.param({"collections": ["model-b"]}, id="one collection"),
    ],
)
def test_the_first_page_is_read_in_order_not_sorted_when_many_items_share_a_start_time(pgstac_dsn, search):
    # Two models' runs, all starting in 1850 as historical runs do: nothing but the
    # index tells which 11 of them come first.
    with Ingest(pgstac_dsn) as ingest:
        for n in range(3000):
            ingest.add(
                {
                    "type": "Feature",
                    "stac_version": "1.1.0",
                    "id": f"run-{n:05d}",
                    "collection": f"model-{'ab'[n % 2]}",
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]],
                    },
                    "bbox": [-180, -90, 180, 90],
                    "properties": {
                        "datetime": None,
                        "start_datetime": "1850-01-01T00:00:00Z",
                        "end_datetime": "2014-12-31T00:00:00Z",
                        "experiment_id": ["historical", "ssp585"][n // 2 % 2],
                    },
                    "links": [],
                    "assets": {},
                }
            )
        # Their collections, so that the facet gets its queryable and property index.
        ingest.finish([model_collection(name) for name in ("model-a", "model-b")])
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE pgstac.items")
        plan = first_page_plan(conn, search)
    assert '"Sort"' not in plan and "Incremental Sort" not in plan, plan
    assert "datetime_collection_id_idx" in plan, plan  # the partitions' copies of the index
