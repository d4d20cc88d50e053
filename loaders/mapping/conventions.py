"""What a store's attributes declare about its grid besides CF: the Zarr conventions `proj` and
`spatial` (GeoZarr), STAC's projection fields as EOPF products carry them, and GDAL's WKT.

Read from the attributes of the group and of each data variable (metadata only):

- the CRS: `proj:code`, `proj:wkt2`, `proj:projjson` (zarr-conventions `proj`), `proj:epsg`
  (STAC projection v1, on every array of an EOPF product);
- an affine grid, for stores without x/y coordinate arrays: `spatial:transform` (zarr-conventions
  `spatial`) or `proj:transform` (STAC: 6 numbers, or 9 ending in 0, 0, 1), in rasterio's order
  `a, b, c, d, e, f` (x = a·column + b·row + c, y = d·column + e·row + f), over the rows and
  columns of `spatial:shape` / `proj:shape` or of the `spatial:dimensions`, with
  `spatial:registration` (pixel, the default: the transform gives cell corners; node: centres);
- extents in that CRS, `spatial:bbox` and `proj:bbox`: hints only, which the grid's own extent
  overrules (`box_contradiction`).

The conventions' rules (a code `authority:code`, 4 numbers to a box, 6 to a transform, positive
shapes, ...) are zarr-cm's. A declaration that breaks them is left out and said (`problems`),
so that a store its other metadata can place is still catalogued.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import xarray as xr
from pyproj import CRS
from pyproj.exceptions import CRSError
from zarr_cm import proj as proj_convention
from zarr_cm import spatial as spatial_convention

from zarr_stac.common.values import MAX_TEXT, plain

from ..markup import plain_text


class ConflictingCrs(ValueError):
    """Declarations of different CRSs for one grid: no place can be trusted."""


@dataclass(frozen=True)
class AffineGrid:
    """Rows × columns of cells placed by an affine transform (rasterio's a, b, c, d, e, f)."""

    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]  # rows, columns
    dimensions: tuple[str, str]  # the row and column dimensions (y, x)
    registration: str = "pixel"
    where: str = "the group"

    def apply(self, columns: Any, rows: Any) -> tuple[Any, Any]:  # numbers or arrays of them
        a, b, c, d, e, f = self.transform
        return a * columns + b * rows + c, d * columns + e * rows + f

    def index_extent(self) -> tuple[float, float]:
        """The last column and row index of the grid's outline (corners for pixel registration)."""
        rows, columns = self.shape
        return (columns, rows) if self.registration == "pixel" else (columns - 1, rows - 1)

    def centre_extents(self) -> tuple[list[float], list[float]]:
        """[first, last] x and y of the cell centres, for an axis-aligned grid (cube:dimensions)."""
        rows, columns = self.shape
        shift = 0.5 if self.registration == "pixel" else 0.0  # pixel: the transform gives corners
        x0, y0 = self.apply(shift, shift)
        x1, y1 = self.apply(shift + columns - 1, shift + rows - 1)
        return sorted([float(x0), float(x1)]), sorted([float(y0), float(y1)])

    @property
    def axis_aligned(self) -> bool:
        return self.transform[1] == 0 and self.transform[3] == 0


@dataclass(frozen=True)
class DeclaredCrs:
    crs: CRS
    key: str  # the attribute that declared it
    value: str  # as declared (shortened)
    where: str

    def describe(self) -> str:
        return f"{self.key} {self.value!r} of {self.where}"

    @property
    def code(self) -> str | None:
        """The code as declared, when the declaration is one (`proj:code`, `proj:epsg`)."""
        if self.key == "proj:code":
            return self.value
        if self.key == "proj:epsg":
            return f"EPSG:{self.value}"
        return None


