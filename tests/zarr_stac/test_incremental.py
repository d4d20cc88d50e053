"""`build` and `load` rerun: only the stores whose metadata changed are read, written or loaded.

The stores sit on the S3 server behind a recording proxy, so each test sees every request a
rerun makes; the static catalogue is a local folder, pgstac a database of its own.
"""

from __future__ import annotations

import json
import re
import warnings
from urllib.parse import unquote

import psycopg
import pytest

from tests.proxy import FaultProxy
from zarr_stac.samples import era_like_daily, write_dataset, write_samples

ERA = "reanalysis/era-like-daily.zarr"
STORES = 10


@pytest.fixture
def bucket(empty_bucket, storage) -> str:
    write_samples(empty_bucket, storage)
    return empty_bucket


@pytest.fixture
def proxy(s3_server):
    with FaultProxy(s3_server.endpoint_url) as running:
        yield running


def store_gets(proxy: FaultProxy) -> list[str]:
    """Keys (in the bucket) of every GET of an object: store metadata or chunks, not listings."""
    return sorted(
        unquote(r.path).split("/", 2)[2]
        for r in proxy.requests
        if r.method == "GET" and "list-type" not in r.path and r.path.count("/") > 1
    )


def stores_read(proxy: FaultProxy) -> set[str]:
    """The stores whose metadata document was read (a v3 store named *.zarr: `.zmetadata` first)."""
    return {key.rsplit("/", 1)[0] for key in store_gets(proxy) if key.endswith((".zmetadata", "zarr.json"))}


def heads(proxy: FaultProxy) -> int:
    return sum(r.method == "HEAD" for r in proxy.requests)


def change_era(bucket: str, storage) -> None:
    changed = era_like_daily()
    changed.attrs["title"] = "ERA-like daily, reprocessed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(changed, f"{bucket}/{ERA}", storage)


def unchanged_count(output: str) -> int:
    match = re.search(r"of which unchanged \(not re-read\)\s*│\s*(\d+)", output)
    return int(match[1]) if match else 0


def test_build_rerun_reads_no_store_and_writes_nothing(cli, bucket, storage, proxy, tmp_path):
    out = tmp_path / "stac"
    build = ("build", bucket, "-o", str(out), "--endpoint-url", proxy.url, "--public-anon")
    cli(*build)
    assert (out / ".zarr-stac-ledger.jsonl.gz").is_file()
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*")}

    proxy.reset()
    result = cli(*build)
    assert store_gets(proxy) == [], "no GET of any store's metadata or coordinates"
    assert heads(proxy) == STORES and unchanged_count(result.output) == STORES
    assert " 0 written" in result.output
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == before, "nothing rewritten"

    change_era(bucket, storage)
    proxy.reset()
    result = cli(*build)
    assert store_gets(proxy) and all(key.startswith(f"{ERA}/") for key in store_gets(proxy))
    assert unchanged_count(result.output) == STORES - 1
    item = json.loads((out / "reanalysis" / "era-like-daily" / "era-like-daily.json").read_text())
    assert item["properties"]["title"] == "ERA-like daily, reprocessed"

    stac = {path: path.stat().st_mtime_ns for path in out.rglob("*.json")}
    proxy.reset()
    result = cli(*build, "--full")
    assert len(stores_read(proxy)) == STORES and unchanged_count(result.output) == 0
    # Re-read, the same Items: no STAC object rewritten (the ledger may be: its lines come in reading order).
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.json")} == stac


def test_a_lost_item_file_is_published_again_from_the_ledger(cli, bucket, proxy, tmp_path):
    out = tmp_path / "stac"
    build = ("build", bucket, "-o", str(out), "--endpoint-url", proxy.url, "--public-anon")
    cli(*build)
    lost = out / "reanalysis" / "era-like-daily" / "era-like-daily.json"
    original = lost.read_bytes()
    lost.unlink()
    proxy.reset()
    result = cli(*build)
    assert store_gets(proxy) == [] and unchanged_count(result.output) == STORES
    assert lost.read_bytes() == original and " 1 written" in result.output


def item_versions(dsn: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(collection, id) -> (row version, title) of every item pgstac holds."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT collection, id, xmin::text, content->'properties'->>'title' FROM pgstac.items")
        return {(c, i): (xmin, title) for c, i, xmin, title in rows}


def collection_versions(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT id, xmin::text FROM pgstac.collections").fetchall())


def test_load_rerun_reads_no_store_and_upserts_nothing(cli, bucket, storage, proxy, pgstac_dsn):
    load = ("load", bucket, "--dsn", pgstac_dsn, "--endpoint-url", proxy.url, "--public-anon", "--sync")
    cli(*load)
    before = item_versions(pgstac_dsn)
    collections = collection_versions(pgstac_dsn)
    assert len(before) == STORES

    proxy.reset()
    result = cli(*load)
    assert store_gets(proxy) == [] and heads(proxy) == STORES
    assert f"0 item(s) into pgstac, {STORES} unchanged item(s) left as they were, deleted 0" in result.output
    assert item_versions(pgstac_dsn) == before, "no item row rewritten"
    assert collection_versions(pgstac_dsn) == collections, "no collection row rewritten"

    change_era(bucket, storage)
    proxy.reset()
    result = cli(*load)
    assert store_gets(proxy) and all(key.startswith(f"{ERA}/") for key in store_gets(proxy))
    after = item_versions(pgstac_dsn)
    era = ("reanalysis", "era-like-daily")
    assert after[era][1] == "ERA-like daily, reprocessed" and after[era][0] != before[era][0]
    assert {k: v for k, v in after.items() if k != era} == {k: v for k, v in before.items() if k != era}

    proxy.reset()
    cli(*load, "--full")
    assert len(stores_read(proxy)) == STORES


def test_a_load_keeps_one_ledger_per_set_of_sources(cli, bucket, proxy, pgstac_dsn):
    cli("load", bucket, "--dsn", pgstac_dsn, "--endpoint-url", proxy.url, "--public-anon")
    with psycopg.connect(pgstac_dsn) as conn:
        (sources, size), *others = conn.execute("SELECT sources, length(data) FROM zarr_stac.ledger").fetchall()
    assert sources == bucket and size > 0 and others == []
