"""Kerchunk references made, at test time, from real NetCDF headers (tests/data/references, see SOURCES.md).

A header (`ncdump -h`, CDL) is read as found: its dimensions, variables and attributes
become a NetCDF4 file (h5netcdf) whose coordinates are the synthesised values a test
gives and whose data variables hold no chunk at all; kerchunk's own `SingleHdf5ToZarr`
then makes the reference, as a data centre would over the real file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

CDL_TYPES = {"byte": "i1", "short": "i2", "int": "i4", "int64": "i8", "float": "f4", "double": "f8", "char": "S1"}
_DIMENSION = re.compile(r"^\s*(\w+)\s*=\s*(UNLIMITED|\d+)\s*;")
_VARIABLE = re.compile(r"^\s*(\w+)\s+(\w+)\s*(?:\(([^)]*)\))?\s*;")
_ATTRIBUTE = re.compile(r"^\s*(\w*):(\w+)\s*=\s*(.*)\s;\s*$")


def _value(text: str) -> Any:
    """A CDL attribute value: a string, a number or a list of numbers."""
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    numbers = [item.strip().rstrip("fLsb") for item in text.split(",")]
    parsed = [float(n) if re.search(r"[.eE]", n) else int(n) for n in numbers]
    return parsed[0] if len(parsed) == 1 else parsed


def parse_cdl(text: str) -> tuple[dict[str, int | None], dict[str, dict[str, Any]], dict[str, Any]]:
    """(dimensions: None when UNLIMITED, {variable: {type, dims, attrs}}, global attributes)."""
    dimensions: dict[str, int | None] = {}
    variables: dict[str, dict[str, Any]] = {}
    global_attrs: dict[str, Any] = {}
    section = None
    for line in text.splitlines():
        line = line.split("//", 1)[0] if not line.strip().startswith("//") else ""
        stripped = line.strip()
        if stripped in ("dimensions:", "variables:"):
            section = stripped[:-1]
            continue
        if section == "dimensions" and (found := _DIMENSION.match(line)):
            dimensions[found[1]] = None if found[2] == "UNLIMITED" else int(found[2])
        elif section == "variables" and (found := _ATTRIBUTE.match(line)):
            target = global_attrs if not found[1] else variables[found[1]]["attrs"]
            target[found[2]] = _value(found[3])
        elif section == "variables" and (found := _VARIABLE.match(line)) and found[1] in CDL_TYPES:
            dims = [d.strip() for d in (found[3] or "").split(",") if d.strip()]
            variables[found[2]] = {"type": CDL_TYPES[found[1]], "dims": dims, "attrs": {}}
    return dimensions, variables, global_attrs


def write_netcdf(
    path: Path,
    dimensions: dict[str, int | None],
    variables: dict[str, dict[str, Any]],
    global_attrs: dict[str, Any],
    values: dict[str, np.ndarray],
    sizes: dict[str, int] | None = None,
) -> Path:
    """A NetCDF4 file of the parsed header: `values` written, every other variable declared only
    (no chunk stored). `sizes` gives the length of the UNLIMITED dimensions."""
    import h5netcdf.legacyapi as netcdf

    sizes = sizes or {}
    with netcdf.Dataset(path, "w") as nc:
        for name, size in dimensions.items():
            nc.createDimension(name, size if size is not None else sizes.get(name, 1))
        for name, spec in variables.items():
            shape = [dimensions[d] if dimensions[d] is not None else sizes.get(d, 1) for d in spec["dims"]]
            chunks = tuple(min(n, 512) for n in shape) if spec["dims"] else None
            variable = nc.createVariable(name, spec["type"], spec["dims"], chunksizes=chunks)
            for key, value in spec["attrs"].items():
                variable.setncattr(key, value)
            if name in values:
                variable[...] = values[name]
        for key, value in global_attrs.items():
            nc.setncattr(key, value)
    return path


def kerchunk_reference(path: Path, url: str | None = None) -> dict:
    """kerchunk's reference to the NetCDF4 file at `path` (its chunks addressed as `url`)."""
    from kerchunk.hdf import SingleHdf5ToZarr

    with open(path, "rb") as handle:
        return SingleHdf5ToZarr(handle, url or str(path), inline_threshold=0).translate()
