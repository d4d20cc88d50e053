"""Stores rebuilt from real whole-product metadata (tests/data/eopf, see SOURCES.md).

EOPF-Explorer keeps each product's metadata as one JSON tree: a group is
`{"attributes", "members"}`, an array its Zarr metadata document (v2: `.zarray` fields
plus `attributes`; v3: its `zarr.json`). A store here is one group of such a tree, its
arrays and attributes as found, written as a consolidated Zarr store; only coordinate
chunks are synthesised, and no data-variable chunk is written.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import zarr

DATA = Path(__file__).resolve().parent.parent / "data" / "eopf"


def tree(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def node(root: dict, path: str) -> dict:
    """The group at `path` ("measurements/reflectance/r10m") of a tree."""
    found = root
    for part in filter(None, path.split("/")):
        found = found["members"][part]
    return found


def arrays_of(group: dict) -> dict[str, dict]:
    """{name: metadata} of the arrays directly in `group`."""
    return {name: member for name, member in group["members"].items() if "members" not in member}


def write_group(
    folder: Path, attributes: dict, arrays: dict[str, dict], zarr_format: int, coordinates: dict[str, np.ndarray]
) -> Path:
    """A consolidated store whose root group has `attributes` and `arrays` (as found), then the
    chunks of the given coordinates, encoded by zarr with each array's own codecs."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    documents: dict[str, dict] = {}
    if zarr_format == 2:
        documents[".zgroup"] = {"zarr_format": 2}
        documents[".zattrs"] = attributes
        for name, meta in arrays.items():
            documents[f"{name}/.zarray"] = {k: v for k, v in meta.items() if k != "attributes"}
            documents[f"{name}/.zattrs"] = meta.get("attributes", {})
        documents[".zmetadata"] = {"metadata": dict(documents), "zarr_consolidated_format": 1}
    else:
        for name, meta in arrays.items():
            documents[f"{name}/zarr.json"] = meta
        documents["zarr.json"] = {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": attributes,
            "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": arrays},
        }
    for key, document in documents.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_text(json.dumps(document, indent=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, values in coordinates.items():
            zarr.open_array(str(folder), path=name, mode="r+", zarr_format=zarr_format)[...] = values
    return folder
