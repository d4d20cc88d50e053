"""Incremental crawls: a store whose metadata did not change is not read again.

The sample stores are written into a bucket of their own on the S3 server and crawled
through a recording proxy, so each test sees exactly which requests a rerun makes.
"""

from __future__ import annotations

import gzip
import warnings
from urllib.parse import unquote

import pytest
import xarray as xr

from tests.proxy import FaultProxy
from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.loaders.running.crawl import CrawlResult, Scale, crawl
from zarr_stac.loaders.running.ledger import Ledger
from zarr_stac.samples import era_like_daily, write_dataset, write_samples

ERA = "reanalysis/era-like-daily.zarr"
OCEAN = "ocean/north-atlantic-sst.zarr"  # Zarr v3: its document is zarr.json


@pytest.fixture(scope="module")
def shared(s3_server, storage) -> str:
    """The samples, for the tests that change nothing."""
    s3_server.create_bucket("ledger-shared")
    write_samples("s3://ledger-shared", storage)
    return "s3://ledger-shared"


@pytest.fixture
def bucket(empty_bucket, storage) -> str:
    """The samples, for a test that changes some."""
    write_samples(empty_bucket, storage)
    return empty_bucket


@pytest.fixture(scope="module")
def proxy(s3_server):
    with FaultProxy(s3_server.endpoint_url) as running:
        yield running


@pytest.fixture(scope="module")
def first(through, shared) -> CrawlResult:
    return through(shared)


@pytest.fixture(scope="module")
def through(proxy, storage):
    """Crawl `url` through the recording proxy, with an earlier crawl's ledger if given."""

    def run(url: str, earlier: CrawlResult | None = None, **source) -> CrawlResult:
        options = storage.model_copy(update={"endpoint_url": proxy.url})
        config = MappingConfig(sources=[SourceConfig(url=url, storage=options, **source)])
        proxy.reset()
        previous = Ledger(earlier.ledger_data()) if earlier is not None else None
        return crawl(config, previous=previous)

    return run


def store_reads(proxy: FaultProxy) -> list[tuple[str, str]]:
    """(method, key in the bucket) of every request for an object (listings left out)."""
    return sorted(
        (r.method, unquote(r.path).split("?")[0].split("/", 2)[2])
        for r in proxy.requests
        if "list-type" not in r.path and "prefix=" not in r.path and r.path.count("/") > 1
    )


def documents(result: CrawlResult) -> tuple[list[dict], list[dict]]:
    return [c.to_dict() for c in result.collections], [i.to_dict() for i in result.items]


def test_a_rerun_with_nothing_changed_reads_no_store_and_gives_the_same_catalogue(shared, first, through, proxy):
    assert (first.catalogued, first.unchanged, first.failures) == (10, 0, [])
    assert first.ledger.count == 10
    rerun = through(shared, first)

    assert (rerun.catalogued, rerun.unchanged, rerun.failures) == (10, 10, [])
    reads = store_reads(proxy)
    assert {method for method, _ in reads} == {"HEAD"}, "no GET of any store's metadata or coordinates"
    assert len(reads) == 10 and {key.rsplit("/", 1)[1] for _, key in reads} == {".zmetadata", "zarr.json"}
    assert documents(rerun) == documents(first), "the same Items and collections as a full crawl"
    assert rerun.ledger_data() == first.ledger_data(), "the same ledger, byte for byte: nothing to write"


def test_the_items_of_unchanged_stores_go_to_keep_not_to_the_sink(first):
    sunk, kept = [], []
    rerun = crawl(first.config, previous=Ledger(first.ledger_data()), sink=sunk.append, keep=kept.append)
    assert sunk == [] and sorted(i["id"] for i in kept) == sorted(i.id for i in first.items)
    assert rerun.unchanged == 10


