"""Crawls on a cluster from a real Dask Gateway: dask-gateway-server on loopback with its
local backend (UnsafeLocalBackend: scheduler and workers are local processes, as
dask-gateway's own tests run it), basic auth, TLS to the scheduler through its proxy, and
an `environment` cluster option as Pangeo hubs expose it.
"""

from __future__ import annotations

import os
import pickle
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import dask.config
import pytest
from typer.testing import CliRunner

from zarr_stac.cli import app
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.loaders.running.crawl import Crawl, Scale, crawl
from zarr_stac.loaders.running.executors import ClusterError, GatewayExecutor
from zarr_stac.samples import write_dataset
from zarr_stac.services import LOCAL_CREDENTIALS, free_port

from ..conftest import PROJECT_ROOT, wait_until_answering
from .cases import antimeridian

PASSWORD = "gateway-test-password"
PRIVATE_BUCKET = "gateway-private"
VENV_BIN = Path(sys.executable).parent

GATEWAY_CONFIG = """
from dask_gateway_server.options import Mapping, Options

c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"  # HTTP and the schedulers' TLS, on one port
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{dask!r}, "worker"]
c.ClusterConfig.worker_threads = 1
c.ClusterConfig.worker_memory = "1 G"
c.ClusterConfig.idle_timeout = 600
c.Backend.cluster_options = Options(
    Mapping("environment", {{}}, label="Environment variables"),
    handler=lambda options: {{"environment": options.environment}},
)
"""


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("gateway")
    proxy_port = free_port()
    config = folder / "config.py"
    settings = dict(api_port=free_port(), proxy_port=proxy_port, password=PASSWORD, dask=str(VENV_BIN / "dask"))
    config.write_text(GATEWAY_CONFIG.format(clusters=str(folder / "clusters"), **settings))
    log = (folder / "gateway.log").open("w")
    # Workers inherit PYTHONPATH (LocalBackend.inherited_environment): they import this checkout.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    for name in LOCAL_CREDENTIALS:
        env.pop(name, None)  # workers get credentials only through the cluster's environment
    command = [str(VENV_BIN / "dask-gateway-server"), "-f", str(config)]
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_until_answering(f"{url}/api/health", process)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture
def gateway_auth(monkeypatch):
    """Basic auth from dask's configuration, as DASK_GATEWAY__* variables set it."""
    monkeypatch.setenv("DASK_GATEWAY__AUTH__TYPE", "basic")
    monkeypatch.setenv("DASK_GATEWAY__AUTH__KWARGS__PASSWORD", PASSWORD)
    for name in LOCAL_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    dask.config.refresh()
    yield
    monkeypatch.undo()
    dask.config.refresh()


def running_clusters(url: str) -> list:
    from dask_gateway import Gateway

    # Not closed explicitly: its garbage collection closes it (a second close would fail).
    return [c for c in Gateway(url).list_clusters() if c.status.name in ("PENDING", "RUNNING")]


