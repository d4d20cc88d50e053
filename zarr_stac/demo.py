"""`zarr-stac demo`: the whole pipeline on the embedded default.

PostgreSQL cluster (reused between runs) → local S3 server with sample Zarr
stores → crawl → static catalogue + pgstac → STAC API and static catalogue served
on loopback until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from zarr_stac.common.publishing import Publisher, Report
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import MappingConfig, load_config
from zarr_stac.loaders.running.crawl import CrawlResult, OnProgress

from .publish import NothingToPublish, Published, publish
from .samples import write_samples
from .services import LOCAL_CREDENTIALS, PostgresCluster, S3Server, ensure_postgis
from .services.base import port_in_use

BUCKET = "zarr-stac-demo"
# The demo catalogues its samples as a data centre would, with the example mapping
# configuration that docker-compose's loader jobs use.
MAPPING = Path(__file__).resolve().parent.parent / "deploy" / "mapping.example.yaml"


def demo_mapping(endpoint_url: str) -> MappingConfig:
    """deploy/mapping.example.yaml, its variables set for the local S3 server."""
    os.environ.update(
        S3_BUCKET=BUCKET,
        AWS_ENDPOINT_URL=endpoint_url,
        S3_PUBLIC_ENDPOINT=endpoint_url,
        **LOCAL_CREDENTIALS,
    )
    return load_config(MAPPING)


def stop_on_signals() -> None:
    """SIGTERM (docker stop, systemd) and SIGHUP (a closed terminal) stop the demo as
    Ctrl-C does: through the `finally` that stops every service it started."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), interrupt)


class DemoSteps:
    """A `zarr_stac.publish.Watcher` that tells what each crawl catalogued, as a step of the demo."""

    def __init__(self, demo: Demo):
        self.demo = demo

    def discovering(self, where: str) -> AbstractContextManager[object]:
        return nullcontext()

    @contextmanager
    def reading(self, total: int) -> Iterator[OnProgress]:
        yield lambda outcome: None

    def crawled(self, result: CrawlResult) -> None:
        unchanged = f", {result.unchanged} unchanged: not read again" if result.unchanged else ""
        self.demo.step(
            f"catalogued {result.catalogued} stores in {len(result.collections)} collections "
            f"({len(result.failures)} skipped{unchanged})"
        )
        for failure in result.failures:
            self.demo.console.print(
                f"  [yellow]skipped[/] {escape(failure.url)}: {escape(failure.reason)}", soft_wrap=True
            )


# What to try against the running demo (the README lists the same).
TRY_COMMANDS = (
    ".venv/bin/zarr-stac crawl s3://{bucket} --endpoint-url {s3_url} --anon",
    ".venv/bin/zarr-stac inspect s3://{bucket}/ocean/north-atlantic-sst.zarr --endpoint-url {s3_url} --anon",
    '.venv/bin/python -c "from pystac_client import Client; '
    "print([i.id for i in Client.open('{api_url}').search(collections=['cmip6'], "
    "filter=\\\"variable_id = 'tas' AND experiment_id = 'ssp585'\\\").items()])\"",
)


