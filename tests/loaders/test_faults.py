"""An object store that throttles, resets and stalls costs time, never content.

The sample bucket is crawled through a fault-injecting proxy on loopback: ~10% of
requests are answered 503 SlowDown, dropped before an answer, or answered after
the client's timeout. Retries (botocore's standard mode: exponential backoff with
jitter) must turn that into exactly the catalogue of a fault-free crawl; a store
that keeps failing is reported, and an existing catalogue keeps its item.
"""

import collections
import json
import re

import pytest

from stac_api.loading.ingest import load
from static_catalog.write import write_catalog
from tests.proxy import FaultProxy, FaultRules
from zarr_stac.loaders.config import MappingConfig
from zarr_stac.loaders.running.crawl import crawl

FAULTS = FaultRules(error_rate=0.04, reset_rate=0.03, slow_rate=0.03, slow_seconds=3.0, seed=12)
BROKEN_STORE = "s3://samples/cmip6/ModelA/historical/r1i1p1f1/pr/gn.zarr"
BROKEN_ID = "ModelA.historical.r1i1p1f1.pr.gn"


def through(proxy: FaultProxy, config: MappingConfig) -> MappingConfig:
    """The same sources, read through the proxy with a short timeout and generous retries."""
    sources = [
        s.model_copy(
            update={"storage": s.storage.model_copy(update={"endpoint_url": proxy.url, "timeout": 1.0, "retries": 4})}
        )
        for s in config.sources
    ]
    return config.model_copy(update={"sources": sources})


def as_published(objects, proxy_url: str, server_url: str) -> list[dict]:
    """Documents as JSON, the proxy's address (published as the endpoint, and as host:port
    in the keys of storage:schemes) put back."""

    def restore(text: str) -> str:
        if not proxy_url:
            return text
        return text.replace(proxy_url, server_url).replace(proxy_url.split("://", 1)[1], server_url.split("://", 1)[1])

    return [json.loads(restore(json.dumps(o.to_dict(transform_hrefs=False)))) for o in objects]


@pytest.fixture(scope="module")
def faulty_crawl(sample_config, s3_server):
    with FaultProxy(s3_server.endpoint_url, FAULTS) as proxy:
        result = crawl(through(proxy, sample_config))
    return result, proxy


def test_faults_were_really_injected(faulty_crawl):
    _, proxy = faulty_crawl
    statuses = [r.status for r in proxy.requests]
    assert statuses.count(503) >= 2, "no throttling was injected"
    assert statuses.count(0) >= 2, "no connection was reset"
    assert proxy.slowed >= 2, "no response was delayed past the timeout"
    faults = statuses.count(503) + statuses.count(0) + proxy.slowed
    assert 0.05 < faults / len(statuses) < 0.2


def test_a_crawl_at_a_10_percent_fault_rate_equals_a_fault_free_one(faulty_crawl, sample_crawl, s3_server):
    result, proxy = faulty_crawl
    assert result.failures == []
    assert as_published(result.items, proxy.url, s3_server.endpoint_url) == as_published(sample_crawl.items, "", "")
    assert as_published(result.collections, proxy.url, s3_server.endpoint_url) == as_published(
        sample_crawl.collections, "", ""
    )


@pytest.fixture(scope="module")
def crawl_with_a_store_that_keeps_failing(sample_config, s3_server):
    # Random faults everywhere, and one store that is throttled whatever the retries.
    rules = FaultRules(**{**FAULTS.__dict__, "fail": re.compile(re.escape(BROKEN_STORE.removeprefix("s3:/")) + "/")})
    with FaultProxy(s3_server.endpoint_url, rules) as proxy:
        return crawl(through(proxy, sample_config))


def test_a_store_that_keeps_failing_is_reported(crawl_with_a_store_that_keeps_failing, sample_crawl):
    result = crawl_with_a_store_that_keeps_failing
    assert [(f.url, f.kind, f.collection_id) for f in result.failures] == [(BROKEN_STORE, "unavailable", "cmip6")]
    assert "reduce your request rate" in result.failures[0].reason  # the server's own words
    assert sorted(i.id for i in result.items) == sorted(i.id for i in sample_crawl.items if i.id != BROKEN_ID)


def test_a_store_that_keeps_failing_stays_in_the_static_catalogue(
    crawl_with_a_store_that_keeps_failing, sample_crawl, tmp_path
):
    write_catalog(sample_crawl.collections, sample_crawl.items, str(tmp_path))
    result = crawl_with_a_store_that_keeps_failing
    report = write_catalog(result.collections, result.items, str(tmp_path), may_delete=result.may_delete)
    assert report.deleted == 0
    assert list(tmp_path.rglob(f"{BROKEN_ID}.json")), "the earlier item was deleted"


def test_a_store_that_keeps_failing_stays_in_pgstac(crawl_with_a_store_that_keeps_failing, sample_crawl, pgstac_dsn):
    import psycopg

    load(pgstac_dsn, sample_crawl.collections, sample_crawl.items)
    result = crawl_with_a_store_that_keeps_failing
    report = load(pgstac_dsn, result.collections, result.items, may_delete=result.may_delete)
    assert report.deleted == 0
    with psycopg.connect(pgstac_dsn) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM pgstac.items")]
    assert BROKEN_ID in ids and len(ids) == len(sample_crawl.items)


@pytest.mark.parametrize("retries", [0, 2])
def test_the_cli_retries_as_often_as_told(s3_server, sample_bucket, monkeypatch, retries):
    from typer.testing import CliRunner

    from zarr_stac.cli import app
    from zarr_stac.services import LOCAL_CREDENTIALS

    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    rules = FaultRules(fail=re.compile(re.escape(BROKEN_STORE.removeprefix("s3:/")) + "/"))
    with FaultProxy(s3_server.endpoint_url, rules) as proxy:
        result = CliRunner().invoke(
            app, ["inspect", BROKEN_STORE, "--endpoint-url", proxy.url, "--retries", str(retries), "--timeout", "2"]
        )
    assert result.exit_code == 1 and "unavailable" in result.output, result.output
    # botocore tries each request 1 + retries times; s3fs tries the call once more. The
    # store's metadata is requested several keys at once: the first key to use up its
    # attempts fails the store, and the others are cancelled, so none is tried more.
    attempts = collections.Counter(r.path for r in proxy.requests if r.status == 503)
    assert max(attempts.values()) == 2 * (retries + 1), attempts
