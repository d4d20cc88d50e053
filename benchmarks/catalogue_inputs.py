"""Catalogue inputs at Pangeo's scale: a 500,000-row intake-esm table, streamed.

    python -m benchmarks.catalogue_inputs [--rows N] [--kind csv|esm|both]

The table has the header of Pangeo's `cmip6-zarr-consolidated-stores.csv`
(tests/data/catalogues/esm/pangeo-cmip6-faq-sample.csv) and rows made from its
values (distinct members and variables, so that every row is a distinct store);
the ESM variant is Pangeo's collection JSON (pangeo-cmip6-zarr.json) pointing at it
(gzipped, as `catalog_file`). Each trial runs in a fresh interpreter and measures:

- seconds and rows/s until the crawl hands its first batch of stores to the
  executor (the first store request), and until it has planned every row;
- the interpreter's peak RSS.

The stores do not exist: no store is read, only the catalogue (what is measured).
Prints one JSON line per trial; BENCHMARKS.md is written by hand from them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "catalogues" / "esm"


def make_inputs(rows: int, folder: Path) -> dict[str, Path]:
    header, *samples = (DATA / "pangeo-cmip6-faq-sample.csv").read_text().splitlines()
    lines = [header]
    for i in range(rows):
        cells = samples[i % len(samples)].split(",")
        cells[4] = f"r{i // 4 + 1}i1p1f1"  # member_id: one per four variables
        cells[8] = cells[8].replace("/r1i1p1f1/", f"/{cells[4]}/")
        lines.append(",".join(cells))
    text = "\n".join(lines) + "\n"
    csv_path = folder / "cmip6-zarr-consolidated-stores.csv"
    csv_path.write_text(text)
    gz_path = folder / "cmip6-zarr-consolidated-stores.csv.gz"
    gz_path.write_bytes(gzip.compress(text.encode(), compresslevel=6))
    esm = json.loads((DATA / "pangeo-cmip6-zarr.json").read_text())
    esm["catalog_file"] = str(gz_path)
    esm_path = folder / "pangeo-cmip6.json"
    esm_path.write_text(json.dumps(esm))
    return {"csv": csv_path, "esm": esm_path}


def trial(url: str, rows: int) -> dict:
    from zarr_stac.loaders.running.crawl import Crawl
    from zarr_stac.loaders.running.executors import Executor

    class FirstRequest(Executor):
        """Records when the first batch would be read, and reads nothing."""

        first: float | None = None
        jobs = 0

        def map(self, batches, concurrency):
            for batch in batches:
                if self.first is None:
                    self.first = time.perf_counter()
                self.jobs += len(batch)
            return iter(())

    start = time.perf_counter()
    executor = FirstRequest()
    result = Crawl(url, executor=executor).run()
    end = time.perf_counter()
    first = (executor.first or end) - start
    return {
        "input": Path(url).name,
        "rows": rows,
        "stores": executor.jobs,
        "failures": len(result.failures),
        "first_request_s": round(first, 3),
        "rows_per_s_to_first_request": round(rows / first) if executor.first and executor.first - start > 0 else None,
        "all_planned_s": round(end - start, 2),
        "rows_per_s_planned": round(rows / (end - start)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--kind", choices=["csv", "esm", "both"], default="both")
    parser.add_argument("--trial", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        print(json.dumps(trial(args.trial, args.rows)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-catalogues-") as folder:
        inputs = make_inputs(args.rows, Path(folder))
        for kind in ("csv", "esm") if args.kind == "both" else (args.kind,):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.catalogue_inputs"]
                + ["--rows", str(args.rows), "--trial", str(inputs[kind])],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