@dataclass
class Conventions:
    """Everything a dataset's attributes declare about its grid (see the module doc)."""

    crs: list[DeclaredCrs] = field(default_factory=list)
    grids: list[AffineGrid] = field(default_factory=list)
    # (key, box in the declared CRS, where) of every spatial:bbox / proj:bbox.
    boxes: list[tuple[str, list[float], str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def agreed_crs(self) -> DeclaredCrs | None:
        """The CRS every declaration names; ConflictingCrs when two differ."""
        if not self.crs:
            return None
        first = self.crs[0]
        for other in self.crs[1:]:
            if not same_crs(first.crs, other.crs):
                raise ConflictingCrs(f"{first.describe()} and {other.describe()} are different CRSs")
        return first

    def finest_grid(self) -> AffineGrid | None:
        """The group's own affine grid, else the one with the most cells of its data variables'."""
        for grid in self.grids:
            if grid.where == "the group":
                return grid
        return max(self.grids, key=lambda g: g.shape[0] * g.shape[1], default=None)


def same_crs(a: CRS, b: CRS) -> bool:
    return a is b or a == b or a.equals(b, ignore_axis_order=True)


def _short(value: object) -> str:
    return plain_text(value, 80)


def _crs_of(key: str, value: object) -> CRS:
    # Bounded work for pyproj, whatever a store holds: no WKT or PROJJSON beyond what a value may be.
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError("too long")
    if key == "proj:projjson" and plain(value) != value:
        raise ValueError("too large or too deep")
    if key == "proj:code":
        return CRS.from_user_input(str(value))
    if key == "proj:wkt2":
        return CRS.from_wkt(str(value))
    if key == "proj:projjson":
        return CRS.from_json_dict(value)  # type: ignore[arg-type]
    return CRS.from_epsg(int(value))  # type: ignore[call-overload]


def _declared_crs(attrs: Mapping, where: str, problems: list[str], parsed: dict) -> list[DeclaredCrs]:
    """The CRSs `attrs` declare; `parsed` caches them by declaration (EOPF repeats its on every array)."""
    found: list[DeclaredCrs] = []
    data = _kept_by(proj_convention, attrs, where, problems)
    epsg = attrs.get("proj:epsg")
    if epsg is not None:  # STAC projection v1: null means "no EPSG code", not a mistake
        if isinstance(epsg, int) and not isinstance(epsg, bool):
            data["proj:epsg"] = epsg
        else:
            problems.append(f"proj:epsg of {where} ignored: {_short(epsg)!r} is no EPSG code")
    for key in ("proj:code", "proj:projjson", "proj:wkt2", "proj:epsg"):
        if key not in data:
            continue
        # Codes are shown as declared; a WKT or PROJJSON by the name of its CRS.
        named = key in ("proj:code", "proj:epsg")
        try:
            cache_key = (key, data[key] if isinstance(data[key], str | int) else repr(data[key]))
            crs = parsed[cache_key] if cache_key in parsed else parsed.setdefault(cache_key, _crs_of(key, data[key]))
        except (CRSError, ValueError, TypeError, AttributeError, RecursionError):
            shown = f" {_short(data[key])!r}" if named else ""
            problems.append(f"{key}{shown} of {where} ignored: not a CRS that pyproj knows")
            continue
        found.append(DeclaredCrs(crs, key, _short(data[key] if named else crs.name), where))
    return found


def _numbers(value: object) -> list[float] | None:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def _spatial(attrs: Mapping, where: str, problems: list[str]) -> dict:
    """The `spatial` convention's attributes, if they keep its rules (else none, and said)."""
    return _kept_by(spatial_convention, attrs, where, problems, "spatial attributes")


def _kept_by(convention: Any, attrs: Mapping, where: str, problems: list[str], label: str | None = None) -> dict:
    """The attributes of a zarr-cm `convention` in `attrs`, if they keep its rules; else none, and
    a problem naming them (`label`, or their keys)."""
    data = {key: attrs[key] for key in sorted(convention.CONVENTION_KEYS) if key in attrs}
    if data:
        try:
            convention.validate(data, revision=convention.LATEST)
        except (ValueError, TypeError) as exc:
            problems.append(f"{label or '/'.join(data)} of {where} ignored: {_short(exc)}")
            return {}
    return data


def _affine(
    attrs: Mapping, data: Mapping, sizes: Mapping, dims: Sequence[str], where: str, problems: list[str]
) -> AffineGrid | None:
    """The affine grid that `attrs` declare (`data`: their `spatial` part), of a variable over
    `dims` or of the group."""
    transform = data.get("spatial:transform")
    if transform is None and "proj:transform" in attrs:
        numbers = _numbers(attrs["proj:transform"])
        if numbers is None or len(numbers) not in (6, 9) or (len(numbers) == 9 and numbers[6:] != [0.0, 0.0, 1.0]):
            problems.append(f"proj:transform of {where} ignored: not 6 numbers (or 9 ending in 0, 0, 1)")
            return None
        transform = numbers[:6]
    if transform is None:
        return None
    if data.get("spatial:transform_type", "affine") != "affine":
        kind = _short(data["spatial:transform_type"])
        problems.append(f"spatial:transform of {where} ignored: transform type {kind!r}")
        return None
    a, b, c, d, e, f = (float(v) for v in transform)
    if a * e - b * d == 0:
        problems.append(f"the transform of {where} ignored: it maps every cell to one line")
        return None
    dimensions = tuple(data.get("spatial:dimensions") or dims[-2:])
    if len(dimensions) != 2:
        problems.append(f"the transform of {where} ignored: no two dimensions to place")
        return None
    shape = data.get("spatial:shape") or attrs.get("proj:shape")
    if shape is None and all(d in sizes for d in dimensions):
        shape = [sizes[d] for d in dimensions]
    shape = _numbers(shape)
    if shape is None or len(shape) != 2 or min(shape) < 1 or max(shape) > 2**53 or any(s != int(s) for s in shape):
        problems.append(f"the transform of {where} ignored: no shape (spatial:shape, proj:shape or dimension sizes)")
        return None
    return AffineGrid(
        (a, b, c, d, e, f),
        (int(shape[0]), int(shape[1])),
        (str(dimensions[0]), str(dimensions[1])),
        str(data.get("spatial:registration", "pixel")),
        where,
    )


def _boxes(attrs: Mapping, data: Mapping, where: str, problems: list[str]) -> list[tuple[str, list[float], str]]:
    found = []
    for key, value in (("spatial:bbox", data.get("spatial:bbox")), ("proj:bbox", attrs.get("proj:bbox"))):
        if value is not None:
            box = _numbers(value)
            if box is None or len(box) != 4:
                problems.append(f"{key} of {where} ignored: not 4 numbers")
            else:
                found.append((key, box, where))
    return found


def read_conventions(ds: xr.Dataset) -> Conventions:
    """What the attributes of `ds` (its group's, then each data variable's) declare."""
    conventions = Conventions()
    sources: list[tuple[str, Mapping, Sequence[str]]] = [("the group", ds.attrs, ())]
    for name in sorted(ds.data_vars, key=str):
        variable = ds.variables[name]  # not ds[name]: no DataArray to build
        sources.append((f"array {_short(name)!r}", variable.attrs, tuple(map(str, variable.dims))))
    parsed: dict = {}
    for where, attrs, dims in sources:
        conventions.crs += _declared_crs(attrs, where, conventions.problems, parsed)
        spatial = _spatial(attrs, where, conventions.problems)
        if (grid := _affine(attrs, spatial, ds.sizes, dims, where, conventions.problems)) is not None:
            conventions.grids.append(grid)
        conventions.boxes += _boxes(attrs, spatial, where, conventions.problems)
    return conventions


def box_contradiction(declared: Sequence[float], actual: Sequence[float], tolerance: tuple[float, float]) -> bool:
    """Whether a declared box [xmin, ymin, xmax, ymax] says the grid reaches beyond where it does:
    every declared edge must lie within the grid's extent `actual`, widened by `tolerance` (x, y)."""
    xmin, ymin, xmax, ymax = declared
    if xmin > xmax or ymin > ymax:
        return True
    return not (
        actual[0] - tolerance[0] <= xmin
        and xmax <= actual[2] + tolerance[0]
        and actual[1] - tolerance[1] <= ymin
        and ymax <= actual[3] + tolerance[1]
    )
