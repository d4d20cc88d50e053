"""A data centre's holdings: many collections, searched without naming one (issue 27).

    python -m benchmarks.scale [--collections C] [--items-per-collection N] [--requests R]

The collections are grouped as an intake-esm `groupby_attrs` groups CMIP6 stores: each
collection is one model (`source_id`, 100 of them) and one experiment (8), so its facets are
constant within it and its items (one per variable and member) share its period (historical
1850-2014, scenarios 2015-2100, ...) and its domain (10 % global, the rest one of 14
CORDEX-like regional domains). The same items are loaded twice into one PostgreSQL (the
project's cluster, its lock table sized by `zarr_stac.services.postgres.SERVER_SETTINGS`):
by `zarr-stac load`'s `Ingest` (queryables, indexes, summaries, collection bounds) and by raw
pypgstac (`Loader.load_items`, upsert, into a database `pypgstac migrate` alone made). Then
zarr-stac's app and the stock `stac_fastapi.pgstac.app:create_app` each serve their own
database (uvicorn, one worker, own process), and R requests of each kind are sent one at a
time (after 2 warm-up requests); a request slower than TIMEOUT counts as failed.
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from pathlib import Path

from .common import machine, now, write_section

EXPERIMENTS = {  # experiment: period of its runs
    "historical": ("1850-01-01", "2014-12-31"),
    "ssp126": ("2015-01-01", "2100-12-31"),
    "ssp245": ("2015-01-01", "2100-12-31"),
    "ssp370": ("2015-01-01", "2100-12-31"),
    "ssp585": ("2015-01-01", "2100-12-31"),
    "piControl": ("1850-01-01", "2349-12-31"),
    "amip": ("1979-01-01", "2014-12-31"),
    "1pctCO2": ("1850-01-01", "1999-12-31"),
}
DOMAINS = [  # west, south, east, north (CORDEX-like)
    (-45, 21, 65, 73),  # Europe
    (-25, -46, 60, 42),  # Africa
    (-171, 12, -22, 76),  # North America
    (-106, -58, -16, 18),  # South America
    (-50, 20, 155, 70),  # Central Asia
    (19, -15, 116, 45),  # South Asia
    (65, -5, 180, 65),  # East Asia
    (89, -15, 147, 27),  # South-East Asia
    (110, -53, 180, 13),  # Australasia
    (-180, -90, 180, -55),  # Antarctica
    (-180, 60, 180, 90),  # Arctic
    (-115, -13, -28, 31),  # Central America
    (25, 5, 75, 45),  # Middle East
    (-35, -35, 60, 40),  # Atlantic
]
VARIABLES = ["tas", "pr", "psl", "uas", "vas", "huss", "rsds", "tasmax", "tasmin", "sfcWind"]
SOURCES = [f"Model-{n:02d}" for n in range(100)]
TIMEOUT = 60  # seconds

SEARCHES = {
    # Over Europe in 2001: the historical-period runs of the global and European collections.
    "search bbox+datetime": "/search?bbox=0,40,10,50&datetime=2001-01-01T00:00:00Z/2001-12-31T23:59:59Z&limit=10",
    "search CQL2 facet filter": "/search?limit=10&filter-lang=cql2-text&filter="
    + "source_id = 'Model-07' AND experiment_id = 'ssp585' AND variable_id = 'tas'".replace(" ", "%20").replace(
        "'", "%27"
    ),
    "search facet filter + bbox": "/search?limit=10&bbox=0,40,10,50&filter-lang=cql2-text&filter="
    + "experiment_id = 'ssp585' AND variable_id = 'tas'".replace(" ", "%20").replace("'", "%27"),
    "search, no filter (first page)": "/search?limit=10",
    "/collections?limit=10": "/collections?limit=10",
    "collection search q": "/collections?q=Model-07&limit=10",
    "collection search bbox+datetime": "/collections?bbox=0,40,10,50&datetime=2001-01-01T00:00:00Z/..&limit=10",
}


def write_inputs(n_collections: int, per_collection: int, folder: Path) -> tuple[Path, Path]:
    """ndjson of the collections and of their items (in arrival order: interleaved)."""
    import datetime as dt

    import orjson
    import pystac

    from stac_api.loading.documents import for_pgstac

    from .common import template_item

    folder.mkdir(parents=True, exist_ok=True)
    collections_file = folder / f"scale-collections-{n_collections}.ndjson"
    items_file = folder / f"scale-items-{n_collections}x{per_collection}.ndjson"
    if items_file.exists():
        return collections_file, items_file
    rng = random.Random(27)
    template = template_item()
    template.pop("links", None)
    groups = []
    with open(collections_file, "wb") as out:
        for c in range(n_collections):
            source, experiment = SOURCES[c % len(SOURCES)], list(EXPERIMENTS)[c // len(SOURCES) % len(EXPERIMENTS)]
            domain = (-180, -90, 180, 90) if rng.random() < 0.1 else rng.choice(DOMAINS)
            start, end = (dt.datetime.fromisoformat(d + "T00:00:00+00:00") for d in EXPERIMENTS[experiment])
            cid = f"CMIP6.{source}.{experiment}.r{c // 800}"
            groups.append((cid, source, experiment, domain, start, end))
            collection = pystac.Collection(
                cid,
                f"{source} {experiment} runs",
                pystac.Extent(pystac.SpatialExtent([list(domain)]), pystac.TemporalExtent([[start, end]])),
                license="CC-BY-4.0",
                keywords=[source, experiment],
            )
            out.write(orjson.dumps(for_pgstac(collection)) + b"\n")
    with open(items_file, "wb") as out:
        for k in range(per_collection):
            for cid, source, experiment, domain, start, end in groups:
                data = copy.deepcopy(template)
                variable, member = VARIABLES[k % len(VARIABLES)], f"r{k // len(VARIABLES) + 1}i1p1f1"
                data["id"] = f"{cid}.{member}.{variable}"
                data["collection"] = cid
                west, south, east, north = domain
                data["bbox"] = [west, south, east, north]
                data["geometry"] = {
                    "type": "Polygon",
                    "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
                }
                props = data["properties"]
                props.update(
                    datetime=None,
                    start_datetime=start.isoformat(),
                    end_datetime=end.isoformat(),
                    source_id=source,
                    experiment_id=experiment,
                    variable_id=variable,
                    member_id=member,
                )
                data["assets"]["zarr"]["href"] = f"s3://bucket/{cid}/{member}/{variable}.zarr"
                out.write(orjson.dumps(data) + b"\n")
    return collections_file, items_file


def measure(base: str, path: str, requests: int) -> dict:
    import httpx

    latencies, errors, codes = [], 0, set()
    with httpx.Client(timeout=TIMEOUT) as client:
        for n in range(requests + 2):
            start = time.perf_counter()
            try:
                response = client.get(base + path)
                ok = response.status_code == 200
                codes.add(response.status_code)
            except httpx.HTTPError:
                ok = False
                codes.add("timeout")
            elapsed = time.perf_counter() - start
            if n < 2:
                if not ok and n == 1 and not latencies:
                    pass
                continue  # warm-up
            if ok:
                latencies.append(elapsed * 1000)
            else:
                errors += 1
                if errors >= 3:  # three failures: the rest would fail too
                    break
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")

    return {"p50": pct(50), "p99": pct(99), "ok": len(latencies), "errors": errors, "codes": sorted(map(str, codes))}


def cell(result: dict) -> str:
    if not result["ok"]:
        return f"failed ({', '.join(result['codes'])})"
    text = f"{result['p50']:.0f} / {result['p99']:.0f}"
    if result["errors"]:
        text += f" ({result['errors']} failed: {', '.join(result['codes'])})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--items-per-collection", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    import tempfile

    import psycopg

    from .api import served
    from .ingest import run_ingest_trial
    from .pg import cluster, database_for

    n_items = args.collections * args.items_per_collection
    collections_file, items_file = write_inputs(
        args.collections, args.items_per_collection, Path(tempfile.gettempdir()) / "zarr-stac-bench-scale"
    )
    loads, results = {}, {}
    with cluster() as pg:
        dsns = {
            "zarr-stac": database_for(pg, "zarr-stac", "scale_ours"),
            "stock": database_for(pg, "pypgstac", "scale_stock"),
        }
        for engine, name in (("zarr-stac", "zarr-stac"), ("pypgstac", "stock")):
            loads[name] = run_ingest_trial(engine, dsns[name], collections_file, items_file)
            print(name, loads[name], flush=True)
            with psycopg.connect(dsns[name], autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        for name, app in (("zarr-stac", "stac_api.app:create_app"), ("stock", "stac_fastapi.pgstac.app:create_app")):
            with served(app, dsns[name]) as base:
                for label, path in SEARCHES.items():
                    results[(name, label)] = measure(base, path, args.requests)
                    print(name, label, results[(name, label)], flush=True)

    rows = ["| request | zarr-stac p50 / p99 (ms) | stock p50 / p99 (ms) | ratio (p50) |", "|---|---|---|---|"]
    for label in SEARCHES:
        ours, stock = results[("zarr-stac", label)], results[("stock", label)]
        if ours["ok"] and stock["ok"]:
            ratio = f"**{stock['p50'] / ours['p50']:.1f}×**"
        elif ours["ok"]:
            ratio = "stock: none answered"
        else:
            ratio = "—"
        rows.append(f"| `{label}` | {cell(ours)} | {cell(stock)} | {ratio} |")
    ours_load, stock_load = loads["zarr-stac"], loads["stock"]
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in ours_load.get("steps", {}).items())
    command = (
        f"python -m benchmarks.scale --collections {args.collections} --items-per-collection "
        f"{args.items_per_collection} --requests {args.requests}"
    )
    body = f"""
