"""CPU per store of reading and mapping, through the crawl's real per-store path.

    python -m benchmarks.mapping_profile [--stores N] [--top K] [--kind cf|plain|both] [--lazy]

Two kinds of local stores are written to a temporary folder: (a) CF-attributed, as
`zarr_stac.samples.cmip6_like` builds them, and (b) attribute-less, as plain xarray
writes a dataset whose time comes from a pandas index (`lat`/`lon` without attributes).
Each store is prefetched (`loaders.reading.fetch.prefetch`, outside the measurement, as the
crawl's I/O phase) and then catalogued with `loaders.running.jobs.run_job` (the CPU phase:
opening from memory, decoding, mapping, JSON check). `--lazy` measures
`loaders.running.crawl.inspect_store(url)` instead (opened through its URL, I/O included).
`--reference` turns every fast path off (loaders.mapping.item.FAST_AXES, loaders.reading.fastpath.FAST_OPEN
and FAST_DECODE, loaders.mapping.temporal.FAST_STEP): the per-store CPU as it was before them, in
the same conditions.

CPU time (time.process_time) is reported, not wall time: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
import warnings
from pathlib import Path

import xarray as xr

from .crawl import plain_dataset  # the attribute-less store of the crawl benchmark


def cf_dataset() -> xr.Dataset:
    from zarr_stac.samples import cmip6_like

    return cmip6_like("ModelA", "historical", "tas")


def write_stores(folder: Path, kind: str, count: int) -> list[str]:
    """`count` copies of one store (written once, copied: only the mapping is measured)."""
    import shutil

    ds = cf_dataset() if kind == "cf" else plain_dataset()
    first = folder / kind / "store-0000.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(first), mode="w", zarr_format=2, consolidated=True)
    urls = [str(first)]
    for i in range(1, count):
        target = folder / kind / f"store-{i:04d}.zarr"
        shutil.copytree(first, target)
        urls.append(str(target))
    return urls


def jobs_for(urls: list[str]):
    from zarr_stac.common.storage import StorageOptions
    from zarr_stac.loaders.config import SourceConfig
    from zarr_stac.loaders.finding.inputs import common_root, kind_of
    from zarr_stac.loaders.running.jobs import Job
    from zarr_stac.loaders.vocabulary import StoreRef

    root = common_root(urls)
    source = SourceConfig(url=root, storage=StorageOptions())
    return [Job(source, root, StoreRef(url=url, kind=kind_of(url))) for url in urls]


def prefetch_all(jobs) -> list:
    from zarr_stac.common.storage import StorageOptions
    from zarr_stac.loaders.reading.fetch import prefetch_many

    return asyncio.run(prefetch_many([job.ref for job in jobs], StorageOptions()))


def measure(kind: str, count: int, top: int, lazy: bool, folder: Path) -> float:
    from zarr_stac.loaders.running.crawl import inspect_store
    from zarr_stac.loaders.running.jobs import CataloguedStore, run_job

    urls = write_stores(folder, kind, count + 1)
    jobs = jobs_for(urls)
    prefetched = prefetch_all(jobs)

    def one(i: int):
        return inspect_store(urls[i]) if lazy else run_job(jobs[i], prefetched[i])

    warm = one(0)  # imports, first-call caches
    assert isinstance(warm, CataloguedStore), warm
    profile = cProfile.Profile()
    start = time.process_time()
    profile.enable()
    for i in range(1, count + 1):
        outcome = one(i)
        assert isinstance(outcome, CataloguedStore), outcome
    profile.disable()
    per_store = (time.process_time() - start) / count * 1000
    # The profiler itself costs CPU: time a second, unprofiled pass for the headline number.
    start = time.process_time()
    for i in range(1, count + 1):
        one(i)
    unprofiled = (time.process_time() - start) / count * 1000
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    print(f"===== {kind} stores ({'inspect_store, lazy' if lazy else 'run_job on prefetched bytes'}) =====")
    print(out.getvalue())
    print(f"{kind}: {unprofiled:.2f} ms CPU per store ({per_store:.2f} ms under cProfile), {count} stores")
    return unprofiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--kind", choices=["cf", "plain", "both"], default="both")
    parser.add_argument("--lazy", action="store_true", help="inspect_store(url) instead of run_job(prefetched)")
    parser.add_argument("--reference", action="store_true", help="every fast path off (as before they existed)")
    args = parser.parse_args()
    if args.reference:
        from zarr_stac.loaders.mapping import item, temporal
        from zarr_stac.loaders.reading import fastpath

        item.FAST_AXES = fastpath.FAST_OPEN = fastpath.FAST_DECODE = temporal.FAST_STEP = False
    kinds = ["cf", "plain"] if args.kind == "both" else [args.kind]
    with tempfile.TemporaryDirectory(prefix="mapping-profile-") as tmp:
        results = {kind: measure(kind, args.stores, args.top, args.lazy, Path(tmp)) for kind in kinds}
    for kind, ms in results.items():
        print(f"{kind}: {ms:.2f} ms CPU per store")


if __name__ == "__main__":
    main()
