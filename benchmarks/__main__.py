"""`python -m benchmarks [NAME ...]`: run the named benchmarks (default: all) and update BENCHMARKS.md."""

import runpy
import sys

BENCHMARKS = {
    "static": "benchmarks.static_catalog",
    "crawl": "benchmarks.crawl",
    "rerun": "benchmarks.rerun",
    "ingest": "benchmarks.ingest",
    "api": "benchmarks.api",
    "filter": "benchmarks.filter",
    "aggregation": "benchmarks.aggregation",
    "catalogue-inputs": "benchmarks.catalogue_inputs",
    "scale": "benchmarks.scale",
}

names = sys.argv[1:] or list(BENCHMARKS)
for name in names:
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
for name in names:
    sys.argv = [BENCHMARKS[name]]
    runpy.run_module(BENCHMARKS[name], run_name="__main__")
