"""What a dataset's horizontal grid is, and its WGS84 bounding box.

Four kinds, in the order they are recognised:

- `regular`: 1-D longitude and latitude dimension coordinates;
- `curvilinear`: 2-D longitude/latitude coordinates over index dimensions
  (ocean models, CORDEX files that carry lat/lon beside rlat/rlon);
- `unstructured`: 1-D longitude/latitude over one cell dimension (ICON's
  clon/clat, often in radians);
- `healpix`: a CF grid mapping `healpix` over a cell dimension (see `healpix`);
- `projected`: no longitude/latitude at all, but 1-D x/y coordinates and a CF
  `grid_mapping` (Lambert conformal, polar stereographic, rotated pole, ...): the
  bbox comes from transforming the densified edges of the x/y rectangle with
  pyproj, widened to the pole when the pole lies inside the grid.

Whenever a CF grid mapping describes a non-geographic CRS, it is published with
the projection extension, whatever the kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

from zarr_stac.common import spatial

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


def grid_mapping_crs(ds: xr.Dataset) -> CRS | None:
    """The CRS of the CF grid mapping that the data variables refer to, if any."""
    names = {
        str(v.attrs["grid_mapping"]).split(":")[0].split()[0]
        for v in ds.data_vars.values()
        if "grid_mapping" in v.attrs
    }
    names |= {str(name) for name, v in ds.variables.items() if "grid_mapping_name" in v.attrs}
    for name in sorted(names):
        if name in ds.variables and "grid_mapping_name" in ds[name].attrs:
            if str(ds[name].attrs["grid_mapping_name"]).strip().lower() == "healpix":
                continue  # cells of a sphere, no CRS that pyproj knows (see `healpix`)
            crs = CRS.from_cf(dict(ds[name].attrs))
            # Plain latitude_longitude is no projection; a rotated pole (a derived
            # geographic CRS) is.
            return None if crs.is_geographic and not crs.is_derived else crs
    return None


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
    crs = grid_mapping_crs(ds)
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
        elif lon.ndim == 1 and lat.ndim == 1 and lon.dims == lat.dims:
            grid = Grid("unstructured", bbox)
        else:
            grid = Grid("curvilinear", bbox)
        if crs is not None:
            # lon/lat beside a projected grid (CORDEX, WRF): publish the projection too.
            grid.crs = crs
            if x and y and ds[x].ndim == 1 and ds[y].ndim == 1:
                grid.x, grid.y = x, y
                grid.native_bbox, grid.shape = _native_extent(ds, x, y)
                grid.bbox = reaching_poles(grid.bbox, crs, grid.native_bbox)
        return grid
    if crs is not None and x and y and ds[x].ndim == 1 and ds[y].ndim == 1:
        xs, ys = _native_values(ds, x), _native_values(ds, y)
        native_bbox, shape = _native_extent(ds, x, y)
        return Grid("projected", projected_bbox(xs, ys, crs), x=x, y=y, crs=crs, native_bbox=native_bbox, shape=shape)
    if x and y and not crs:
        raise GridError(f"x/y coordinates {x!r}/{y!r} but no longitude/latitude and no CF grid_mapping to locate them")
    raise GridError("no longitude/latitude coordinates recognised (CF standard_name, units or axis)")


def _native_extent(ds: xr.Dataset, x: str, y: str) -> tuple[list[float], list[int]]:
    xs, ys = _native_values(ds, x), _native_values(ds, y)
    return [float(np.nanmin(xs)), float(np.nanmin(ys)), float(np.nanmax(xs)), float(np.nanmax(ys))], [
        int(ys.size),
        int(xs.size),
    ]
