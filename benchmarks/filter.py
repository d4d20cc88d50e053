"""A CQL2 property filter over 100,000 items: zarr-stac's property indexes vs the stock API.

    python -m benchmarks.filter [--items N] [--collections C] [--seconds S]

The filter of issue #5, `variable_id = 'tas' AND experiment_id = 'ssp585'`, over
100,000 items in 10 collections (CMIP-like holdings: few collections, many items
each). The items are loaded once by `zarr-stac load` (queryables with property
indexes) and once by raw pypgstac; zarr-stac's app serves the first, the stock
`stac_fastapi.pgstac.app:create_app` the second. One client sending one request
after the other for S seconds: latency, not throughput. The API benchmark runs the
same filter over 1,000 collections.
"""

from __future__ import annotations

import argparse

from .api import ENDPOINTS, FILTER, cells, loaded_twice, served
from .common import machine, now, run_trial, write_section


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    import httpx

    from .pg import cluster

    _, path, _ = ENDPOINTS["search CQL2 filter"]
    results, matches = {}, {}
    with cluster() as pg:
        ours_dsn, stock_dsn = loaded_twice(pg, args.items, args.collections, "filter")
        for name, app, dsn in (
            ("zarr-stac", "stac_api.app:create_app", ours_dsn),
            ("stock", "stac_fastapi.pgstac.app:create_app", stock_dsn),
        ):
            with served(app, dsn) as base:
                first = httpx.get(base + path, timeout=300).json()  # warm up; and what it finds
                matches[name] = sorted(f["id"] for f in first["features"])
                results[name] = run_trial(
                    "benchmarks.api", "--load", base + path, "--concurrency", "1", "--seconds", str(args.seconds)
                )
                print(name, results[name], flush=True)
    assert matches["zarr-stac"] == matches["stock"], "the two APIs answered the filter differently"
    ours, stock = results["zarr-stac"], results["stock"]
    speedup = stock["p50"] / ours["p50"]
    command = (
        f"python -m benchmarks.filter "
        f"--items {args.items} --collections {args.collections} --seconds {args.seconds:.0f}"
    )
    body = f"""
Command: `{command}` (run {now()}).
Machine: {machine()}. PostgreSQL, the API (uvicorn, one worker) and the client on the same 2 cores.
Request: `GET /search?limit=10&filter={FILTER}` (both answer the same {len(matches["stock"])} items on the first page),
one client, {args.seconds:.0f} s each.

| API | req/s | p50 / p95 / p99 (ms) |
|---|---|---|
| zarr-stac (property index per facet registered by `zarr-stac load`, search-order index) | {cells(ours)} |
| stock stac-fastapi-pgstac, items loaded by raw pypgstac | {cells(stock)} |

**zarr-stac answers in {ours["p50"]:.0f} ms (p50; target well under 100 ms), {speedup:.0f}× faster than stock.**
The API section runs the same filter over 1,000 collections, where planning one query per partition adds to both.
"""
    write_section(f"CQL2 property filter: {args.items:,} items in {args.collections:,} collections", body)
    print(body)


if __name__ == "__main__":
    main()