@dataclass
class Demo:
    data_dir: Path
    api_port: int = 8080
    static_port: int = 8081
    s3_port: int = 8082
    pg_port: int | None = None  # None: the port the cluster was last started on
    host: str = "127.0.0.1"
    console: Console = field(default_factory=lambda: Console(stderr=True))

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def step(self, message: str) -> None:
        self.console.print(f"[bold cyan]›[/] {escape(message)}", soft_wrap=True, highlight=False)

    def run(self) -> None:
        from static_catalog.serve import serve_in_thread

        data_dir = self.data_dir.absolute()
        data_dir.mkdir(parents=True, exist_ok=True)
        busy = [p for p in (self.api_port, self.static_port, self.s3_port) if port_in_use(p, self.host)]
        if busy:
            raise SystemExit(
                f"port(s) {', '.join(map(str, busy))} on {self.host} already in use: is a demo already running? "
                f"(choose others with --api-port/--static-port/--s3-port)"
            )

        stop_on_signals()
        self.step("checking PostGIS")
        ensure_postgis()
        cluster = PostgresCluster(data_dir / "postgres", port=self.pg_port)
        s3 = S3Server(port=self.s3_port, host=self.host, log_file=data_dir / "s3-server.log")
        static_server = None
        try:
            self.step(f"PostgreSQL: {'reusing' if cluster.initialised() else 'creating'} the cluster in {cluster.root}")
            cluster.start()
            self.step(f"pgstac {cluster.migrate()} at {cluster.public_dsn}")

            self.step(f"S3 server (moto) on {s3.endpoint_url}")
            s3.start()
            # Crawl with credentials, as against a real store; the bucket is "public",
            # so the published assets tell readers to read anonymously.
            mapping = demo_mapping(s3.endpoint_url)
            storage = StorageOptions(endpoint_url=s3.endpoint_url, public_anon=True)
            s3.create_bucket(BUCKET, public=True)
            written = write_samples(f"s3://{BUCKET}", storage)
            self.step(f"wrote {len(written)} sample Zarr stores to s3://{BUCKET}")

            static_dir = data_dir / "static"
            self.catalogue(mapping, static_dir, cluster.dsn)
            static_server = serve_in_thread(static_dir, self.host, self.static_port)
            self.serve_api(cluster.dsn)
        finally:
            if static_server is not None:
                static_server.shutdown()
                static_server.server_close()
            s3.stop()
            cluster.stop()
            self.step("stopped")

    def catalogue(self, mapping: MappingConfig, static_dir: Path, dsn: str) -> None:
        """The samples into a static catalogue and into pgstac, as `zarr-stac build` and `zarr-stac
        load` do (the same driver, ledgers included: a second start reads no store)."""
        from stac_api.loading.ingest import Ingest
        from static_catalog.catalog import StaticCatalog
        from static_catalog.publication import Publication

        self.step(f"cataloguing them with {MAPPING.relative_to(MAPPING.parent.parent)}")
        catalog = StaticCatalog(
            str(static_dir),
            catalog_id=mapping.catalog.id,
            title=mapping.catalog.title,
            description=mapping.catalog.description,
        )
        written = self.publish_to(Publication(catalog), mapping, prune=True).report
        self.step(
            f"static catalogue in {static_dir} ({written.written} written, {written.unchanged} unchanged, "
            f"{written.deleted} deleted)"
        )
        loaded = self.publish_to(Ingest(dsn), mapping, prune=False).report
        kept = f", {loaded.kept} unchanged left as they were" if loaded.kept else ""
        self.step(f"loaded {loaded.collections} collections and {loaded.items} items into pgstac{kept}")

    def publish_to(self, publisher: Publisher[Report], mapping: MappingConfig, *, prune: bool) -> Published[Report]:
        try:
            return publish(publisher, mapping, prune=prune, watcher=DemoSteps(self))
        except NothingToPublish as nothing:  # the samples were just written: this is a bug, said in one line
            raise SystemExit(f"the demo's samples could not be catalogued: {nothing}") from None

    def serve_api(self, dsn: str) -> None:
        import uvicorn

        from stac_api.app import create_app
        from stac_api.serving.settings import Settings

        api_url = f"http://{self.host}:{self.api_port}"
        static_url = f"http://{self.host}:{self.static_port}/catalog.json"
        config = uvicorn.Config(
            create_app(Settings(database_url=dsn)),
            host=self.host,
            port=self.api_port,
            log_level="warning",
            proxy_headers=True,
        )
        server = uvicorn.Server(config)

        # uvicorn runs in a thread so that Ctrl-C reaches this one, which then asks
        # the server to finish its requests and stop (no traceback, no orphans).
        thread = threading.Thread(target=server.run, name="stac-api", daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise SystemExit(f"the STAC API did not start on {api_url}")
                time.sleep(0.05)
            self.console.print(
                f"\n[bold green]serving[/]\n"
                f"  STAC API:          {escape(api_url)}\n"
                f"  static catalogue:  {escape(static_url)}\n"
                "  try:\n"
                + "".join(
                    f"    {escape(c.format(bucket=BUCKET, s3_url=self.s3_url, api_url=api_url))}\n"
                    for c in TRY_COMMANDS
                )
                + "  Ctrl-C stops everything.\n",
                highlight=False,
                soft_wrap=True,
            )
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            self.step("stopping")
        finally:
            # The API stops before the services it uses.
            server.should_exit = True
            thread.join(15)
