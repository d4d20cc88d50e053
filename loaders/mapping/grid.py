"""What a dataset's horizontal grid is, and its WGS84 bounding box.

Four kinds, in the order they are recognised:

- `regular`: 1-D longitude and latitude dimension coordinates;
- `curvilinear`: 2-D longitude/latitude coordinates over index dimensions
  (ocean models, CORDEX files that carry lat/lon beside rlat/rlon);
- `unstructured`: 1-D longitude/latitude over one cell dimension (ICON's
  clon/clat, often in radians);
- `healpix`: a CF grid mapping `healpix` over a cell dimension (see `healpix`);
- `projected`: no longitude/latitude at all, but 1-D x/y coordinates and a CRS
  (Lambert conformal, polar stereographic, rotated pole, ...): the
  bbox comes from transforming the densified edges of the x/y rectangle with
  pyproj, widened to the pole when the pole lies inside the grid;
- `affine`: no x/y coordinate arrays either, but an affine transform and a CRS
  (GeoZarr `spatial:transform`, STAC `proj:transform`): the same, over the
  outline of its rows and columns.

The CRS is the CF grid mapping's (`grid_mapping_name`, or the `crs_wkt` /
`spatial_ref` WKT that GDAL and rioxarray write), or the one the Zarr conventions
declare (`proj:code`, `proj:wkt2`, `proj:projjson`, STAC's `proj:epsg`: see
`conventions`); declarations of different CRSs place the grid nowhere. Whenever
the CRS is not plain longitude/latitude, it is published with the projection
extension, whatever the kind. Boxes a store declares (`spatial:bbox`,
`proj:bbox`, an embedded STAC Item's bbox) never make the Item's: where one says
the grid reaches beyond where it does, the grid's extent is kept and the run says
so (`declared_box_notes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from zarr_stac.common import spatial
from zarr_stac.common.values import MAX_TEXT

from ..markup import plain_text
from .conventions import AffineGrid, ConflictingCrs, Conventions, box_contradiction, read_conventions, same_crs
from .embedded_stac import EmbeddedStac
from .healpix import HealpixError, HealpixGrid, describe_healpix

WGS84 = CRS.from_epsg(4326)
EDGE_POINTS = 101  # points per edge when transforming a projected rectangle
LENGTH_UNITS = {
    "m": 1.0,
    "meter": 1.0,
    "meters": 1.0,
    "metre": 1.0,
    "metres": 1.0,
    "km": 1000.0,
    "kilometer": 1000.0,
    "kilometers": 1000.0,
    "kilometre": 1000.0,
}


class GridError(ValueError):
    """No usable horizontal coordinates; the message says what is missing."""


class NotPositions(GridError):
    """Horizontal coordinates whose values decode to infinities (a scale_factor or add_offset
    that overflows): they are no positions, and a bbox from the finite rest would be wrong."""


def _finite_or_missing(name: str, values: np.ndarray) -> np.ndarray:
    if np.isinf(values).any():
        reason = "decodes to infinite values (a scale_factor or add_offset that overflows)"
        raise NotPositions(f"coordinate {name!r} {reason}")
    return values


@dataclass
class Grid:
    kind: str
    bbox: list[float]
    # 1-D dimension coordinates that cube:dimensions can describe as x/y.
    x: str | None = None
    y: str | None = None
    # The grid's own CRS when it is not plain longitude/latitude.
    crs: CRS | None = None
    # x/y extent in that CRS (proj:bbox) and shape (proj:shape: rows, columns).
    native_bbox: list[float] | None = None
    shape: list[int] | None = None
    healpix: HealpixGrid | None = None
    # The code the store declared its CRS with (`proj:code`), published when it is no EPSG code.
    crs_code: str | None = None
    # An affine grid without x/y coordinate arrays (proj:transform; cube:dimensions from it).
    affine: AffineGrid | None = None
    # Cell size in x and y (in the CRS's units), when known: how far a declared box may be off.
    cell: tuple[float, float] | None = None
    # What the store's attributes declared about the grid (see `conventions`).
    declared: Conventions | None = None

    def axis_hints(self) -> dict:
        """xstac's x/y extents and steps of an affine grid: its cell centres, and the cell size
        as the step when the grid is aligned with its axes."""
        if self.affine is None:
            return {}
        (x_extent, y_extent), (a, _, _, _, e, _) = self.affine.centre_extents(), self.affine.transform
        aligned = self.affine.axis_aligned
        return {
            "x_extent": x_extent,
            "y_extent": y_extent,
            "x_step": a if aligned else False,
            "y_step": e if aligned else False,
        }

    @property
    def reference_system(self) -> int | dict:
        """For cube:dimensions' x/y: an EPSG code where there is one, else PROJJSON.

        x/y are in the grid's own CRS whenever it has one and they are not the
        longitude/latitude dimensions themselves (a projected grid, or 2-D lat/lon
        beside projection x/y as in HRRR, SMAP EASE-Grid, CORDEX rotated pole).
        """
        if self.crs is None or self.kind == "regular":
            return 4326
        epsg = self.crs.to_epsg()
        return epsg if epsg is not None else self.crs.to_json_dict()


# Attributes of a grid-mapping variable that hold its CRS as WKT: CF's, and GDAL's (rioxarray writes both).
WKT_ATTRIBUTES = ("crs_wkt", "spatial_ref")


def _grid_mapping_names(ds: xr.Dataset) -> set[str]:
    """The grid-mapping variables that the data variables (or the group, as GeoZarr does) name,
    and every variable with a `grid_mapping_name`."""
    holders = [*ds.data_vars.values(), ds]
    names = {str(v.attrs["grid_mapping"]).split(":")[0].split()[0] for v in holders if v.attrs.get("grid_mapping")}
    return names | {str(name) for name, v in ds.variables.items() if "grid_mapping_name" in v.attrs}


def _cf_crs(attrs: dict) -> CRS | None:
    """The CRS of one grid-mapping variable: from its CF parameters, else from its WKT."""
    if "grid_mapping_name" in attrs:
        try:
            return CRS.from_cf(attrs)
        except CRSError:
            if not any(isinstance(attrs.get(key), str) for key in WKT_ATTRIBUTES):
                raise
    for key in WKT_ATTRIBUTES:  # a CRS that CF cannot express: rioxarray writes only its WKT
        if isinstance(attrs.get(key), str) and len(attrs[key]) <= MAX_TEXT:  # bounded work for pyproj
            try:
                return CRS.from_wkt(attrs[key])
            except CRSError:
                continue  # text that is no WKT: as if absent (it named no grid mapping before)
    return None


def grid_mapping_crs(ds: xr.Dataset) -> CRS | None:
    """The CRS of the CF grid mapping that the data variables refer to, if any."""
    for name in sorted(_grid_mapping_names(ds)):
        if name in ds.variables:
            attrs = dict(ds[name].attrs)
            if str(attrs.get("grid_mapping_name", "")).strip().lower() == "healpix":
                continue  # cells of a sphere, no CRS that pyproj knows (see `healpix`)
            crs = _cf_crs(attrs)
            if crs is None:
                continue
            # Plain latitude_longitude is no projection; a rotated pole (a derived
            # geographic CRS) is.
            return None if crs.is_geographic and not crs.is_derived else crs
    return None


def _is_projection(crs: CRS) -> bool:
    """Whether `crs` is more than plain longitude/latitude (a rotated pole, a derived geographic CRS, is)."""
    return not (crs.is_geographic and not crs.is_derived)


def grid_crs(ds: xr.Dataset, conventions: Conventions) -> tuple[CRS | None, str | None]:
    """The CRS of the grid (CF's grid mapping, else the conventions'; None when neither says)
    and the code it was declared with. GridError when declarations name different CRSs."""
    try:
        declared = conventions.agreed_crs()
        cf = grid_mapping_crs(ds)
    except (ConflictingCrs, CRSError) as exc:
        raise GridError(plain_text(str(exc), 300)) from exc
    if declared is None:
        return cf, None
    if cf is not None and not same_crs(cf, declared.crs):
        raise GridError(f"the CF grid mapping and {declared.describe()} are different CRSs")
    return cf or declared.crs, declared.code


def _values(ds: xr.Dataset, name: str) -> np.ndarray:
    """Coordinate values (or their CF cell bounds) in degrees."""
    var = ds[name]
    bounds = var.attrs.get("bounds")
    source = ds[bounds] if bounds and bounds in ds.variables else var
    values = np.asarray(source.values, dtype="f8")
    fill = var.encoding.get("_FillValue", var.attrs.get("missing_value"))
    if fill is not None and np.ndim(fill) == 0 and np.isfinite(fill):
        values = np.where(values == fill, np.nan, values)
    if str(var.attrs.get("units", "")).lower() in ("radian", "radians", "rad"):
        values = np.degrees(values)
    return _finite_or_missing(str(source.name), values)


def _native_values(ds: xr.Dataset, name: str) -> np.ndarray:
    var = ds[name]
    scale = LENGTH_UNITS.get(str(var.attrs.get("units", "m")).strip().lower(), 1.0)
    return _finite_or_missing(name, np.asarray(var.values, dtype="f8") * scale)


def projected_bbox(x: np.ndarray, y: np.ndarray, crs: CRS) -> list[float]:
    """WGS84 bbox of the rectangle spanned by x/y (in `crs`), from its densified edges."""
    xmin, xmax = float(np.nanmin(x)), float(np.nanmax(x))
    ymin, ymax = float(np.nanmin(y)), float(np.nanmax(y))
    xs = np.linspace(xmin, xmax, EDGE_POINTS)
    ys = np.linspace(ymin, ymax, EDGE_POINTS)
    edge_x = np.concatenate([xs, np.full(EDGE_POINTS, xmax), xs[::-1], np.full(EDGE_POINTS, xmin)])
    edge_y = np.concatenate([np.full(EDGE_POINTS, ymin), ys, np.full(EDGE_POINTS, ymax), ys[::-1]])
    to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True)
    lon, lat = to_wgs84.transform(edge_x, edge_y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    finite = np.isfinite(lon) & np.isfinite(lat)
    if not finite.any():
        raise GridError("the grid's edges do not transform to longitude/latitude")
    west, east = spatial.longitude_range(lon[finite])
    south, north = spatial.latitude_range(lat[finite])
    return reaching_poles([west, south, east, north], crs, [xmin, ymin, xmax, ymax])


def reaching_poles(bbox: list[float], crs: CRS, native: list[float]) -> list[float]:
    """`bbox` widened to every pole inside the grid's x/y rectangle `native` (in `crs`): a pole
    is on no edge, and between grid points the longitudes around it leave gaps, so only the
    grid says that it spans all longitudes up to the pole. A rotated pole's x is a longitude:
    the pole is inside when it is, modulo 360 (ANT-44's x runs 152.72..207.28, pyproj says -180)."""
    xmin, ymin, xmax, ymax = native
    west, south, east, north = bbox
    from_wgs84 = Transformer.from_crs(WGS84, crs, always_xy=True)
    for pole_lat in (90.0, -90.0):
        px, py = from_wgs84.transform(0.0, pole_lat)
        if crs.is_geographic and np.isfinite(px):
            px = xmin + (px - xmin) % 360.0
        if np.isfinite(px) and np.isfinite(py) and xmin <= px <= xmax and ymin <= py <= ymax:
            west, east = -180.0, 180.0
            north, south = (90.0, south) if pole_lat > 0 else (north, -90.0)
    return [west, south, east, north]


def describe_grid(
    ds: xr.Dataset,
    *,
    longitude: str | None,
    latitude: str | None,
    x: str | None,
    y: str | None,
) -> Grid:
    """The grid of `ds`, given the axes cf_xarray found."""
    try:
        cells = describe_healpix(ds)
    except HealpixError as exc:
        raise GridError(str(exc)) from exc
    if cells is not None:
        return Grid("healpix", cells.bbox(), healpix=cells)
    conventions = read_conventions(ds)
    grid = _describe(ds, conventions, longitude=longitude, latitude=latitude, x=x, y=y)
    grid.declared = conventions
    return grid


def _describe(
    ds: xr.Dataset,
    conventions: Conventions,
    *,
    longitude: str | None,
    latitude: str | None,
    x: str | None,
    y: str | None,
) -> Grid:
    declared_crs, code = grid_crs(ds, conventions)
    # Plain longitude/latitude is no projection: published as the lon/lat it is.
    crs = declared_crs if declared_crs is not None and _is_projection(declared_crs) else None
    if longitude and latitude:
        lon, lat = ds[longitude], ds[latitude]
        try:
            bbox = spatial.bbox_from_lonlat(_values(ds, longitude), _values(ds, latitude))
        except NotPositions:
            raise
        except ValueError as exc:
            raise GridError(str(exc)) from exc
        if lon.ndim == 1 and lat.ndim == 1 and longitude in ds.dims and latitude in ds.dims:
            grid = Grid("regular", bbox, x=longitude, y=latitude)
            if conventions.boxes:  # only to check them
                grid.cell = (_spacing(_values(ds, longitude)), _spacing(_values(ds, latitude)))
        elif lon.ndim == 1 and lat.ndim == 1 and lon.dims == lat.dims:
            grid = Grid("unstructured", bbox)
        else:
            grid = Grid("curvilinear", bbox)
        if crs is not None:
            # lon/lat beside a projected grid (CORDEX, WRF): publish the projection too.
            grid.crs, grid.crs_code = crs, code
            if x and y and (x, y) != (longitude, latitude) and ds[x].ndim == 1 and ds[y].ndim == 1:
                grid.x, grid.y = x, y
                grid.native_bbox, grid.shape = _native_extent(ds, x, y)
                grid.bbox = reaching_poles(grid.bbox, crs, grid.native_bbox)
        return grid
    if crs is not None and x and y and ds[x].ndim == 1 and ds[y].ndim == 1:
        xs, ys = _native_values(ds, x), _native_values(ds, y)
        native_bbox, shape = _native_extent(ds, x, y)
        grid = Grid("projected", projected_bbox(xs, ys, crs), x=x, y=y, crs=crs, native_bbox=native_bbox, shape=shape)
        grid.crs_code, grid.cell = code, (_spacing(xs), _spacing(ys))
        return grid
    affine = conventions.finest_grid()
    if affine is not None and declared_crs is not None and not (x and y):
        return _affine_grid(affine, declared_crs, code)
    problems = "; ".join(conventions.problems[:2])
    if x and y and not crs:
        reason = f"x/y coordinates {x!r}/{y!r} but no longitude/latitude and no CRS to locate them"
        raise GridError(
            f"{reason} (CF grid_mapping, proj:code, proj:wkt2, proj:projjson, proj:epsg)"
            + (f"; {problems}" if problems else "")
        )
    if affine is not None:
        raise GridError(f"a transform ({affine.where}) but no CRS to locate it (proj:code, proj:wkt2, ...)")
    reason = "no longitude/latitude coordinates recognised (CF standard_name, units or axis)"
    raise GridError(reason + (f"; {problems}" if problems else ""))


def _spacing(values: np.ndarray) -> float:
    finite = np.sort(values[np.isfinite(values)])
    return float(np.max(np.diff(finite))) if finite.size > 1 else 0.0


def _affine_grid(affine: AffineGrid, crs: CRS, code: str | None) -> Grid:
    """The grid of rows and columns an affine transform places (no x/y coordinate arrays)."""
    columns, rows = affine.index_extent()
    # The corners' bounding rectangle: the outline itself for a grid aligned with its axes
    # (nearly all are), a little more than the outline of a rotated one.
    xs, ys = affine.apply(np.array([0.0, columns, 0.0, columns]), np.array([0.0, 0.0, rows, rows]))
    bbox = projected_bbox(xs, ys, crs)
    a, b, _, d, e, _ = affine.transform
    grid = Grid("affine", bbox, x=affine.dimensions[1], y=affine.dimensions[0], crs=crs, crs_code=code)
    grid.native_bbox = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    grid.shape, grid.affine, grid.cell = list(affine.shape), affine, (math.hypot(a, d), math.hypot(b, e))
    return grid


def _native_extent(ds: xr.Dataset, x: str, y: str) -> tuple[list[float], list[int]]:
    xs, ys = _native_values(ds, x), _native_values(ds, y)
    return [float(np.nanmin(xs)), float(np.nanmin(ys)), float(np.nanmax(xs)), float(np.nanmax(ys))], [
        int(ys.size),
        int(xs.size),
    ]


def _number(value: float) -> str:
    return f"{value:.6g}"


def _box_text(box) -> str:
    return "[" + ", ".join(_number(v) for v in box) + "]"


def _longitudes_within(west: float, east: float, grid_west: float, grid_east: float, tolerance: float) -> bool:
    """Whether the longitudes west..east (eastwards, across 180° when west > east) lie within
    grid_west..grid_east widened by `tolerance`."""
    grid_span = (grid_east - grid_west) % 360 or (360.0 if grid_east != grid_west else 0.0)
    if grid_span + 2 * tolerance >= 360:
        return True
    span = (east - west) % 360 or (360.0 if east != west else 0.0)
    return (west - (grid_west - tolerance)) % 360 + span <= grid_span + 2 * tolerance


def declared_box_notes(grid: Grid, embedded: EmbeddedStac | None) -> list[str]:
    """One line for each box the store declares that says the grid reaches where it does not
    (the Item keeps the grid's), and for each declaration left out (see `conventions`)."""
    notes: list[str] = []
    declared = grid.declared or Conventions()
    notes += declared.problems
    extent = grid.native_bbox if grid.crs is not None else grid.bbox
    if extent is not None and not (grid.crs is None and extent[0] > extent[2]):
        spans = (extent[2] - extent[0], extent[3] - extent[1])
        cell = grid.cell or (0.0, 0.0)
        tolerance = (max(cell[0], 0.01 * spans[0]), max(cell[1], 0.01 * spans[1]))
        for key, box, where in declared.boxes:
            if box_contradiction(box, extent, tolerance):
                notes.append(
                    f"{key} {_box_text(box)} of {where} contradicts the grid's extent {_box_text(extent)}: "
                    "the grid's is published"
                )
    if embedded is not None:
        notes += embedded.problems
        if embedded.bbox is not None:
            west, south, east, north = embedded.bbox
            grid_west, grid_south, grid_east, grid_north = grid.bbox
            span = (grid_east - grid_west) % 360 or 360.0
            tolerance = (0.01 * span + 1e-6, 0.01 * (grid_north - grid_south) + 1e-6)
            within = (
                south <= north
                and grid_south - tolerance[1] <= south
                and north <= grid_north + tolerance[1]
                and _longitudes_within(west, east, grid_west, grid_east, tolerance[0])
            )
            if not within:
                notes.append(
                    f"the bbox {_box_text(embedded.bbox)} of {embedded.key} contradicts the grid's "
                    f"{_box_text(grid.bbox)}: the grid's is published"
                )
    return notes
