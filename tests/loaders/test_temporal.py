"""Temporal extents and ISO 8601 steps, in every CF calendar."""

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from zarr_stac.loaders.mapping.temporal import isoformat, time_extent, time_step


def dataset(values, bounds=None) -> xr.Dataset:
    ds = xr.Dataset(coords={"time": ("time", values, {"standard_name": "time"})})
    if bounds is not None:
        ds["time"].attrs["bounds"] = "time_bnds"
        ds["time_bnds"] = (("time", "nv"), bounds)
    return ds


def cf(calendar, *dates):
    return np.array([cftime.datetime(*d, calendar=calendar) for d in dates])


@pytest.mark.parametrize(
    ("values", "step"),
    [
        pytest.param(pd.date_range("2000-01-01", periods=10, freq="D").values, "P1D", id="daily"),
        pytest.param(pd.date_range("2000-01-01", periods=10, freq="6h").values, "PT6H", id="6-hourly"),
        pytest.param(pd.date_range("2000-01-01", periods=10, freq="90min").values, "PT1H30M", id="90 minutes"),
        pytest.param(pd.date_range("2000-01-01", periods=24, freq="MS").values, "P1M", id="monthly, month starts"),
        pytest.param(
            (pd.date_range("2000-01-01", periods=24, freq="MS") + pd.Timedelta(days=14)).values,
            "P1M",
            id="monthly mid-month",
        ),
        pytest.param(pd.date_range("2000-01-01", periods=8, freq="QS").values, "P3M", id="quarterly"),
        pytest.param(pd.date_range("2000-01-01", periods=5, freq="YS").values, "P1Y", id="yearly"),
        pytest.param(cf("noleap", (2000, 1, 16), (2000, 2, 15), (2000, 3, 16)), "P1M", id="noleap monthly"),
        pytest.param(cf("360_day", (2000, 1, 16), (2000, 2, 16), (2000, 3, 16)), "P1M", id="360_day monthly"),
        pytest.param(cf("noleap", (2000, 7, 2), (2001, 7, 2), (2002, 7, 2)), "P1Y", id="noleap yearly"),
        pytest.param(cf("360_day", (2000, 2, 29), (2000, 2, 30), (2000, 3, 1)), "P1D", id="360_day daily"),
        pytest.param(pd.to_datetime(["2000-01-01", "2000-01-02", "2000-01-05"]).values, None, id="irregular"),
        pytest.param(pd.to_datetime(["2000-01-31", "2000-02-01"]).values, "P1D", id="two days across a month end"),
        pytest.param(pd.to_datetime(["2000-01-01"]).values, None, id="single step"),
    ],
)
def test_time_step(values, step):
    assert time_step(dataset(values), "time") == step


@pytest.mark.parametrize(
    ("values", "extent"),
    [
        pytest.param(
            pd.date_range("2000-01-01", periods=3, freq="D").values,
            ("2000-01-01T00:00:00Z", "2000-01-03T00:00:00Z"),
            id="standard",
        ),
        pytest.param(
            cf("noleap", (2001, 2, 28), (2001, 3, 1)), ("2001-02-28T00:00:00Z", "2001-03-01T00:00:00Z"), id="noleap"
        ),
        pytest.param(
            cf("360_day", (2001, 2, 29, 12), (2001, 2, 30, 12)),
            ("2001-02-28T12:00:00Z", "2001-02-28T12:00:00Z"),
            id="360_day February 30 clamps",
        ),
        pytest.param(
            cf("all_leap", (2001, 2, 29)),
            ("2001-02-28T00:00:00Z", "2001-02-28T00:00:00Z"),
            id="all_leap 29 February of 2001 clamps",
        ),
        pytest.param(
            cf("julian", (1900, 2, 29)),
            ("1900-02-28T00:00:00Z", "1900-02-28T00:00:00Z"),
            id="julian leap day of 1900 clamps",
        ),
        pytest.param(
            cf("julian", (2000, 1, 1)), ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z"), id="julian labels kept"
        ),
    ],
)
def test_time_extent(values, extent):
    start, end = time_extent(dataset(values), "time")
    assert (isoformat(start), isoformat(end)) == extent


def test_time_bounds_widen_the_extent():
    times = pd.date_range("2000-01-16", periods=2, freq="MS").values
    bounds = np.array([["2000-01-01", "2000-02-01"], ["2000-02-01", "2000-03-01"]], dtype="datetime64[ns]")
    start, end = time_extent(dataset(times, bounds), "time")
    assert (isoformat(start), isoformat(end)) == ("2000-01-01T00:00:00Z", "2000-03-01T00:00:00Z")


def test_undecoded_time_is_an_error():
    ds = xr.Dataset(coords={"time": ("time", np.array([0.0, 1.0]), {"units": "furlongs since dawn"})})
    with pytest.raises(ValueError, match="could not be decoded"):
        time_extent(ds, "time")
