"""Stores rebuilt from real metadata documents (tests/data/stores/<case>/, see SOURCES.md).

A store is its metadata exactly as found, plus coordinate chunks synthesised here
and encoded by zarr with each array's own codecs; no data-variable chunk is
written (a reader that needs one finds it missing, i.e. fill values).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import zarr

DATA = Path(__file__).resolve().parent.parent / "data" / "stores"


def metadata_of(case: str) -> tuple[int, dict]:
    """(zarr_format, the consolidated metadata document) of a case."""
    folder = DATA / case
    if (folder / ".zmetadata").exists():
        return 2, json.loads((folder / ".zmetadata").read_text())
    return 3, json.loads((folder / "zarr.json").read_text())


def array_metadata(case: str) -> dict[str, dict]:
    """{array name: its metadata} (v2: .zarray merged with .zattrs under "attributes")."""
    fmt, doc = metadata_of(case)
    if fmt == 3:
        return {k: v for k, v in doc["consolidated_metadata"]["metadata"].items() if v["node_type"] == "array"}
    entries = doc["metadata"]
    arrays = {k[: -len("/.zarray")]: v for k, v in entries.items() if k.endswith("/.zarray")}
    return {name: {**meta, "attributes": entries.get(f"{name}/.zattrs", {})} for name, meta in arrays.items()}


def write_store(case: str, folder: Path, coordinates: dict[str, np.ndarray]) -> Path:
    """Write `case`'s metadata as found into `folder`, then the given coordinate arrays' chunks."""
    source = DATA / case
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    fmt, doc = metadata_of(case)
    if fmt == 2:
        shutil.copyfile(source / ".zmetadata", folder / ".zmetadata")
        for key, value in doc["metadata"].items():
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_text(json.dumps(value, indent=4, sort_keys=True))
    else:
        shutil.copyfile(source / "zarr.json", folder / "zarr.json")
        for name, value in doc["consolidated_metadata"]["metadata"].items():
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / name / "zarr.json").write_text(json.dumps(value, indent=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, values in coordinates.items():
            array = zarr.open_array(str(folder), path=name, mode="r+", zarr_format=fmt)
            array[...] = values
    return folder


def upload(folder: Path, url: str, storage) -> str:
    """Copy a store folder to `url` (s3://bucket/key) through the crawl's own storage options."""
    fs = storage.filesystem(url)
    target = url.split("://", 1)[1]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fs.pipe(f"{target}/{path.relative_to(folder).as_posix()}", path.read_bytes())
    return url
