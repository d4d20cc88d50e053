"""HEALPix grids: global km-scale model output on equal-area cells (easy.gems, nextGEMS).

A store is on a HEALPix grid when a grid mapping variable has
`grid_mapping_name: healpix`, in either spelling found in the field:

- easy.gems / nextGEMS: `healpix_nside` (a power of two) and `healpix_order`
  (`nest`/`nested` or `ring`);
- CF 1.13: `refinement_level` (nside = 2**level) and `indexing_scheme`
  (`nested` or `ring`).

The cells are a dimension (`cell`, or the one of a `healpix_index` coordinate);
their ids are the values of its coordinate, or 0..N-1 when there is none and all
12·nside² cells are present. The bbox covers the vertices of the cells present
(global when all are), computed with healpix-geo. Item properties follow the
field names of the zarr `dggs` convention (zarr-conventions/dggs, the only
HEALPix convention for Zarr; STAC has no extension for it):
`dggs:name`, `dggs:refinement_level`, `dggs:indexing_scheme`,
`dggs:spatial_dimension`, plus `healpix:nside` as data centres quote it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from zarr_stac.common import spatial

HEALPIX = "healpix"
CELL_DIMENSIONS = ("cell", "cells", "cell_ids", "values", "value")
SCHEMES = {"nest": "nested", "nested": "nested", "ring": "ring"}
MAX_LEVEL = 29


class HealpixError(ValueError):
    """HEALPix metadata that does not describe a usable grid; the message says why."""


def _increasing(values: np.ndarray) -> bool:
    return values.size < 2 or bool(np.all(values[1:] > values[:-1]))


@dataclass
class HealpixGrid:
    nside: int
    level: int
    indexing_scheme: str  # "nested" or "ring"
    dimension: str  # the cell dimension
    # The ids of the cells present (uint64); None when implicit: all 0..N-1, never made into an
    # array (12·4^11 ids of zoom 11 would take 400 MB, and several times that to check).
    cells: np.ndarray | None
    coordinate: str | None  # the variable holding the ids; None when implicit (0..N-1)

    @property
    def npix(self) -> int:
        return 12 * self.nside**2

    @property
    def count(self) -> int:
        """How many cells are present."""
        return self.npix if self.cells is None else int(self.cells.size)

    @property
    def is_global(self) -> bool:
        # Fewer ids than cells cannot be all of them: no sort of a million ids to learn it.
        return self.cells is None or (self.cells.size >= self.npix and np.unique(self.cells).size == self.npix)

    def bbox(self) -> list[float]:
        if self.is_global:
            return [-180.0, -90.0, 180.0, 90.0]
        from healpix_geo import nested, ring

        assert self.cells is not None  # not global
        # Ids stored in increasing order (as xarray-healpy and the viewers write them) are unique already.
        ids = self.cells if _increasing(self.cells) else np.unique(self.cells)
        if self.indexing_scheme == "nested":
            lon, lat = nested.vertices(ids, self.level, "sphere")
        else:
            lon, lat = ring.vertices(ids, self.level, "sphere")
        lon, lat = np.asarray(lon, dtype="f8").ravel(), np.asarray(lat, dtype="f8").ravel()
        # A pole is a vertex of every cell around it, at no particular longitude.
        off_pole = np.abs(lat) < 90.0 - 1e-9
        west, east = spatial.longitude_range(lon[off_pole])
        south, north = spatial.latitude_range(lat)
        return [west, south, east, north]

    def properties(self) -> dict[str, Any]:
        return {
            "dggs:name": HEALPIX,
            "dggs:refinement_level": self.level,
            "dggs:indexing_scheme": self.indexing_scheme,
            "dggs:spatial_dimension": self.dimension,
            "healpix:nside": self.nside,
        }

    def dimension_entry(self, ds: xr.Dataset) -> dict[str, Any]:
        """The cell dimension's `cube:dimensions` entry."""
        # Datacube's "spatial" type needs an x/y/z axis, which cells are not: an
        # additional dimension whose type names the grid.
        cells = self.cells  # None: implicit, all of 0..npix-1
        entry: dict[str, Any] = {
            "type": HEALPIX,
            "description": f"HEALPix cell index ({self.indexing_scheme}, nside {self.nside}, "
            f"{self.count} of {self.npix} cells)",
            "extent": [0, self.npix - 1] if cells is None else [int(cells.min()), int(cells.max())],
        }
        if self.count > 1 and (cells is None or np.all(np.diff(cells.astype("i8")) == 1)):
            entry["step"] = 1
        if self.coordinate and self.coordinate in ds.variables and "long_name" in ds[self.coordinate].attrs:
            entry["description"] = str(ds[self.coordinate].attrs["long_name"])
        return entry


