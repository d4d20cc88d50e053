"""The partitions of a load's new collections, made in one pass, are what pgstac's
`check_partition` makes one by one: the same tables, owners, indexes, constraints and
`partition_stats` rows; and pgstac's own per-partition pass is then not run for them."""

from __future__ import annotations

import copy

import psycopg
import pytest

from stac_api.loading import partitions
from stac_api.loading.ingest import load


def database_state(dsn: str) -> dict:
    """Partitions as pgstac's catalogue sees them (by collection, not by generated key)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO pgstac, public")
        key = "(SELECT id FROM collections WHERE format('_items_%s', key) = {})"
        tables = conn.execute(
            f"SELECT {key.format('tablename')}, tableowner FROM pg_tables WHERE tablename ~ '^_items_' ORDER BY 1"
        ).fetchall()
        indexes = conn.execute(
            f"SELECT {key.format('tablename')}, indexdef_unnamed(indexdef, tablename) FROM pg_indexes"
            " WHERE tablename ~ '^_items_' ORDER BY 1, 2"
        ).fetchall()
        meta = conn.execute(
            "SELECT m.collection, m.partition_dtrange::text, m.constraint_dtrange::text, m.constraint_edtrange::text"
            " FROM partition_stats p, LATERAL partition_catalog_meta(p.partition) m ORDER BY 1"
        ).fetchall()
        stats = conn.execute(
            "SELECT collection, partition_dtrange::text, dtrange::text, edtrange::text FROM partition_stats ORDER BY 1"
        ).fetchall()
        grants = conn.execute(
            f"SELECT {key.format('table_name')}, privilege_type FROM information_schema.role_table_grants"
            " WHERE table_name ~ '^_items_' AND grantee = 'pgstac_ingest' ORDER BY 1, 2"
        ).fetchall()
        queued = conn.execute("SELECT query FROM query_queue").fetchall()
    return {"tables": tables, "indexes": indexes, "meta": meta, "stats": stats, "grants": grants, "queued": queued}


def load_twice(dsn: str, crawl) -> tuple[dict, dict]:
    """A load into a fresh database, then one with items that widen the time ranges."""
    load(dsn, crawl.collections, crawl.items)
    first = database_state(dsn)
    later = [copy.deepcopy(item) for item in crawl.items]
    for item in later[:3]:
        item.properties["variable_id"] = "zg500"
        if item.datetime is not None:
            item.datetime = item.datetime.replace(year=1700)
    load(dsn, crawl.collections, later)
    return first, database_state(dsn)


def test_partitions_made_in_one_pass_are_pgstacs(pg_cluster, sample_crawl, monkeypatch):
    made: list[int] = []
    real = partitions.create_missing
    monkeypatch.setattr(partitions, "create_missing", lambda *args: made.append(real(*args)) or made[-1])
    got = load_twice(pg_cluster.copy_database("partitions_one_pass"), sample_crawl)
    assert made[0] == len(sample_crawl.collections), "every partition of the first load made in one pass"
    assert made[1] == 0, "nothing to make the second time"

    monkeypatch.setattr(partitions, "create_missing", lambda *args: 0)  # pgstac's check_partition alone
    expected = load_twice(pg_cluster.copy_database("partitions_by_pgstac"), sample_crawl)
    assert got == expected
    for state in expected:
        assert state["tables"] and all(owner == "pgstac_admin" for _, owner in state["tables"])
        assert any("variable_id" in definition for _, definition in state["indexes"])


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"datetime": "2000-01-01T00:00:00Z"}, ["2000-01-01T00:00:00+00:00"] * 4),
        (
            {"datetime": None, "start_datetime": "1850-01-01T00:00:00Z", "end_datetime": "2014-12-31T00:00:00Z"},
            ["1850-01-01T00:00:00+00:00"] * 2 + ["2014-12-31T00:00:00+00:00"] * 2,
        ),
        ({"datetime": "2000-01-01T00:00:00"}, None),  # no time zone: left to pgstac
        ({"datetime": "not a time"}, None),
    ],
)
def test_time_ranges_are_pgstacs_datetime_and_end_datetime(properties, expected):
    times = partitions.TimeRanges()
    times.observe("c", properties)
    got = times.ranges["c"]
    assert (got and [t.isoformat() for t in got]) == expected
