"""Registering a load's queryables in one statement (and, where the role owns the table, with
pgstac's statement trigger deferred) leaves the database as pgstac's own `upsert_queryable`,
called once per facet, does: the same queryables rows, the same indexes on every partition."""

import copy

import psycopg
import pytest

from stac_api.loading import queryables
from stac_api.loading.ingest import load


def per_facet(conn, upserts, *, defer):
    """The registration as it was: pgstac's `upsert_queryable` per facet (its trigger each time)."""
    for upsert in upserts:
        conn.execute("SELECT pgstac.upsert_queryable(%s, %s, NULL, %s, %s)", upsert)


def database_state(dsn: str) -> dict:
    """Queryables rows and indexes, as pgstac pairs them (by definition, not by generated name)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO pgstac, public")
        rows = conn.execute(
            "SELECT id, name, collection_ids, definition, property_wrapper, property_index_type, property_path"
            " FROM queryables ORDER BY id"
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexdef_unnamed(indexdef, tablename) FROM pg_indexes"
            " WHERE schemaname = 'pgstac' ORDER BY 1, 2"
        ).fetchall()
        reference = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'queryable_index_template' ORDER BY 1"
        ).fetchall()
        missing = conn.execute("SELECT * FROM queryable_indexes('items', true) WHERE indexname IS NULL").fetchall()
        queued = conn.execute("SELECT query FROM query_queue").fetchall()
    return {"rows": rows, "indexes": indexes, "reference": reference, "missing": missing, "queued": queued}


def load_twice(dsn: str, crawl) -> tuple[dict, dict]:
    """A load, then one that changes a facet's values (its queryables rows are replaced)."""
    load(dsn, crawl.collections, crawl.items)
    first = database_state(dsn)
    changed = [copy.deepcopy(item) for item in crawl.items]
    for item in changed[:3]:
        item.properties["variable_id"] = "zg500"
        item.properties["experiment_id"] = "ssp585"
    load(dsn, crawl.collections, changed)
    return first, database_state(dsn)


@pytest.mark.parametrize("defer", [False, True], ids=["one-insert", "deferred-trigger"])
def test_registration_leaves_what_pgstac_per_facet_leaves(pg_cluster, sample_crawl, monkeypatch, defer):
    with monkeypatch.context() as patch:
        patch.setattr(queryables, "register", per_facet)
        expected = load_twice(pg_cluster.copy_database(f"queryables_per_facet_{defer}"), sample_crawl)
    calls = []
    monkeypatch.setattr(queryables, "may_defer_trigger", lambda conn: calls.append(defer) or defer)
    got = load_twice(pg_cluster.copy_database(f"queryables_grouped_{defer}"), sample_crawl)
    assert calls == [defer, defer]
    for state in expected:
        # The facets are registered, with their indexes on every partition, and nothing is left to build.
        names = {row[1]: row for row in state["rows"]}
        assert {"variable_id", "experiment_id"} <= set(names)
        assert names["variable_id"][5] == "BTREE"
        assert any("variable_id" in definition for _, definition in state["indexes"])
        assert (state["missing"], state["queued"]) == ([], [])
    assert got == expected


def test_only_the_owner_of_queryables_defers_the_trigger(pg_cluster, pgstac_dsn):
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        assert queryables.may_defer_trigger(conn)  # the migrating role owns pgstac
        conn.execute("DROP ROLE IF EXISTS ingest_only")
        conn.execute("CREATE ROLE ingest_only IN ROLE pgstac_ingest")
        conn.execute("SET ROLE ingest_only")
        assert not queryables.may_defer_trigger(conn)
        conn.execute("RESET ROLE")
        conn.execute("DROP ROLE ingest_only")


def test_a_facet_of_numbers_and_strings_does_not_fail_the_load(pgstac_dsn, sample_crawl):
    """A facet whose items disagree on its type (a catalogue column of `5` and `'historical'`) is
    still registered, read as text, without an enum of strings it could not honour."""
    items = [copy.deepcopy(item) for item in sample_crawl.items]
    having = [item for item in items if isinstance(item.properties.get("experiment_id"), str)]
    assert len(having) >= 2
    having[0].properties["experiment_id"] = 5
    load(pgstac_dsn, sample_crawl.collections, items)
    with psycopg.connect(pgstac_dsn) as conn:
        loaded = conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0]
        definitions = conn.execute("SELECT definition FROM pgstac.queryables WHERE name = 'experiment_id'").fetchall()
    assert loaded == len(items)
    assert definitions and all(d["type"] == "string" and "enum" not in d for (d,) in definitions)