def healpix_mapping(ds: xr.Dataset) -> tuple[str, dict[str, Any]] | None:
    """(name, attributes) of the dataset's HEALPix grid mapping variable, if it has one."""
    for name, var in ds.variables.items():
        if str(var.attrs.get("grid_mapping_name", "")).strip().lower() == HEALPIX:
            return str(name), dict(var.attrs)
    return None


def _int(value: Any, what: str) -> int:
    try:
        number = float(np.asarray(value).ravel()[0])
    except (TypeError, ValueError, IndexError):
        raise HealpixError(f"{what} {value!r} is not a number") from None
    if not number.is_integer():
        raise HealpixError(f"{what} {value!r} is not an integer")
    return int(number)


def _parameters(name: str, attrs: dict[str, Any]) -> tuple[int, int, str]:
    """(nside, level, indexing scheme) from either spelling of the grid mapping."""
    if "refinement_level" in attrs:
        level = _int(attrs["refinement_level"], f"{name}: refinement_level")
        if not 0 <= level <= MAX_LEVEL:
            raise HealpixError(f"{name}: refinement_level {level} is outside 0..{MAX_LEVEL}")
        nside = 2**level
    elif "healpix_nside" in attrs:
        nside = _int(attrs["healpix_nside"], f"{name}: healpix_nside")
        if nside < 1 or nside & (nside - 1):
            raise HealpixError(f"{name}: healpix_nside {nside} is not a power of two")
        level = int(math.log2(nside))
    else:
        raise HealpixError(f"{name}: grid_mapping_name healpix without healpix_nside or refinement_level")
    raw = attrs.get("indexing_scheme", attrs.get("healpix_order"))
    if raw is None:
        raise HealpixError(f"{name}: grid_mapping_name healpix without healpix_order or indexing_scheme")
    scheme = SCHEMES.get(str(raw).strip().lower())
    if scheme is None:
        raise HealpixError(f"{name}: HEALPix indexing scheme {raw!r} is not supported (nested or ring)")
    return nside, level, scheme


def _cell_dimension(ds: xr.Dataset, mapping: str) -> str:
    for var in ds.variables.values():
        if var.ndim == 1 and var.attrs.get("standard_name") == "healpix_index":
            return str(var.dims[0])
    for dim in CELL_DIMENSIONS:
        if dim in ds.dims:
            return dim
    dims = {d for name, v in ds.data_vars.items() if name != mapping for d in v.dims}
    raise HealpixError(
        f"HEALPix grid mapping {mapping!r} but no cell dimension (one of {', '.join(CELL_DIMENSIONS)}; "
        f"dimensions: {', '.join(sorted(map(str, dims))) or 'none'})"
    )


def describe_healpix(ds: xr.Dataset) -> HealpixGrid | None:
    """The dataset's HEALPix grid, None when it has no HEALPix grid mapping.

    Raises `HealpixError` when the mapping is there but unusable.
    """
    found = healpix_mapping(ds)
    if found is None:
        return None
    mapping, attrs = found
    nside, level, scheme = _parameters(mapping, attrs)
    dim = _cell_dimension(ds, mapping)
    npix = 12 * nside**2
    # The cell ids: the dimension's own coordinate, or one named a healpix_index; never
    # the lat/lon centres that easy.gems' attach_coords puts over the same dimension.
    candidates = [dim] if dim in ds.coords else []
    candidates += [
        str(n) for n, v in ds.coords.items() if v.dims == (dim,) and v.attrs.get("standard_name") == "healpix_index"
    ]
    coordinate = next((name for name in candidates if ds[name].dtype.kind in "iuf"), None)
    if coordinate is None:
        size = int(ds.sizes[dim])
        if size != npix:
            raise HealpixError(
                f"{dim!r} has {size} cells and no cell coordinate, but nside {nside} has {npix}: "
                "which cells are present is unknown"
            )
        cells = None
    else:
        values = np.asarray(ds[coordinate].values)
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        fill = ds[coordinate].encoding.get("_FillValue")
        if fill is not None and np.ndim(fill) == 0:
            values = values[values != fill]
        if values.size == 0:
            raise HealpixError(f"cell coordinate {coordinate!r} holds no cell ids")
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise HealpixError(f"cell coordinate {coordinate!r} holds non-integer cell ids")
        if values.min() < 0 or values.max() >= npix:
            raise HealpixError(f"cell coordinate {coordinate!r} has ids outside 0..{npix - 1} (nside {nside})")
        cells = values.astype("u8")
    return HealpixGrid(
        nside=nside, level=level, indexing_scheme=scheme, dimension=dim, cells=cells, coordinate=coordinate
    )
