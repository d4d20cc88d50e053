"""One small Zarr store per case the loaders must get right, and what it must become.

Each case is a dataset builder plus the exact fields its Item must have. The
stores are written once per session to the test S3 server (see test_cases.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cftime
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer

MISSING = object()  # as an expected value: the field must be absent

LAT = {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"}
LON = {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"}
TIME = {"standard_name": "time", "long_name": "time"}


@dataclass
class Case:
    name: str
    build: Callable[[], xr.Dataset]
    expected: dict[str, Any] = field(default_factory=dict)  # Item fields, by dotted path
    zarr_format: int = 2
    consolidated: bool = True


def _variable(dims: tuple[str, ...], shape: tuple[int, ...], **attrs) -> tuple:
    return (
        dims,
        np.zeros(shape, dtype="f4"),
        {"standard_name": "air_temperature", "units": "K", "long_name": "temperature", **attrs},
    )


def _regular(lon: np.ndarray, lat: np.ndarray, time, *, time_encoding: dict | None = None) -> xr.Dataset:
    ds = xr.Dataset(
        {"tas": _variable(("time", "lat", "lon"), (len(time), lat.size, lon.size))},
        coords={"time": ("time", time, TIME), "lat": ("lat", lat, LAT), "lon": ("lon", lon, LON)},
    )
    if time_encoding:
        ds["time"].encoding.update(time_encoding)
    return ds


def _cf_dates(calendar: str, *dates: tuple) -> np.ndarray:
    return np.array([cftime.datetime(*d, calendar=calendar) for d in dates])


def _monthly(calendar: str, first: int, last: int) -> np.ndarray:
    starts = xr.date_range(f"{first}-01-01", f"{last + 1}-01-01", freq="MS", calendar=calendar, use_cftime=True)
    return np.array([a + (b - a) / 2 for a, b in zip(starts[:-1], starts[1:])])


SMALL_LON = np.arange(0.0, 20.1, 5.0)
SMALL_LAT = np.arange(40.0, 50.1, 5.0)


def calendar_case(name: str, calendar: str, times: np.ndarray, start: str, end: str, step: Any) -> Case:
    def build() -> xr.Dataset:
        return _regular(
            SMALL_LON, SMALL_LAT, times, time_encoding={"units": "days since 1850-01-01", "calendar": calendar}
        )

    return Case(
        name,
        build,
        {
            "properties.start_datetime": start,
            "properties.end_datetime": end,
            "properties.cube:dimensions.time.step": step,
        },
    )


CALENDAR_CASES = [
    calendar_case(
        "calendar-standard-6hourly",
        "standard",
        pd.date_range("2000-02-28", periods=8, freq="6h").values,
        "2000-02-28T00:00:00Z",
        "2000-02-29T18:00:00Z",
        "PT6H",
    ),
    calendar_case(
        "calendar-proleptic-yearly",
        "proleptic_gregorian",
        pd.date_range("1990-07-01", periods=5, freq="YS-JUL").values,
        "1990-07-01T00:00:00Z",
        "1994-07-01T00:00:00Z",
        "P1Y",
    ),
    calendar_case(
        "calendar-noleap-monthly",
        "noleap",
        _monthly("noleap", 2001, 2002),
        "2001-01-16T12:00:00Z",
        "2002-12-16T12:00:00Z",
        "P1M",
    ),
    calendar_case(
        "calendar-360day-daily",
        "360_day",
        _cf_dates("360_day", (2001, 2, 29), (2001, 2, 30), (2001, 3, 1), (2001, 3, 2)),
        "2001-02-28T00:00:00Z",
        "2001-03-02T00:00:00Z",
        "P1D",
    ),
    calendar_case(
        "calendar-360day-monthly",
        "360_day",
        _monthly("360_day", 2001, 2001),
        "2001-01-16T00:00:00Z",
        "2001-12-16T00:00:00Z",
        "P1M",
    ),
    calendar_case(
        "calendar-allleap-yearly",
        "all_leap",
        _cf_dates("all_leap", (2001, 2, 29), (2002, 2, 29), (2003, 2, 29)),
        "2001-02-28T00:00:00Z",
        "2003-02-28T00:00:00Z",
        "P1Y",
    ),
    calendar_case(
        "calendar-julian-daily",
        "julian",
        _cf_dates("julian", (1900, 2, 27), (1900, 2, 28), (1900, 2, 29), (1900, 3, 1)),
        "1900-02-27T00:00:00Z",
        "1900-03-01T00:00:00Z",
        "P1D",
    ),
    calendar_case(
        "calendar-irregular",
        "standard",
        pd.to_datetime(["2000-01-01", "2000-01-02", "2000-01-10"]).values,
        "2000-01-01T00:00:00Z",
        "2000-01-10T00:00:00Z",
        MISSING,
    ),
]

DAYS = pd.date_range("2010-01-01", periods=3, freq="D").values


def antimeridian() -> xr.Dataset:
    return _regular(np.arange(160.0, 200.1, 2.0), np.arange(-10.0, 10.1, 2.0), DAYS)


def descending_lat() -> xr.Dataset:
    return _regular(np.arange(-10.0, 10.1, 0.5), np.arange(60.0, 29.9, -0.5), DAYS)


def curvilinear_lonlat() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:20, 0:30].astype("f8")
    return -30.0 + 0.5 * x + 0.2 * y, 50.0 + 0.4 * y - 0.1 * x


def curvilinear() -> xr.Dataset:
    lon, lat = curvilinear_lonlat()
    lon[0, 0] = np.nan  # a missing coordinate value is ignored
    return xr.Dataset(
        {"sst": _variable(("time", "y", "x"), (3, 20, 30), standard_name="sea_surface_temperature")},
        coords={"time": ("time", DAYS, TIME), "nav_lon": (("y", "x"), lon, LON), "nav_lat": (("y", "x"), lat, LAT)},
    )


def fibonacci_sphere(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Quasi-uniform cell centres over the globe, in radians (as ICON stores them)."""
    i = np.arange(n) + 0.5
    lat = np.arcsin(1 - 2 * i / n)
    lon = np.remainder(np.pi * (1 + 5**0.5) * i, 2 * np.pi) - np.pi
    return lon, lat