def test_a_store_whose_metadata_changed_is_read_again_and_its_item_updated(bucket, storage, through, proxy):
    first = through(bucket)
    changed = era_like_daily()
    changed.attrs["title"] = "ERA-like daily, reprocessed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(changed, f"{bucket}/{ERA}", storage)

    rerun = through(bucket, first)
    assert (rerun.catalogued, rerun.unchanged, rerun.failures) == (10, 9, [])
    gets = {key for method, key in store_reads(proxy) if method == "GET"}
    assert gets and all(key.startswith(f"{ERA}/") for key in gets), gets
    (era,) = [i for i in rerun.items if i.id == "era-like-daily"]
    assert era.properties["title"] == "ERA-like daily, reprocessed"
    assert len(Ledger(rerun.ledger_data()).fingerprints()) == 10
    assert {e.url for e in Ledger(rerun.ledger_data()).entries()} == {
        e.url for e in Ledger(first.ledger_data()).entries()
    }


def test_without_a_ledger_every_store_is_read(shared, first, through, proxy):
    """What `--full` does: the earlier ledger is not used."""
    rerun = through(shared)
    assert rerun.unchanged == 0 and rerun.catalogued == 10
    assert sum(method == "GET" for method, _ in store_reads(proxy)) > 10
    assert rerun.ledger_data() == first.ledger_data()


def test_a_store_that_failed_is_read_again_on_the_next_crawl(bucket, storage, through, proxy):
    import s3fs

    fs = s3fs.S3FileSystem(**storage.for_fsspec(bucket))
    key = f"{bucket}/{ERA}/.zmetadata"
    good = fs.cat_file(key)
    fs.pipe_file(key, b"{not json")
    first = through(bucket)
    assert [f.url for f in first.failures] == [f"{bucket}/{ERA}"] and first.catalogued == 9

    second = through(bucket, first)  # still broken: read again, and reported again
    assert (second.catalogued, second.unchanged) == (9, 9)
    assert [f.url for f in second.failures] == [f"{bucket}/{ERA}"]
    assert ("GET", f"{ERA}/.zmetadata") in store_reads(proxy)

    fs.pipe_file(key, good)  # repaired: catalogued
    third = through(bucket, second)
    assert (third.catalogued, third.unchanged, third.failures) == (10, 9, [])


def test_a_changed_configuration_reads_the_stores_it_affects(shared, first, through):
    rerun = through(shared, first, properties={"project": "demo"})
    assert (rerun.catalogued, rerun.unchanged) == (10, 0)
    assert all(i.properties["project"] == "demo" for i in rerun.items)


def test_an_unreadable_ledger_means_a_full_crawl_and_says_so(first):
    truncated = first.ledger_data()[:-40]
    result = crawl(first.config, previous=Ledger(truncated))
    assert (result.catalogued, result.unchanged) == (10, 0)
    assert len(result.notes) == 1 and result.notes[0].startswith("the earlier ledger is unreadable")
    assert "every store is read again" in result.notes[0]


def test_the_ledger_holds_no_secret(first, storage):
    text = gzip.decompress(first.ledger_data())
    for secret in (storage.key, storage.secret):
        assert secret.get_secret_value().encode() not in text


def test_a_local_store_is_compared_by_its_own_hash(tmp_path):
    write_samples(str(tmp_path / "src"))
    first = crawl(str(tmp_path / "src"))
    store = tmp_path / "src" / ERA
    ds = xr.open_zarr(store).load()
    ds.attrs["title"] = "changed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(ds, str(store))
    rerun = crawl(str(tmp_path / "src"), previous=Ledger(first.ledger_data()))
    assert (rerun.catalogued, rerun.unchanged) == (10, 9)


def test_worker_processes_check_the_fingerprints_too(first):
    """The fingerprints travel with the jobs to a process pool (batches of 4: three batches)."""
    scale = Scale(processes=2, batch_size=4)
    rerun = crawl(first.config, previous=Ledger(first.ledger_data()), scale=scale)
    assert (rerun.catalogued, rerun.unchanged, rerun.failures) == (10, 10, [])
    assert documents(rerun) == documents(first)
