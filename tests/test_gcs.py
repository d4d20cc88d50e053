"""gs:// against a real GCS emulator (fake-gcs-server): crawl anonymously and with
a token, publish into a bucket, prune and validate there. Nothing reaches Google."""

from __future__ import annotations

import itertools

import gcsfs
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from zarr_stac.cli import app
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import default_config
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.loaders.running.ledger import Ledger
from zarr_stac.samples import samples, write_samples

from .conftest import SCHEMA_DIR

STORES = len(samples())
# A raw OAuth access token as `gcloud auth print-access-token` prints it (the emulator
# accepts any); a secret that must never be published.
TOKEN = "ya29.zarr-stac-test-token-never-published"
_buckets = itertools.count()


@pytest.fixture(autouse=True)
def offline_tokens(monkeypatch):
    # gcsfs would ask Google's tokeninfo endpoint when a raw token expires; the emulator's never does.
    monkeypatch.setenv("FETCH_RAW_TOKEN_EXPIRY", "false")


@pytest.fixture
def gcs_cli(monkeypatch, gcs_server):
    runner = CliRunner()

    def run(*args: str, expect: int = 0):
        args = [*args, "--endpoint-url", gcs_server.endpoint_url, "--anon"]
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return run


def gcs_fs(gcs_server) -> gcsfs.GCSFileSystem:
    fs = StorageOptions(endpoint_url=gcs_server.endpoint_url, anon=True).filesystem("gs://")
    fs.invalidate_cache()
    return fs


def test_crawl_anonymously(gcs_server, gcs_samples):
    storage = StorageOptions(endpoint_url=gcs_server.endpoint_url, anon=True)
    result = crawl(default_config(gcs_samples, storage))
    assert result.failures == []
    assert len(result.items) == STORES
    asset = result.items[0].assets["zarr"]
    assert asset.href.startswith("gs://samples/")
    # Readers get what they need to open it: anonymous access at this endpoint.
    assert asset.extra_fields["xarray:storage_options"] == {"token": "anon", "endpoint_url": gcs_server.endpoint_url}


def test_a_rerun_compares_gcs_md5_hashes_and_reads_no_store(gcs_server, gcs_samples):
    storage = StorageOptions(endpoint_url=gcs_server.endpoint_url, anon=True)
    first = crawl(default_config(gcs_samples, storage))
    rerun = crawl(default_config(gcs_samples, storage), previous=Ledger(first.ledger_data()))
    assert (rerun.catalogued, rerun.unchanged, rerun.failures) == (STORES, STORES, [])
    assert [i.to_dict() for i in rerun.items] == [i.to_dict() for i in first.items]


def test_crawl_with_a_token_publishes_no_token(gcs_server, gcs_samples):
    storage = StorageOptions(endpoint_url=gcs_server.endpoint_url, token=SecretStr(TOKEN))
    assert storage.for_fsspec(gcs_samples)["token"] == TOKEN
    result = crawl(default_config(gcs_samples, storage))
    assert result.failures == []
    assert len(result.items) == STORES
    published = str([item.to_dict() for item in result.items]) + str([c.to_dict() for c in result.collections])
    assert TOKEN not in published
    published_options = result.items[0].assets["zarr"].extra_fields["xarray:storage_options"]
    assert published_options == {"endpoint_url": gcs_server.endpoint_url}
    assert TOKEN not in repr(storage)


def test_publish_prune_and_validate_in_gcs(gcs_cli, gcs_server):
    source, catalogue = f"source-{next(_buckets)}", f"catalogue-{next(_buckets)}"
    gcs_server.create_bucket(source)
    gcs_server.create_bucket(catalogue)
    stores = write_samples(f"gs://{source}", StorageOptions(endpoint_url=gcs_server.endpoint_url, anon=True))
    output = f"gs://{catalogue}/stac"

    first = gcs_cli("build", f"gs://{source}", "-o", output, "--delete-grace", "0")
    # 10 items, 3 collections twice, the root, and the ledger of the crawl (for reruns)
    assert "18 written, 0 unchanged, 0 deleted" in first.output

    gone = next(s for s in stores if "ModelB/ssp585" in s and "/tas/" in s)
    gcs_fs(gcs_server).rm(gone.removeprefix("gs://"), recursive=True)
    second = gcs_cli("build", f"gs://{source}", "-o", output, "--delete-grace", "0")
    # Written: the collection twice, the root and the ledger (a store left it); deleted: the item, the old snapshot.
    assert "4 written, 13 unchanged, 2 deleted" in second.output
    items = [p for p in gcs_fs(gcs_server).find(f"{catalogue}/stac") if p.count("/") == 4 and p.endswith(".json")]
    assert len(items) == STORES - 1 and not [p for p in items if "ModelB.ssp585.r1i1p1f1.tas" in p]

    # Nothing changed since: nothing written (GCS lists each object's MD5), nothing deleted.
    third = gcs_cli("build", f"gs://{source}", "-o", output, "--delete-grace", "0")
    assert "0 written, 17 unchanged, 0 deleted" in third.output

    validated = gcs_cli("validate", f"{output}/catalog.json", "--schemas", str(SCHEMA_DIR))
    assert "0 invalid" in validated.output


def test_a_missing_output_bucket_is_said_before_the_crawl(gcs_cli, gcs_samples):
    result = gcs_cli("build", gcs_samples, "-o", "gs://no-such-bucket/stac", expect=1)
    assert "no-such-bucket" in result.output and "does not exist" in result.output
    assert "crawl summary" not in result.output
