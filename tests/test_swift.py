"""zarr-stac against a real OpenStack Swift through its S3 API (s3api + tempauth).

Crawl from it, publish into it, prune inside it (deletions: Swift's s3api wants
Content-MD5 on DeleteObjects, which recent botocore no longer sends), validate
from it and load from it into pgstac.
"""

from __future__ import annotations

import itertools

import psycopg
import pytest
import s3fs
from typer.testing import CliRunner

from static_catalog.catalog import StaticCatalog
from static_catalog.destination import DestinationError
from zarr_stac.cli import app
from zarr_stac.loaders.config import default_config
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.loaders.running.ledger import Ledger
from zarr_stac.samples import samples, write_samples

from .conftest import SCHEMA_DIR

STORES = len(samples())
_buckets = itertools.count()


@pytest.fixture
def swift_cli(monkeypatch, swift_server):
    """The CLI as a Swift user runs it: EC2 credentials in the environment, the endpoint as a flag."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", swift_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", swift_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, expect: int = 0):
        result = runner.invoke(app, [*args, "--endpoint-url", swift_server.endpoint_url], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return run


@pytest.fixture
def swift_fs(swift_server) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        endpoint_url=swift_server.endpoint_url, key=swift_server.access_key, secret=swift_server.secret_key
    )


def published_items(fs: s3fs.S3FileSystem, root: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p for p in fs.find(root) if p.count("/") == root.count("/") + 3 and p.endswith(".json"))


def new_bucket(swift_server, purpose: str) -> str:
    name = f"{purpose}-{next(_buckets)}"
    swift_server.create_bucket(name)
    return name


def test_crawl_from_swift(swift_samples, swift_storage):
    result = crawl(default_config(swift_samples, swift_storage))
    assert result.failures == []
    assert len(result.items) == STORES
    # What readers get: the Swift endpoint, never the tempauth credentials.
    published = str([item.to_dict() for item in result.items])
    assert swift_storage.endpoint_url in published
    assert swift_storage.key.get_secret_value() not in published
    assert swift_storage.secret.get_secret_value() not in published


def test_a_rerun_compares_swift_etags_and_reads_no_store(swift_samples, swift_storage):
    first = crawl(default_config(swift_samples, swift_storage))
    rerun = crawl(default_config(swift_samples, swift_storage), previous=Ledger(first.ledger_data()))
    assert (rerun.catalogued, rerun.unchanged, rerun.failures) == (STORES, STORES, [])
    assert [i.to_dict() for i in rerun.items] == [i.to_dict() for i in first.items]


def test_publish_prune_validate_and_load_in_swift(swift_cli, swift_server, swift_storage, swift_fs, pgstac_dsn):
    source = new_bucket(swift_server, "source")
    stores = write_samples(f"s3://{source}", swift_storage, public=False)
    catalogue = new_bucket(swift_server, "catalogue")
    output = f"s3://{catalogue}/stac"

    first = swift_cli("build", f"s3://{source}", "-o", output, "--delete-grace", "0")
    # 10 items, 3 collections twice, the root, and the ledger of the crawl (for reruns)
    assert "18 written, 0 unchanged, 0 deleted" in first.output
    items_before = published_items(swift_fs, f"{catalogue}/stac")
    assert len(items_before) == STORES

    # A store is gone: its item and the previous snapshot of its collection are deleted
    # (grace 0); the collection (twice) and the root are written anew.
    gone = next(s for s in stores if "ModelB/ssp585" in s and "/tas/" in s)
    for path in swift_fs.find(gone.removeprefix("s3://")):
        swift_fs.rm_file(path)  # one DELETE each: the test must not need DeleteObjects either
    second = swift_cli("build", f"s3://{source}", "-o", output, "--delete-grace", "0")
    assert "4 written, 13 unchanged, 2 deleted" in second.output  # the ledger too: a store left it
    items_after = published_items(swift_fs, f"{catalogue}/stac")
    assert items_after == [p for p in items_before if "ModelB.ssp585.r1i1p1f1.tas" not in p]
    assert len(items_after) == STORES - 1
    snapshots = [p for p in swift_fs.find(f"{catalogue}/stac/cmip6") if "/collection-" in p]
    assert len(snapshots) == 1

    # Nothing changed since: nothing written, nothing deleted.
    third = swift_cli("build", f"s3://{source}", "-o", output, "--delete-grace", "0")
    assert "0 written, 17 unchanged, 0 deleted" in third.output

    validated = swift_cli("validate", f"{output}/catalog.json", "--schemas", str(SCHEMA_DIR))
    assert "0 invalid" in validated.output

    loaded = swift_cli("load", f"{output}/catalog.json", "--dsn", pgstac_dsn)
    assert f"{STORES - 1} item(s)" in loaded.output
    # And straight from the stores in Swift: an upsert, nothing duplicated.
    crawled = swift_cli("load", f"s3://{source}", "--dsn", pgstac_dsn)
    assert f"{STORES - 1} item(s)" in crawled.output
    with psycopg.connect(pgstac_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0] == STORES - 1


def test_a_missing_output_bucket_is_said_before_the_crawl(swift_cli, swift_samples):
    result = swift_cli("build", swift_samples, "-o", "s3://no-such-bucket/stac", expect=1)
    assert "no-such-bucket" in result.output and "does not exist" in result.output
    assert "crawl summary" not in result.output and "Traceback" not in result.output


def test_destination_check_in_swift(swift_server, swift_storage):
    StaticCatalog(f"s3://{new_bucket(swift_server, 'exists')}/stac", storage=swift_storage).destination.check()
    with pytest.raises(DestinationError, match="does not exist"):
        StaticCatalog("s3://missing-bucket/stac", storage=swift_storage).destination.check()
