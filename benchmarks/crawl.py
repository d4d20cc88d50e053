"""Crawling many stores: zarr-stac vs the naive `xr.open_zarr` + `xstac.xarray_to_stac` loop.

    python -m benchmarks.crawl [--stores N] [--latency S] [--repeat R] [--large N]

The stores are copies of one template store served by `benchmarks.synthetic_s3`
(an S3 API subset on loopback, in its own process, with a fixed latency per
request), because moto tops out at a few hundred requests per second. Two
templates: a CF-attributed CMIP6-like store, and an attribute-less one as plain
xarray writes it (lat/lon without attributes, time from a pandas index), which
is what most data centres hold.
The naive loop runs on a sample of the stores and is extrapolated per store.
Each trial runs in a fresh interpreter; the server counts requests.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import warnings
from pathlib import Path

from .common import Series, machine, now, run_trial, write_section

KINDS = {"cf": "CF-attributed", "plain": "attribute-less"}

# What bounds the rate, measured by profiling (benchmarks/mapping_profile.py); kept beside the table.
ANALYSIS = """Where they are not met, the cause is CPU, not waiting: with every request of a batch in
flight, the rate is what 2 cores do per store: request handling (botocore, aiohttp) plus decoding and mapping
(`python -m benchmarks.mapping_profile` measures the latter alone). Past that point only more cores help:
`--processes` on a bigger machine, or `--dask-scheduler` to spread batches over a cluster."""


def plain_dataset():
    """As plain xarray writes a store: 24×45×90, no attributes on lat/lon, time from a pandas index."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), np.zeros((24, 45, 90), "f4"))},
        coords={
            "time": pd.date_range("2000-01-01", periods=24, freq="MS"),
            "lat": np.linspace(-88, 88, 45),
            "lon": np.linspace(0, 356, 90),
        },
    )


def template_store(kind: str = "cf") -> Path:
    from zarr_stac.samples import cmip6_like, write_dataset

    path = Path(tempfile.mkdtemp(prefix=f"bench-template-{kind}-")) / "store.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "plain":
            plain_dataset().to_zarr(str(path), zarr_format=2, consolidated=True)
        else:
            write_dataset(cmip6_like("ModelA", "historical", "tas"), str(path))
    return path


