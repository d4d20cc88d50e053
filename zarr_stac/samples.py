"""Small, CF-compliant sample Zarr stores for the demo and the tests.

`write_samples(url)` writes under `url`:

- `reanalysis/era-like-daily.zarr`: global 2.5° grid, longitudes 0..357.5,
  latitudes 90..-90 (descending, as in ERA5), daily time axis with bounds, Zarr v2
  consolidated;
- `cmip6/<source>/<experiment>/<member>/<variable>/gn.zarr`: 8 stores (2 sources ×
  2 experiments × 2 variables) of monthly means stamped mid-month, one source in
  the `noleap` calendar, one in `standard`, Zarr v2 consolidated;
- `ocean/north-atlantic-sst.zarr`: a regional daily SST grid in -80..0°E with a
  depth axis, Zarr v3.
"""

from __future__ import annotations

import itertools
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from zarr_stac.common.storage import StorageOptions, is_remote, protocol_of

CMIP6_SOURCES = {"ModelA": "standard", "ModelB": "noleap"}
CMIP6_EXPERIMENTS = {"historical": (2000, 2014), "ssp585": (2015, 2020)}
CMIP6_MEMBER = "r1i1p1f1"
CMIP6_VARIABLES = {
    "tas": ("air_temperature", "Near-Surface Air Temperature", "K", 287.0),
    "pr": ("precipitation_flux", "Precipitation", "kg m-2 s-1", 3e-5),
}


@dataclass(frozen=True)
class Sample:
    """One sample store: where it goes (below the bucket) and its dataset."""

    path: str
    dataset: xr.Dataset
    zarr_format: int = 2


def _lat_lon_coords(lat: np.ndarray, lon: np.ndarray) -> dict[str, xr.Variable]:
    return {
        "lat": xr.Variable(
            "lat", lat, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y", "long_name": "latitude"}
        ),
        "lon": xr.Variable(
            "lon", lon, {"standard_name": "longitude", "units": "degrees_east", "axis": "X", "long_name": "longitude"}
        ),
    }


def _time_attrs() -> dict[str, str]:
    return {"standard_name": "time", "axis": "T", "long_name": "time"}


def era_like_daily() -> xr.Dataset:
    lat = np.arange(90.0, -90.1, -2.5)
    lon = np.arange(0.0, 360.0, 2.5)
    time = pd.date_range("2000-01-01", periods=31, freq="D")
    bounds = np.stack([time.values, (time + pd.Timedelta(days=1)).values], axis=1)
    rng = np.random.default_rng(0)
    data = (
        273.15 + 30 * np.cos(np.deg2rad(lat))[None, :, None] + rng.normal(0, 1, (time.size, lat.size, lon.size))
    ).astype("f4")
    ds = xr.Dataset(
        {
            "t2m": (
                ("time", "lat", "lon"),
                data,
                {"standard_name": "air_temperature", "long_name": "2 metre temperature", "units": "K"},
            ),
            "time_bnds": (("time", "nv"), bounds),
        },
        coords={"time": ("time", time, {**_time_attrs(), "bounds": "time_bnds"}), **_lat_lon_coords(lat, lon)},
        attrs={
            "Conventions": "CF-1.8",
            "title": "ERA-like daily 2 m temperature",
            "institution": "zarr-stac samples",
            "license": "CC-BY-4.0",
        },
    )
    ds["t2m"].encoding.update(chunks=(31, 37, 72), _FillValue=np.float32(np.nan))
    ds["time"].encoding.update(units="days since 2000-01-01", calendar="proleptic_gregorian")
    ds["time_bnds"].encoding.update(units="days since 2000-01-01", calendar="proleptic_gregorian")
    return ds


def _monthly_times(first_year: int, last_year: int, calendar: str) -> xr.DataArray:
    """Mid-month time stamps, as CMIP6 monthly means have them."""
    starts = xr.date_range(
        f"{first_year}-01-01", f"{last_year + 1}-01-01", freq="MS", calendar=calendar, use_cftime=calendar != "standard"
    )
    mids = [a + (b - a) / 2 for a, b in itertools.pairwise(starts)]
    return xr.DataArray(mids, dims="time")


