"""Where pgstac's database keeps the crawl's ledger, and a role that may not keep one."""

from __future__ import annotations

import secrets
from urllib.parse import quote

import psycopg

from stac_api.loading import ledger
from stac_api.loading.ingest import Ingest

SOURCES = "s3://bucket-a s3://bucket-b"


def test_a_ledger_is_written_only_when_it_changed(pgstac_dsn):
    with Ingest(pgstac_dsn) as ingest:
        assert ingest.earlier_ledger(SOURCES) is None  # no table yet
        ingest.keep_ledger(SOURCES, b"first")
        assert ledger.save(ingest.conn, SOURCES, b"first") is False, "the same bytes: no write"
        assert ingest.earlier_ledger(SOURCES) == b"first"
        assert ingest.earlier_ledger("s3://bucket-a") is None, "one ledger per set of sources"
        assert ledger.save(ingest.conn, SOURCES, b"second") is True
        assert ingest.earlier_ledger(SOURCES) == b"second"


def test_a_role_that_may_not_keep_a_ledger_still_loads_and_is_told(pg_cluster, pgstac_dsn):
    role, password = f"ingest_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE pgstac_ingest")
    dsn = pgstac_dsn.replace(
        f"{pg_cluster.user}:{quote(pg_cluster.password, safe='')}@", f"{role}:{quote(password, safe='')}@"
    )
    with Ingest(dsn) as ingest:  # it may not create the schema
        ingest.keep_ledger(SOURCES, b"ledger")
        (note,) = [n for n in ingest.report.notes if ledger.TABLE in n]
        assert "may not create or write" in note and password not in note
    with Ingest(pgstac_dsn) as owner:  # the owner made it, without granting anything
        owner.keep_ledger(SOURCES, b"ledger")
    with Ingest(dsn) as ingest:
        assert ingest.earlier_ledger(SOURCES) is None
        (note,) = [n for n in ingest.report.notes if ledger.TABLE in n]
        assert "may not read" in note
