"""Aggregations over everything: how long `/aggregate` takes as the catalogue grows.

    python -m benchmarks.aggregation [--items N] [--collections C] [--repeat R]

The items of the API benchmark (clones of a real zarr-stac Item, with `variable_id` and
`experiment_id` facets), loaded by `zarr-stac load` (queryables, property indexes,
summaries), served by zarr-stac's app (uvicorn, one worker). Each aggregation is asked R
times, one request after the other, over every item (no search parameter) and once with a
facet filter; the stock app has no aggregation extension to compare with.
"""

from __future__ import annotations

import argparse
import statistics
import time

from .api import served
from .common import machine, now, write_section
from .ingest import run_ingest_trial, write_inputs

REQUESTS = {
    "total_count": {"aggregations": "total_count"},
    "experiment_id_frequency (one facet)": {"aggregations": "experiment_id_frequency"},
    "collection_frequency": {"aggregations": "collection_frequency"},
    "datetime_frequency": {"aggregations": "datetime_frequency"},
    "experiment_id_frequency, filter variable_id = 'tas'": {
        "aggregations": "experiment_id_frequency",
        "filter": "variable_id = 'tas'",
    },
}


def timed(url: str, params: dict, repeat: int) -> dict:
    import httpx

    with httpx.Client(timeout=600) as client:
        first = client.get(url, params=params)
        first.raise_for_status()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            client.get(url, params=params).raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50": statistics.median(times),
        "max": times[-1],
        "buckets": sum(len(a.get("buckets", [])) for a in first.json()["aggregations"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--collections", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import psycopg

    from .pg import cluster, database_for

    collections_file, items_file = write_inputs(args.items, args.collections)
    results = {}
    with cluster() as pg:
        dsn = database_for(pg, "zarr-stac", "aggregation")
        run_ingest_trial("zarr-stac", dsn, collections_file, items_file)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        with served("stac_api.app:create_app", dsn) as base:
            for name, params in REQUESTS.items():
                results[name] = timed(f"{base}/aggregate", params, args.repeat)
                print(name, results[name], flush=True)
    rows = "\n".join(f"| {name} | {r['buckets']} | {r['p50']:.0f} / {r['max']:.0f} |" for name, r in results.items())
    command = (
        f"python -m benchmarks.aggregation --items {args.items} --collections {args.collections} --repeat {args.repeat}"
    )
    body = f"""
Command: `{command}` (run {now()}).
Machine: {machine()}. PostgreSQL, the API (uvicorn, one worker) and the client on the same 2 cores.
`GET /aggregate` over all {args.items:,} items in {args.collections:,} collections (no search parameter unless
named), {args.repeat} requests one after the other after one warm-up.

| aggregation | buckets | p50 / max (ms) |
|---|---|---|
{rows}
"""
    write_section(f"Aggregations: {args.items:,} items in {args.collections:,} collections", body)
    print(body)


if __name__ == "__main__":
    main()
