"""At scale: the same catalogue however the crawl is spread, and memory that does not grow."""

import json
import subprocess
import sys
import warnings

import pytest

from benchmarks.synthetic_s3 import SyntheticS3Server
from zarr_stac.loaders.running.crawl import Scale, crawl
from zarr_stac.loaders.running.executors import DaskExecutor, Executor, GatewayExecutor, ProcessExecutor
from zarr_stac.samples import cmip6_like, write_dataset

from ..conftest import PROJECT_ROOT


def as_json(result):
    return (
        [c.to_dict(include_self_link=False) for c in result.collections],
        [i.to_dict(include_self_link=False, transform_hrefs=False) for i in result.items],
        sorted((f.url, f.kind) for f in result.failures),
    )


@pytest.fixture(scope="module")
def single_process(sample_config):
    return as_json(crawl(sample_config, scale=Scale(batch_size=3)))


def test_process_pool_crawl_equals_single_process(sample_config, single_process):
    assert len(single_process[1]) > 2 * 3  # more than two batches: the crawl really runs in processes
    assert as_json(crawl(sample_config, scale=Scale(batch_size=3, processes=2))) == single_process


def test_the_scale_chooses_the_executor():
    # Worker processes only past two batches; a Dask cluster whatever the size. Choosing
    # connects to nothing (no I/O before the crawl runs).
    small, large = Scale(batch_size=3, processes=2).executor(6), Scale(batch_size=3, processes=2).executor(7)
    assert type(small) is Executor and type(large) is ProcessExecutor and large.workers == 2
    assert type(Scale(batch_size=3).executor(6)) is Executor
    dask = Scale(dask_scheduler="tcp://127.0.0.1:1").executor(1)
    assert type(dask) is DaskExecutor and dask.client is None
    gateway = Scale(dask_gateway="config", gateway_workers=3).executor(1)
    assert type(gateway) is GatewayExecutor and (gateway.address, gateway.workers, gateway.client) == (None, 3, None)


def test_dask_crawl_equals_single_process(sample_config, single_process):
    from distributed import LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            scale = Scale(batch_size=3, dask_scheduler=cluster.scheduler_address)
            distributed = as_json(crawl(sample_config, scale=scale))
    assert distributed == single_process


@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "store.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(cmip6_like("ModelA", "historical", "tas"), str(path))
    return path


# A streaming `zarr-stac build`, in one process, reporting how far its memory grew
# above what it used once everything was imported and the stores listed.
MEASURE = """
import json, resource, sys, tempfile
from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.loaders.running.crawl import Crawl, Scale
from zarr_stac.common.storage import StorageOptions
from static_catalog.catalog import StaticCatalog
from static_catalog.publication import Publication
def rss_mb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")) / 1024
storage = StorageOptions(endpoint_url=sys.argv[1], anon=True)
# One process: the memory measured is all the crawl's.
config = MappingConfig(sources=[SourceConfig(url="s3://synthetic/stores", storage=storage)])
running = Crawl(config, scale=Scale(processes=1))
running.discover()
catalog = StaticCatalog(tempfile.mkdtemp())
baseline = rss_mb()
with Publication(catalog) as publication:
    result = running.run(sink=publication.add)
    publication.finish(result.collections, may_delete=result.may_delete)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
stores = len(publication.members.get("stores", {}))
print(json.dumps({"stores": stores, "peak_mb": peak, "held_mb": rss_mb() - baseline}))
"""


def peak_memory(template, count: int) -> dict:
    with SyntheticS3Server(template, count) as server:
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, server.endpoint_url],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # crawls of 400 and 4,000 stores
def test_memory_stays_flat_as_the_number_of_stores_grows(template_store):
    small, large = peak_memory(template_store, 400), peak_memory(template_store, 4000)
    assert (small["stores"], large["stores"]) == (400, 4000)
    # The peak (imports, the first batch in flight) is the same whatever the count...
    assert large["peak_mb"] <= 1.5 * small["peak_mb"], (small, large)
    # ...and so is what is still held at the end, which is where keeping every Item
    # would show: ten times the stores may not hold more than 1.5x (+10 MB of noise).
    assert large["held_mb"] <= 1.5 * small["held_mb"] + 10, (small, large)