def trial(engine: str, endpoint: str, stores: int, sample: int, processes: int) -> dict:
    from zarr_stac.common.storage import StorageOptions

    storage = StorageOptions(endpoint_url=endpoint, anon=True)
    start = time.perf_counter()
    if engine == "zarr-stac":
        from zarr_stac.loaders.running.crawl import Crawl, Scale

        # The path `zarr-stac build` takes: worker processes only past two batches of stores.
        result = Crawl("s3://synthetic/stores", storage, scale=Scale(processes=processes)).run()
        done, failures = result.catalogued, len(result.failures)
    else:
        import pystac
        import xarray as xr
        import xstac

        template = pystac.Item(
            "x", None, None, None, {"start_datetime": "2000-01-01T00:00:00Z", "end_datetime": "2000-01-01T00:00:00Z"}
        )
        options = {"endpoint_url": endpoint, "anon": True}
        done = failures = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(sample):
                ds = xr.open_zarr(f"s3://synthetic/stores/store-{i:06d}.zarr", storage_options=options)
                xstac.xarray_to_stac(
                    ds,
                    template,
                    temporal_dimension="time",
                    x_dimension="lon",
                    y_dimension="lat",
                    reference_system=4326,
                    validate=False,
                )
                done += 1
    seconds = time.perf_counter() - start
    return {
        "stores": done,
        "failures": failures,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def measure(engine: str, template: Path, stores: int, latency: float, sample: int, processes: int) -> dict:
    from benchmarks.synthetic_s3 import SyntheticS3Server

    with SyntheticS3Server(template, stores, latency=latency) as server:
        out = run_trial(
            "benchmarks.crawl",
            "--trial",
            engine,
            "--endpoint",
            server.endpoint_url,
            "--stores",
            str(stores),
            "--sample",
            str(sample),
            "--processes",
            str(processes),
        )
        out["requests"] = server.requests()
    out["stores_per_second"] = out["stores"] / out["seconds"]
    out["requests_per_store"] = out["requests"] / max(out["stores"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=40, help="stores the naive loop reads (extrapolated)")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", type=int, default=100_000, help="stores for the zarr-stac-only run (0: skip)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS), help="template stores")
    parser.add_argument("--trial", choices=["zarr-stac", "naive"])
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.trial:
        print(json.dumps(trial(args.trial, args.endpoint, args.stores, args.sample, args.processes)))
        return

    rows = []
    for kind in args.kinds:
        template = template_store(kind)
        for latency in (0.0, args.latency):
            results = {
                engine: {"rate": Series(), "peak": Series(), "requests": Series()} for engine in ("zarr-stac", "naive")
            }
            for _ in range(args.repeat):
                for engine in ("zarr-stac", "naive"):
                    out = measure(engine, template, args.stores, latency, args.sample, args.processes)
                    print(kind, engine, latency, out, flush=True)
                    results[engine]["rate"].add(out["stores_per_second"])
                    results[engine]["peak"].add(max(out["peak_rss_mb"], out["children_peak_rss_mb"]))
                    results[engine]["requests"].add(out["requests_per_store"])
            rows.append((kind, latency, results))
    large = None
    if args.large:
        large = measure("zarr-stac", template_store("cf"), args.large, args.latency, args.sample, args.processes)
        print("large", large, flush=True)

    table = [
        "| stores | latency per request | engine | stores/s min / median / max | requests per store | peak RSS (MB, "
        "largest process) | zarr-stac ÷ naive |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, latency, results in rows:
        ratio = results["zarr-stac"]["rate"].median / results["naive"]["rate"].median
        for engine in ("zarr-stac", "naive"):
            r = results[engine]
            table.append(
                f"| {KINDS[kind]} | {latency * 1000:.0f} ms | {engine} | {r['rate'].triple('{:.1f}')} | "
                f"{r['requests'].median:.1f} | {r['peak'].triple('{:.0f}')} | "
                + (f"**{ratio:.1f}×**" if engine == "zarr-stac" else "")
                + " |"
            )
    large_text = ""
    small_peak = rows[-1][2]["zarr-stac"]["peak"].median
    if large:
        large_text = (
            f"\n**{args.large:,} stores, zarr-stac alone**, {args.latency * 1000:.0f} ms per request, "
            f"{args.processes} worker processes: "
            f"{large['stores']:,} catalogued in {large['seconds']:.0f} s = **{large['stores_per_second']:.0f} "
            f"stores/s**, "
            f"{large['requests_per_store']:.2f} requests per store, peak RSS {large['peak_rss_mb']:.0f} MB "
            f"(main process; "
            f"largest worker {large['children_peak_rss_mb']:.0f} MB), against {small_peak:.0f} MB for "
            f"{args.stores:,} stores: "
            f"{args.large / args.stores:.0f}× the stores, "
            f"{max(large['peak_rss_mb'], large['children_peak_rss_mb']) / small_peak:.1f}× the memory "
            "(the test suite holds 4,000 stores within 1.5× of the memory for 400).\n"
        )
    command = (
        f"python -m benchmarks.crawl "
        f"--stores {args.stores} --latency {args.latency} --repeat {args.repeat} --large {args.large}"
    )
    body = f"""
Command: `{command}` (run {now()}).
Machine: {machine()}.
Input: {args.stores:,} copies of a template store (v2, consolidated; time/lat/lon coordinates, one data variable):
CF-attributed (CMIP6-like, `standard_name`/`units`/`axis`) or attribute-less (as plain xarray writes it: 24×45×90,
lat/lon without attributes, time from a pandas index), served by `benchmarks.synthetic_s3` in its own process
(moto cannot serve this volume), with the given latency added to every request. zarr-stac: discovery + prefetch
(64 stores in flight per process) + mapping in {args.processes} worker processes (past two batches of 256 stores,
as `zarr-stac build` does). Naive: `xr.open_zarr` + `xstac.xarray_to_stac`, one store after the other, on the
first {args.sample} stores (rate extrapolated per store).

{chr(10).join(table)}
{large_text}
Targets: ≥ 50× the naive loop at 20 ms and ≥ 200 stores/s, on both kinds of store. {ANALYSIS}
"""
    write_section("Crawl: stores per second", body)
    print(body)


if __name__ == "__main__":
    main()