def unstructured_radians() -> xr.Dataset:
    clon, clat = fibonacci_sphere(2000)
    radian = {"units": "radian"}
    return xr.Dataset(
        {"tas": _variable(("time", "ncells"), (3, clon.size))},
        coords={
            "time": ("time", DAYS, TIME),
            "clon": ("ncells", clon, {"standard_name": "longitude", "long_name": "center longitude", **radian}),
            "clat": ("ncells", clat, {"standard_name": "latitude", "long_name": "center latitude", **radian}),
        },
    )


LAMBERT = {
    "grid_mapping_name": "lambert_conformal_conic",
    "standard_parallel": [30.0, 60.0],
    "longitude_of_central_meridian": 10.0,
    "latitude_of_projection_origin": 50.0,
    "false_easting": 0.0,
    "false_northing": 0.0,
    "semi_major_axis": 6371229.0,
    "inverse_flattening": 0.0,
}
LAMBERT_X = np.arange(-1_000_000.0, 1_000_000.1, 50_000.0)
LAMBERT_Y = np.arange(-800_000.0, 800_000.1, 50_000.0)

ROTATED_POLE = {
    "grid_mapping_name": "rotated_latitude_longitude",
    "grid_north_pole_latitude": 39.25,
    "grid_north_pole_longitude": -162.0,
}
ROTATED_X = np.round(np.arange(-28.375, 18.155 + 0.01, 0.44), 3)
ROTATED_Y = np.round(np.arange(-23.375, 21.835 + 0.01, 0.44), 3)

POLAR_X = np.arange(-3_000_000.0, 3_000_000.1, 250_000.0)
POLAR_Y = np.arange(-3_000_000.0, 3_000_000.1, 250_000.0)


def _projected(x: np.ndarray, y: np.ndarray, mapping: dict, *, xy_attrs: tuple[dict, dict]) -> xr.Dataset:
    return xr.Dataset(
        {
            "tas": _variable(("time", "y", "x"), (3, y.size, x.size), grid_mapping="crs"),
            "crs": ((), np.int32(0), mapping),
        },
        coords={"time": ("time", DAYS, TIME), "x": ("x", x, xy_attrs[0]), "y": ("y", y, xy_attrs[1])},
    )


