"""The measurements behind the analysis of `benchmarks.rerun`, one at a time, in this process.

    python -m benchmarks.rerun_probes heads [--batches B]   # run_batch over unchanged stores: CPU, RSS, clients
    python -m benchmarks.rerun_probes raw [--heads N]       # the same HEADs with aiohttp alone, unsigned and signed
    python -m benchmarks.rerun_probes memory [--stores N]   # what the main process holds per store (tracemalloc)

Each prints what it measured; none writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from pathlib import Path

from . import rerun
from .common import rss_mb


def _unchanged_crawl(endpoint: str, line: bytes, stores: int, path: Path):
    """A Crawl of `stores` unchanged stores, discovered, with the earlier ledger's fingerprints."""
    from zarr_stac.common.storage import StorageOptions
    from zarr_stac.loaders.running.crawl import Crawl, Scale
    from zarr_stac.loaders.running.ledger import Ledger
    from zarr_stac.options import mapping_config

    data = rerun.synthetic_ledger(endpoint, line, stores, path).read_bytes()
    mapping = mapping_config(rerun.URL, None, StorageOptions(endpoint_url=endpoint, anon=True))
    return Crawl(mapping, scale=Scale(processes=1), previous=Ledger(data))


def heads(batches: int) -> None:
    """`jobs.run_batch` on batches of 256 unchanged stores (0 ms latency), as a worker runs them."""
    import aiobotocore.client

    from benchmarks.crawl import template_store
    from benchmarks.synthetic_s3 import SyntheticS3Server
    from zarr_stac.common.batching import batched
    from zarr_stac.loaders.running.jobs import UnchangedStore, run_batch
    from zarr_stac.services import free_port

    template, port = template_store("cf"), free_port()
    line = rerun.template_line(template, port)
    stores = 256 * batches
    with SyntheticS3Server(template, stores, port=port) as server:
        crawl = _unchanged_crawl(server.endpoint_url, line, stores, rerun.DATA / "probe-ledger.jsonl.gz")
        crawl.discover()
        crawl._known = crawl.previous.fingerprints()
        jobs = [crawl._with_digest(job) for job in crawl._jobs]
        print(f"RSS before the first batch: {rss_mb():.0f} MB", flush=True)
        requests, server_cpu, cpu = server.requests(), rerun.process_cpu(server.process.pid), time.process_time()
        for n, batch in enumerate(batched(jobs, 256), 1):
            assert all(isinstance(o, UnchangedStore) for o in run_batch(batch, 64))
            if n % 25 == 0:
                clients = sum(1 for o in gc.get_objects() if isinstance(o, aiobotocore.client.AioBaseClient))
                print(f"{n} batches: RSS {rss_mb():.0f} MB, aiobotocore clients alive {clients}", flush=True)
        requests = server.requests() - requests
        print(
            f"CPU per HEAD: run_batch {(time.process_time() - cpu) * 1000 / requests:.2f} ms, "
            f"server {(rerun.process_cpu(server.process.pid) - server_cpu) * 1000 / requests:.2f} ms"
        )


def raw(count: int, latency: float = 0.02, concurrency: int = 64) -> None:
    """The same HEADs with aiohttp alone: client CPU per HEAD, unsigned and signed (botocore's SigV4Auth)."""
    import aiohttp
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from benchmarks.crawl import template_store
    from benchmarks.synthetic_s3 import SyntheticS3Server

    auth = SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "s3", "us-east-1")
    with SyntheticS3Server(template_store("cf"), count, latency=latency) as server:

        async def run(sign: bool) -> None:
            gate = asyncio.Semaphore(concurrency)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

                async def one(i: int) -> tuple[str, int | None]:
                    url = f"{server.endpoint_url}/synthetic/stores/store-{i:06d}.zarr/.zmetadata"
                    headers = {}
                    if sign:
                        request = AWSRequest("HEAD", url)
                        auth.add_auth(request)
                        headers = dict(request.headers)
                    async with gate, session.head(url, headers=headers) as response:
                        return response.headers["ETag"], response.content_length

                start, cpu = time.perf_counter(), time.process_time()
                answers = await asyncio.gather(*(one(i) for i in range(count)))
                assert len(set(answers)) == 1
                print(
                    f"{'signed' if sign else 'unsigned'}: {count} HEADs in {time.perf_counter() - start:.1f} s, "
                    f"client CPU {(time.process_time() - cpu) * 1000 / count:.3f} ms per HEAD",
                    flush=True,
                )

        asyncio.run(run(False))
        asyncio.run(run(True))


def memory(stores: int) -> None:
    """What the main process of a rerun holds per store, by structure (tracemalloc)."""
    from benchmarks.crawl import template_store
    from benchmarks.synthetic_s3 import SyntheticS3Server
    from zarr_stac.loaders.reading.fetch import UNCHANGED
    from zarr_stac.loaders.running.jobs import run_job
    from zarr_stac.services import free_port

    template, port = template_store("cf"), free_port()
    line = rerun.template_line(template, port)
    with SyntheticS3Server(template, stores, port=port) as server:
        crawl = _unchanged_crawl(server.endpoint_url, line, stores, rerun.DATA / "probe-ledger.jsonl.gz")
        tracemalloc.start()
        crawl.discover()
        listed = tracemalloc.get_traced_memory()[0]
        crawl._known = crawl.previous.fingerprints()
        known = tracemalloc.get_traced_memory()[0]
        for job in crawl._jobs:  # as `run` records each unchanged store's outcome
            outcome = run_job(crawl._with_digest(job), UNCHANGED)
            crawl._unchanged[(outcome.job.ref.url, outcome.job.digest)] = outcome.job
        unchanged = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    print(
        f"{stores:,} stores: Crawl._jobs {listed / 2**20:.0f} MB, Ledger.fingerprints() {(known - listed) / 2**20:.0f} "
        f"MB, Crawl._unchanged {(unchanged - known) / 2**20:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("probe", choices=["heads", "raw", "memory"])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--heads", type=int, default=20_000)
    parser.add_argument("--stores", type=int, default=100_000)
    args = parser.parse_args()
    rerun.DATA.mkdir(exist_ok=True)
    if args.probe == "heads":
        heads(args.batches)
    elif args.probe == "raw":
        raw(args.heads)
    else:
        memory(args.stores)


if __name__ == "__main__":
    main()