class RecordingExecutor(GatewayExecutor):
    """Keeps what each task is sent, pickled as it travels to the scheduler."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[bytes] = []

    def _submit(self, batch, concurrency):
        self.sent.append(pickle.dumps(batch))
        return super()._submit(batch, concurrency)


def as_dicts(objects) -> list[dict]:
    return sorted((o.to_dict() for o in objects), key=lambda d: (d.get("collection", ""), d["id"]))


def test_catalogue_equals_a_single_process_run(gateway_url, gateway_auth, sample_config, sample_crawl):
    executor = RecordingExecutor(gateway_url, workers=2)
    try:
        items = []
        running = Crawl(sample_config, scale=Scale(batch_size=2), executor=executor)  # several tasks per worker
        result = running.run(sink=items.append)
        # TLS to the scheduler (through the gateway's proxy) and between workers, with the
        # certificates the gateway issued for this cluster.
        assert executor.client.scheduler.address.startswith("gateway://")
        connection = executor.client.security.get_connection_args("client")
        assert connection["require_encryption"] and connection["ssl_context"].verify_mode == ssl.CERT_REQUIRED
        workers = executor.client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(address.startswith("tls://") for address in workers)
        # The sample storage has keys: none of them is in a task.
        key, secret = (getattr(sample_config.sources[0].storage, f).get_secret_value() for f in ("key", "secret"))
        assert executor.sent and not any(key.encode() in sent or secret.encode() in sent for sent in executor.sent)
    finally:
        executor.close()
    assert as_dicts(items) == as_dicts(sample_crawl.items)
    assert as_dicts(result.collections) == as_dicts(sample_crawl.collections)
    assert result.failures == sample_crawl.failures == []
    assert running_clusters(gateway_url) == []  # shut down at the end


@pytest.fixture(scope="module")
def private_store(s3_server, storage) -> str:
    """A store only readable with the keys (anonymous reads are refused)."""
    s3_server.create_bucket(PRIVATE_BUCKET)
    url = f"s3://{PRIVATE_BUCKET}/region/antimeridian.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), url, storage, public=False)
    return url


def test_configured_keys_reach_the_workers_through_their_environment(
    gateway_url, gateway_auth, private_store, storage, s3_server
):
    # Keys as a mapping configuration gives them: in StorageOptions, never in a task.
    source = SourceConfig(url=f"s3://{PRIVATE_BUCKET}/region", storage=storage)
    result = crawl(MappingConfig(sources=[source]), scale=Scale(dask_gateway=gateway_url, gateway_workers=1))
    assert result.failures == []
    assert [item.id for item in result.items] == ["antimeridian"]
    assert running_clusters(gateway_url) == []
    # Without the keys the same store is refused: the catalogued item needed them.
    anonymous = StorageOptions(endpoint_url=s3_server.endpoint_url, anon=True)
    refused = crawl(MappingConfig(sources=[SourceConfig(url=private_store, storage=anonymous)]))
    assert [f.kind for f in refused.failures] == ["access-denied"]


def test_cli_passes_environment_keys_to_the_workers(
    gateway_url, gateway_auth, private_store, s3_server, monkeypatch, tmp_path
):
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)  # how the CLI takes keys (botocore reads them)
    monkeypatch.setenv("DASK_GATEWAY__ADDRESS", gateway_url)  # as a hub sets it
    dask.config.refresh()
    out = tmp_path / "stac"
    args = ["build", f"s3://{PRIVATE_BUCKET}/region", "-o", str(out), "--endpoint-url", s3_server.endpoint_url]
    args += ["--dask-gateway", "config", "--gateway-workers", "1"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    published = "".join(path.read_text() for path in out.rglob("*.json"))
    assert '"antimeridian"' in published
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert LOCAL_CREDENTIALS[name] not in result.output and LOCAL_CREDENTIALS[name] not in published
    assert running_clusters(gateway_url) == []


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_cluster_is_shut_down_when_the_crawl_stops(gateway_url, gateway_auth, sample_config, interruption):
    def stop(outcome):
        assert running_clusters(gateway_url) != []  # the cluster is up while the crawl runs
        raise interruption("stop here")

    with pytest.raises(interruption):
        crawl(sample_config, scale=Scale(dask_gateway=gateway_url, gateway_workers=1), on_progress=stop)
    assert running_clusters(gateway_url) == []


def test_wrong_password_is_one_line(gateway_url, gateway_auth, sample_config, monkeypatch):
    monkeypatch.setenv("DASK_GATEWAY__AUTH__KWARGS__PASSWORD", "not-the-password")
    dask.config.refresh()
    with pytest.raises(ClusterError) as raised:
        crawl(sample_config, scale=Scale(dask_gateway=gateway_url))
    message = str(raised.value)
    assert "\n" not in message and gateway_url in message and "401" in message
    assert "not-the-password" not in message


def test_cli_unreachable_gateway_is_one_line(sample_bucket, s3_server, monkeypatch, gateway_auth, tmp_path):
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    nowhere = f"http://127.0.0.1:{free_port()}"
    args = ["build", f"{sample_bucket}/ocean", "-o", str(tmp_path / "stac"), "--endpoint-url", s3_server.endpoint_url]
    result = CliRunner().invoke(app, [*args, "--dask-gateway", nowhere], catch_exceptions=False)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if nowhere in line]
    assert len(lines) == 1 and "Dask Gateway" in lines[0] and "Traceback" not in result.output
