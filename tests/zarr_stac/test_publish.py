"""The publish driver (`zarr_stac.publish.publish`): the one run from the sources to a publisher that
`build`, `load` and the demo all make, the same for the static catalogue and for pgstac.

The stores sit on the S3 server behind a recording proxy, so each test sees what a run reads.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stac_api.loading.ingest import Ingest
from static_catalog.catalog import StaticCatalog
from static_catalog.publication import Publication
from tests.proxy import FaultProxy
from zarr_stac.common.publishing import Publisher
from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.publish import NothingToPublish, ledger_key, publish
from zarr_stac.samples import write_samples

from .test_incremental import STORES, stores_read


@pytest.fixture
def bucket(empty_bucket, storage) -> str:
    write_samples(empty_bucket, storage)
    return empty_bucket


@pytest.fixture
def proxy(s3_server):
    with FaultProxy(s3_server.endpoint_url) as running:
        yield running


@pytest.fixture(params=["static", "pgstac"])
def make(request, tmp_path) -> Callable[[], Publisher]:
    """A new publisher of one catalogue at each call (each call: the next run over it)."""
    if request.param == "static":
        return lambda: Publication(StaticCatalog(str(tmp_path / "stac"), delete_grace=0))
    dsn = request.getfixturevalue("pgstac_dsn")
    return lambda: Ingest(dsn)


def sources(storage, proxy: FaultProxy, *urls: str) -> MappingConfig:
    through_proxy = storage.model_copy(update={"endpoint_url": proxy.url})
    return MappingConfig(sources=[SourceConfig(url=url, storage=through_proxy) for url in urls])


def published(report) -> int:
    """Items written or loaded by a run (a static catalogue's count includes its collections and root)."""
    return report.written if hasattr(report, "written") else report.items


def test_a_rerun_reads_no_store_and_publishes_nothing_again(make, bucket, storage, proxy):
    config = sources(storage, proxy, bucket)
    first = publish(make(), config)
    assert len(stores_read(proxy)) == STORES and first.result.catalogued == STORES and first.result.unchanged == 0
    assert published(first.report) >= STORES

    proxy.reset()
    again = publish(make(), config)
    assert stores_read(proxy) == set(), "the ledger the first run kept says no store changed"
    assert again.result.catalogued == again.result.unchanged == STORES and again.result.failures == []
    assert published(again.report) == 0

    proxy.reset()
    full = publish(make(), config, full=True)
    assert len(stores_read(proxy)) == STORES and full.result.unchanged == 0


def test_nothing_to_publish_leaves_the_earlier_publication_as_it_was(make, bucket, empty_bucket, storage, proxy):
    publish(make(), sources(storage, proxy, bucket))
    ledger = make()
    with ledger:
        before = ledger.earlier_ledger(ledger_key(sources(storage, proxy, bucket)))
    assert before

    nowhere = sources(storage, proxy, f"{bucket}/no-such-prefix")
    with pytest.raises(NothingToPublish) as stopped:
        publish(make(), nowhere, prune=True)
    assert stopped.value.where == f"{bucket}/no-such-prefix"
    after = make()
    with after:
        assert after.earlier_ledger(ledger_key(sources(storage, proxy, bucket))) == before
        assert after.earlier_ledger(ledger_key(nowhere)) in (None, before)  # a catalogue keeps one ledger
    proxy.reset()
    rerun = publish(make(), sources(storage, proxy, bucket))
    assert stores_read(proxy) == set() and rerun.result.unchanged == STORES, "nothing was lost"
