"""One store whose Item the destination refuses is that store's failure: the run goes on.

Real faults, no mocks: a store whose item id makes a file name longer than the local
filesystem allows (each folder of the source fits, the joined id does not), and an
Item bigger than the file size limit of the process that writes it (RLIMIT_FSIZE:
the write fails with EFBIG). The real `zarr-stac build` runs in its own process.
And an Item `add` refuses itself: one whose document cannot be made, one that would
land on another's path.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import xarray as xr

from static_catalog.write import write_catalog
from zarr_stac.samples import write_dataset, write_samples

from ..zarr_stac.test_cli_errors import ZARR_STAC, user_env
from .test_publish import synthetic

LONG = "a" * 200 + "/" + "b" * 200  # two folders of 200 characters: an item id of 401
SST = "ocean/north-atlantic-sst"


def build(cwd: Path, *args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:  # in the child only: its files may not grow past the limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [ZARR_STAC, "build", "src", "-o", "out", "--delete-grace", "0", *args],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if file_size_limit else None,
    )


def links(collection: Path) -> set[str]:
    document = json.loads((collection / "collection.json").read_text())
    return {link["href"] for link in document["links"] if link["rel"] == "item"}


@pytest.fixture
def catalogued(tmp_path) -> Path:
    """A working directory with `src/` (the samples) catalogued once into `out/`."""
    write_samples(str(tmp_path / "src"))
    first = build(tmp_path)
    assert first.returncode == 0, first.stderr
    return tmp_path


def test_a_file_name_too_long_is_that_stores_failure(catalogued):
    cwd = catalogued
    bad = cwd / "src" / "ocean" / f"{LONG}.zarr"
    shutil.copytree(cwd / "src" / f"{SST}.zarr", bad)
    # The good store of the collection is gone: only a complete crawl of `ocean` could drop its item.
    shutil.rmtree(cwd / "src" / f"{SST}.zarr")
    before = (cwd / "out" / "ocean" / "north-atlantic-sst" / "north-atlantic-sst.json").read_bytes()

    result = build(cwd)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output, output
    assert f"skipped {bad}: write-error: OSError: [Errno 36] File name too long" in " ".join(output.split()), output
    assert re.search(r"catalogued\s+│\s+9\b", output) and re.search(r"skipped: write-error\s+│\s+1\b", output), output
    # The others are published; the bad one is linked nowhere; what `ocean` had stays linked.
    assert len(list((cwd / "out").glob("*/*/*.json"))) == 10
    ocean = cwd / "out" / "ocean"
    assert links(ocean) == {"./north-atlantic-sst/north-atlantic-sst.json"}
    assert (ocean / "north-atlantic-sst" / "north-atlantic-sst.json").read_bytes() == before
    assert not any("a" * 200 in str(p) for p in (cwd / "out").rglob("*"))

    strict = build(cwd, "--strict")
    assert strict.returncode == 1, strict.stderr
    assert "--strict: 1 store(s) skipped" in strict.stderr and "Traceback" not in strict.stderr


def test_an_item_too_big_for_the_destination_keeps_its_earlier_version(catalogued):
    cwd = catalogued
    store = cwd / "src" / f"{SST}.zarr"
    item = cwd / "out" / "ocean" / "north-atlantic-sst" / "north-atlantic-sst.json"
    before = item.read_bytes()
    others = {p: p.read_bytes() for p in (cwd / "out").glob("*/*/*.json") if p != item}
    grown = xr.open_zarr(store).load()
    # An Item over 100 kB: two variables with long names (a title is cut to 300 characters, one value to 64 kB).
    grown["thetao"].attrs["long_name"] = "Sea Water Potential Temperature " + "x" * 60_000
    grown["thetao_copy"] = grown["thetao"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on consolidated metadata in v3
        write_dataset(grown, str(store), zarr_format=3)

    result = build(cwd, file_size_limit=100_000)  # the other documents are a few kB

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output, output
    assert f"skipped {store}: write-error: OSError: [Errno 27] File too large" in " ".join(output.split()), output
    assert item.read_bytes() == before, "the earlier version of the refused item is kept"
    assert links(cwd / "out" / "ocean") == {"./north-atlantic-sst/north-atlantic-sst.json"}
    assert {p: p.read_bytes() for p in (cwd / "out").glob("*/*/*.json") if p != item} == others
    assert not list((cwd / "out").rglob(".tmp-*")), "no half-written file left behind"


def test_an_item_that_cannot_be_rendered_or_shares_a_path_is_refused_alone(tmp_path):
    """`add` refuses it (ItemRejected): the others are written, its collection is kept whole."""
    collections, items = synthetic(4, ("alpha",))
    write_catalog(collections, items, str(tmp_path))
    before = (tmp_path / "alpha" / "item-00000" / "item-00000.json").read_bytes()
    _, again = synthetic(4, ("alpha",), version=1)
    again[0].properties["unrenderable"] = object()  # no JSON for it
    again[1].id = "item 00002"  # the path of item-00002
    again[2].id = "item-00002"

    report = write_catalog(collections, again[:1] + again[2:] + again[1:2], str(tmp_path), may_delete=lambda c: True)

    refused = {(r.item_id, r.kind) for r in report.rejected}
    assert refused == {("item-00000", "render-error"), ("item 00002", "duplicate-id")}, report.rejected
    assert (tmp_path / "alpha" / "item-00000" / "item-00000.json").read_bytes() == before
    assert json.loads((tmp_path / "alpha" / "item-00003" / "item-00003.json").read_text())["properties"]["version"] == 1
    # item-00001 is not in this publication, but its collection had refusals: it stays.
    assert (tmp_path / "alpha" / "item-00001" / "item-00001.json").exists()
    assert len(links(tmp_path / "alpha")) == 4
