"""What every benchmark shares: synthetic STAC, child-process trials, statistics, the report."""

from __future__ import annotations

import copy
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def rss_mb() -> float:
    """Current resident memory of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def template_item() -> dict:
    """A realistic Item: what zarr-stac makes of a CMIP6-like store (datacube, assets)."""
    from zarr_stac.loaders.running.crawl import crawl
    from zarr_stac.samples import cmip6_like, write_dataset

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(cmip6_like("ModelA", "historical", "tas"), f"{folder}/cmip6/ModelA/historical/tas.zarr")
        result = crawl(folder)
    data = result.items[0].to_dict(include_self_link=False, transform_hrefs=False)
    data["assets"]["zarr"]["href"] = "s3://bucket/cmip6/ModelA/historical/tas.zarr"
    return data


def synthetic_stac(n_items: int, n_collections: int, template: dict | None = None):
    """`n_items` pystac Items (clones of a real one, each its own id and bbox) in `n_collections`."""
    import datetime as dt

    import pystac

    template = template or template_item()
    collections = [
        pystac.Collection(
            id=f"collection-{c:04d}",
            description=f"Synthetic collection {c}",
            extent=pystac.Extent(
                pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                pystac.TemporalExtent(
                    [
                        [
                            dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
                            dt.datetime(2014, 12, 31, tzinfo=dt.timezone.utc),
                        ]
                    ]
                ),
            ),
            license="CC-BY-4.0",
        )
        for c in range(n_collections)
    ]
    items = []
    for i in range(n_items):
        data = copy.deepcopy(template)
        data["id"] = f"item-{i:06d}"
        data["collection"] = collections[i % n_collections].id
        west = -180.0 + (i % 350)
        data["bbox"] = [west, -10.0, west + 10.0, 10.0]
        data["geometry"] = {
            "type": "Polygon",
            "coordinates": [[[west, -10.0], [west + 10, -10.0], [west + 10, 10.0], [west, 10.0], [west, -10.0]]],
        }
        data["assets"]["zarr"]["href"] = f"s3://bucket/{data['collection']}/{data['id']}.zarr"
        data.pop("links", None)
        items.append(pystac.Item.from_dict(data, preserve_dict=False))
    return collections, items


def run_trial(module: str, *args: str, timeout: float = 3600, env: dict[str, str] | None = None) -> dict:
    """Run one measurement in a fresh interpreter; it prints one JSON line of results.
    Secrets (a DSN) go in `env`, never on the command line."""
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=REPORT.parent, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Series:
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    def triple(self, fmt: str = "{:.2f}") -> str:
        if not self.values:
            return "n/a"
        return " / ".join(fmt.format(v) for v in (min(self.values), statistics.median(self.values), max(self.values)))

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def machine() -> str:
    cpus = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        total = int(meminfo.readline().split()[1]) / 1024 / 1024
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {cpus} CPU ({model}), {total:.0f} GB RAM, Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    """Replace (or add) the `## name` section of BENCHMARKS.md."""
    header = (
        "# Benchmarks\n\nMeasured by `make bench` (`python -m benchmarks`); each section says its command and inputs.\n"
    )
    text = REPORT.read_text() if REPORT.exists() else header
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    REPORT.write_text(text.rstrip() + "\n")


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