Command: `{command}` (run {now()}).
Machine: {machine()}. PostgreSQL, the API and the client on the same 2 cores.
Data: {n_items:,} items in {args.collections:,} collections, grouped as intake-esm groups CMIP6 (one model and one
experiment per collection: facets constant within it, its items sharing its period and its domain; 10 % global,
the rest one of 14 regional domains). Loaded twice into one cluster (`max_locks_per_transaction` 1024 ×
`max_connections` 200, as `zarr-stac db start`): by zarr-stac's `Ingest` and by raw pypgstac; `VACUUM ANALYZE` on
both; each served by its app, {args.requests} requests of each kind one at a time after 2 warm-ups (a failure
or {TIMEOUT} s: failed; three: the rest not sent).

| load | items/s (loading) | items/s incl. queryables, indexes, summaries, bounds |
|---|---|---|
| zarr-stac `Ingest` | {n_items / ours_load["load_seconds"]:.0f} | {n_items / ours_load["total_seconds"]:.0f} |
| pypgstac `Loader.load_items` upsert | {n_items / stock_load["load_seconds"]:.0f} | (none made) |

zarr-stac's steps: {steps}.

{chr(10).join(rows)}
"""
    write_section("Many collections: searches that name none, and the load", body)
    print(body)


if __name__ == "__main__":
    main()