PROJECTION_XY = (
    {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"},
    {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"},
)


def lambert_conformal() -> xr.Dataset:
    return _projected(LAMBERT_X, LAMBERT_Y, LAMBERT, xy_attrs=PROJECTION_XY)


def polar_stereographic() -> xr.Dataset:
    mapping = {
        "grid_mapping_name": "polar_stereographic",
        "crs_wkt": CRS.from_epsg(3413).to_wkt(),
        **CRS.from_epsg(3413).to_cf(),
    }
    return _projected(POLAR_X, POLAR_Y, mapping, xy_attrs=PROJECTION_XY)


def rotated_pole() -> xr.Dataset:
    ds = _projected(
        ROTATED_X,
        ROTATED_Y,
        ROTATED_POLE,
        xy_attrs=(
            {
                "standard_name": "grid_longitude",
                "units": "degrees",
                "axis": "X",
                "long_name": "longitude in rotated pole grid",
            },
            {
                "standard_name": "grid_latitude",
                "units": "degrees",
                "axis": "Y",
                "long_name": "latitude in rotated pole grid",
            },
        ),
    )
    return ds.rename({"x": "rlon", "y": "rlat"})


def bbox_of_all_points(x: np.ndarray, y: np.ndarray, crs: CRS) -> list[float]:
    """Independent check for projected grids: transform every grid point."""
    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True).transform(xx, yy)
    return [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]


GRID_CASES = [
    Case(
        "antimeridian-0-360",
        antimeridian,
        {
            "bbox": [160.0, -10.0, -160.0, 10.0],
            "geometry.type": "MultiPolygon",
            "properties.cube:dimensions.lon.extent": [160.0, 200.0],
        },
    ),
    Case(
        "descending-lat",
        descending_lat,
        {"bbox": [-10.0, 30.0, 10.0, 60.0], "properties.cube:dimensions.lat.step": -0.5},
    ),
    Case(
        "curvilinear",
        curvilinear,
        {
            "bbox": [-30.0 + 0.5 * 0 + 0.2 * 1, 50.0 - 0.1 * 29, -30.0 + 0.5 * 29 + 0.2 * 19, 50.0 + 0.4 * 19],
            "properties.cube:dimensions.x": {"type": "x", "extent": [0, 29]},
            "properties.cube:variables.nav_lon.type": "auxiliary",
        },
    ),
    Case(
        "unstructured-radians",
        unstructured_radians,
        {
            "bbox": [
                -180.0,
                float(np.degrees(fibonacci_sphere(2000)[1].min())),
                180.0,
                float(np.degrees(fibonacci_sphere(2000)[1].max())),
            ],
            "properties.cube:dimensions.ncells": {"type": "ncells", "extent": [0, 1999]},
            "properties.cube:variables.tas.dimensions": ["time", "ncells"],
        },
    ),
    Case(
        "lambert-conformal",
        lambert_conformal,
        {
            "bbox": bbox_of_all_points(LAMBERT_X, LAMBERT_Y, CRS.from_cf(LAMBERT)),
            "properties.proj:bbox": [-1_000_000.0, -800_000.0, 1_000_000.0, 800_000.0],
            "properties.proj:shape": [33, 41],
            "properties.proj:code": None,
            "properties.cube:dimensions.x.step": 50_000.0,
            "properties.cube:dimensions.x.unit": "m",
        },
    ),
    Case(
        "polar-stereographic",
        polar_stereographic,
        {
            "bbox": [-180.0, bbox_of_all_points(POLAR_X, POLAR_Y, CRS.from_epsg(3413))[1], 180.0, 90.0],
            "properties.proj:code": "EPSG:3413",
            "properties.cube:dimensions.x.reference_system": 3413,
        },
    ),
    Case(
        "rotated-pole",
        rotated_pole,
        {"bbox": bbox_of_all_points(ROTATED_X, ROTATED_Y, CRS.from_cf(ROTATED_POLE)), "properties.proj:code": None},
    ),
]

# Zarr v2 and v3, with and without consolidated metadata: the asset says how to open each.
FORMAT_CASES = [
    Case(
        f"v{zarr_format}-{'consolidated' if consolidated else 'unconsolidated'}",
        antimeridian,
        {"assets.zarr.xarray:open_kwargs": {"engine": "zarr", "consolidated": consolidated, "chunks": {}}},
        zarr_format=zarr_format,
        consolidated=consolidated,
    )
    for zarr_format in (2, 3)
    for consolidated in (True, False)
]

CASES = CALENDAR_CASES + GRID_CASES + FORMAT_CASES


def lookup(data: dict, dotted: str) -> Any:
    """`a.b.c` in nested dicts (keys may contain dots or colons); MISSING if absent."""
    node: Any = data
    rest = dotted
    while rest:
        if not isinstance(node, dict):
            return MISSING
        keys = sorted((k for k in node if rest == k or rest.startswith(k + ".")), key=len, reverse=True)
        if not keys:
            return MISSING
        node, rest = node[keys[0]], rest[len(keys[0]) + 1 :]
    return node
