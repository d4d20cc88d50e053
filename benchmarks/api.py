"""The API under load: zarr-stac's vs the stock stac-fastapi-pgstac app, same items.

    python -m benchmarks.api [--items N] [--collections C] [--seconds S]

Two databases hold the same 100,000 items in 1,000 collections: one loaded by
`zarr-stac load` (queryables with property indexes), one by raw pypgstac (what a
stock deployment has). zarr-stac's app serves the first, the stock
`stac_fastapi.pgstac.app:create_app` the second, each with uvicorn in its own
process (one worker). The load generator is a third process: an asyncio client
keeping C requests in flight for S seconds per endpoint and concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from .common import machine, now, run_trial, write_section
from .ingest import run_ingest_trial, write_inputs

FILTER = "variable_id = 'tas' AND experiment_id = 'ssp585'"
ENDPOINTS = {
    "landing page": ("GET", "/", None),
    "/collections?limit=10": ("GET", "/collections?limit=10", None),
    "items page (limit=100)": ("GET", "/collections/collection-0005/items?limit=100", None),
    "search bbox+datetime": (
        "GET",
        "/search?bbox=-10,-5,10,5&datetime=2000-01-01T00:00:00Z/2001-01-01T00:00:00Z&limit=10",
        None,
    ),
    "search CQL2 filter": ("GET", "/search?limit=10&filter=" + FILTER.replace(" ", "%20").replace("'", "%27"), None),
}
CONCURRENCY = (1, 8, 32)
TIMEOUT = 120  # seconds a client waits for an answer


async def _load(url: str, concurrency: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.HTTPError:  # a timeout (TIMEOUT s) included
                    errors += 1
                    continue
                if response.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    # Answered requests only: a request that failed or timed out is an error, not a rate.
    return {
        "rps": len(latencies) / elapsed,
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "errors": errors,
        "requests": len(latencies) + errors,
    }


def cells(result: dict) -> str:
    """req/s and latency cells of the table; failures (timeouts: > TIMEOUT s) said as such."""
    rate = f"{result['rps']:.2f}" if result["rps"] < 10 else f"{result['rps']:.1f}"
    if result["errors"]:
        rate += f" ({result['errors']} of {result['requests']} failed or timed out)"
    if not result["requests"] - result["errors"]:
        return f"{rate} | all > {TIMEOUT} s"
    return f"{rate} | {result['p50']:.0f} / {result['p95']:.0f} / {result['p99']:.0f}"


@contextmanager
def served(app: str, dsn: str) -> Iterator[str]:
    """`app` (an app factory) under uvicorn in its own process, one worker, over `dsn`;
    yields its base URL once it answers."""
    import httpx

    from zarr_stac.services import free_port

    parts = urlsplit(dsn)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PGUSER": parts.username,
        "PGPASSWORD": parts.password,
        "PGHOST": parts.hostname,
        "PGPORT": str(parts.port),
        "PGDATABASE": parts.path.lstrip("/"),
    }
    env.update(STAC_FASTAPI_TITLE="bench", STAC_FASTAPI_DESCRIPTION="bench", STAC_FASTAPI_LANDING_ID="bench")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} did not come up")
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:  # still finishing queries that timed out
            server.kill()
            server.wait()
        _end_leftover_queries(dsn)


def _end_leftover_queries(dsn: str) -> None:
    """Queries whose clients gave up (timeouts) run on in PostgreSQL after their server
    is gone, and would slow whatever is measured next: ended here."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid "
            "<> pg_backend_pid()"
        )


def loaded_twice(pg, items: int, collections: int, prefix: str) -> tuple[str, str]:
    """Two databases holding the same items: loaded by `zarr-stac load` (queryables with
    property indexes, search-order index) and by raw pypgstac into a database `pypgstac
    migrate` alone made (a stock deployment); both analysed."""
    import psycopg

    from .pg import database_for

    collections_file, items_file = write_inputs(items, collections)
    ours, stock = database_for(pg, "zarr-stac", f"{prefix}_ours"), database_for(pg, "pypgstac", f"{prefix}_stock")
    for engine, dsn in (("zarr-stac", ours), ("pypgstac", stock)):
        run_ingest_trial(engine, dsn, collections_file, items_file)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return ours, stock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--load", help="(internal) run the load generator against this URL")
    parser.add_argument("--concurrency", type=int)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(_load(args.load, args.concurrency, args.seconds))))
        return

    import httpx

    from .pg import cluster

    results: dict[tuple[str, str, int], dict] = {}
    with cluster() as pg:
        ours_dsn, stock_dsn = loaded_twice(pg, args.items, args.collections, "api")
        stock_app = "stac_fastapi.pgstac.app:create_app"
        # The third run (the stock app on zarr-stac's database) tells what the app
        # changes from what the database's content (indexes, summaries) changes.
        for name, app, dsn in (
            ("zarr-stac", "stac_api.app:create_app", ours_dsn),
            ("stock", stock_app, stock_dsn),
            ("stock app, our database", stock_app, ours_dsn),
        ):
            with served(app, dsn) as base:
                for label, (_, path, _) in ENDPOINTS.items():
                    for _ in range(3):  # warm up (plans, connections)
                        httpx.get(base + path, timeout=300)
                    for concurrency in CONCURRENCY:
                        seconds = args.seconds if not (name == "stock" and "CQL2" in label) else max(args.seconds, 30)
                        out = run_trial(
                            "benchmarks.api",
                            "--load",
                            base + path,
                            "--concurrency",
                            str(concurrency),
                            "--seconds",
                            str(seconds),
                        )
                        results[(name, label, concurrency)] = out
                        print(name, label, concurrency, out, flush=True)

    table = [
        "| endpoint | clients | zarr-stac req/s | p50 / p95 / p99 (ms) | stock req/s | p50 / p95 / p99 (ms) | "
        "ratio | stock app on zarr-stac's database, req/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in ENDPOINTS:
        for concurrency in CONCURRENCY:
            ours, stock, cross = (
                results[(name, label, concurrency)] for name in ("zarr-stac", "stock", "stock app, our database")
            )
            ratio = f"{ours['rps'] / stock['rps']:.2f}×" if stock["rps"] else "stock: none answered"
            table.append(
                f"| {label} | {concurrency} | {cells(ours)} | {cells(stock)} | **{ratio}** | "
                f"{cells(cross).split(' | ')[0]} |"
            )
    command = f"python -m benchmarks.api --items {args.items} --collections {args.collections} --seconds {args.seconds}"
    body = f"""
Command: `{command}` (run {now()}).
Machine: {machine()}. Everything on the same 2 cores: PostgreSQL, the API (uvicorn, one worker), the load generator.
Data: {args.items:,} items in {args.collections:,} collections, twice: loaded by `zarr-stac load` (served by zarr-stac's
app) and by raw pypgstac (served by the stock `stac_fastapi.pgstac.app:create_app`); `VACUUM ANALYZE` on both.
Each point: {args.seconds:.0f} s (30 s for the stock CQL2 filter) of closed-loop load from a separate process.

{chr(10).join(table)}

Targets: ≥ 1.0× everywhere, ≥ 3× on `/collections` pages, ≥ 100× on the CQL2 property filter. The filter gain is
the property index zarr-stac registers when it loads (stock: every item's JSON is read and parsed per request).
The last column is the stock app on zarr-stac's database: where it matches zarr-stac's column, a difference
from stock comes from what the database holds (a property index per facet and collection, the search-order
index, collection summaries), not from zarr-stac's app.
"""
    write_section("API under load: zarr-stac vs stock stac-fastapi-pgstac", body)
    print(body)


if __name__ == "__main__":
    main()