def cmip6_like(source: str, experiment: str, variable: str) -> xr.Dataset:
    calendar = CMIP6_SOURCES[source]
    first, last = CMIP6_EXPERIMENTS[experiment]
    time = _monthly_times(first, last, calendar)
    lat = np.linspace(-87.5, 87.5, 36)
    lon = np.arange(0.0, 360.0, 10.0)
    standard_name, long_name, units, base = CMIP6_VARIABLES[variable]
    rng = np.random.default_rng(zlib.crc32(f"{source}/{experiment}/{variable}".encode()))
    data = (base * (1 + 0.01 * rng.standard_normal((time.size, lat.size, lon.size)))).astype("f4")
    ds = xr.Dataset(
        {
            variable: (
                ("time", "lat", "lon"),
                data,
                {"standard_name": standard_name, "long_name": long_name, "units": units, "cell_methods": "time: mean"},
            )
        },
        coords={"time": ("time", time.values, _time_attrs()), **_lat_lon_coords(lat, lon)},
        attrs={
            "Conventions": "CF-1.7 CMIP-6.2",
            "title": f"{source} {experiment} {variable}",
            "source_id": source,
            "experiment_id": experiment,
            "variant_label": CMIP6_MEMBER,
            "variable_id": variable,
            "table_id": "Amon",
            "grid_label": "gn",
            "frequency": "mon",
        },
    )
    ds[variable].encoding.update(chunks=(60, 36, 36), _FillValue=np.float32(1e20))
    ds["time"].encoding.update(units="days since 1850-01-01", calendar=calendar)
    return ds


def ocean_regional_v3() -> xr.Dataset:
    lat = np.arange(0.0, 60.1, 1.0)
    lon = np.arange(-80.0, 0.1, 1.0)
    depth = np.array([0.5, 10.0, 50.0])
    time = pd.date_range("2021-06-01", periods=10, freq="D")
    rng = np.random.default_rng(1)
    data = (15 + rng.normal(0, 2, (time.size, depth.size, lat.size, lon.size))).astype("f4")
    ds = xr.Dataset(
        {
            "thetao": (
                ("time", "depth", "lat", "lon"),
                data,
                {
                    "standard_name": "sea_water_potential_temperature",
                    "long_name": "Sea Water Potential Temperature",
                    "units": "degC",
                },
            )
        },
        coords={
            "time": ("time", time, _time_attrs()),
            "depth": (
                "depth",
                depth,
                {"standard_name": "depth", "units": "m", "positive": "down", "axis": "Z", "long_name": "depth"},
            ),
            **_lat_lon_coords(lat, lon),
        },
        attrs={"Conventions": "CF-1.8", "title": "North Atlantic sea water temperature (Zarr v3)"},
    )
    ds["thetao"].encoding.update(chunks=(5, 3, 61, 81), _FillValue=np.float32(np.nan))
    ds["time"].encoding.update(units="hours since 2021-01-01", calendar="proleptic_gregorian")
    return ds


def samples() -> list[Sample]:
    stores = [Sample("reanalysis/era-like-daily.zarr", era_like_daily())]
    for source in CMIP6_SOURCES:
        for experiment in CMIP6_EXPERIMENTS:
            for variable in CMIP6_VARIABLES:
                path = f"cmip6/{source}/{experiment}/{CMIP6_MEMBER}/{variable}/gn.zarr"
                stores.append(Sample(path, cmip6_like(source, experiment, variable)))
    stores.append(Sample("ocean/north-atlantic-sst.zarr", ocean_regional_v3(), zarr_format=3))
    return stores


def write_dataset(
    ds: xr.Dataset,
    url: str,
    storage: StorageOptions | None = None,
    *,
    zarr_format: int = 2,
    consolidated: bool = True,
    public: bool = False,
) -> None:
    """Write `ds` as a Zarr store; `public` makes its S3 objects anonymously readable."""
    storage = storage or StorageOptions()
    kwargs: dict[str, Any] = {}
    if is_remote(url):
        options = storage.for_fsspec(url)
        if public and protocol_of(url) in ("s3", "s3a"):
            options["s3_additional_kwargs"] = {"ACL": "public-read"}
        kwargs["storage_options"] = options
    ds.to_zarr(url, mode="w", zarr_format=zarr_format, consolidated=consolidated, **kwargs)


def write_samples(url: str, storage: StorageOptions | None = None, *, public: bool = True) -> list[str]:
    """Write every sample store below `url` (readable anonymously); returns their URLs."""
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v3 consolidated metadata is "not in the spec yet"
        for sample in samples():
            target = f"{url.rstrip('/')}/{sample.path}"
            write_dataset(sample.dataset, target, storage, zarr_format=sample.zarr_format, public=public)
            written.append(target)
    return written
