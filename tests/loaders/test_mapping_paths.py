"""The fast mapping paths give exactly what the reference paths give.

Every store the loader tests use (tests/loaders/cases.py, the real-metadata stores of
test_real_stores.py, the samples) plus stores as plain xarray writes them (no CF
attributes, time from a pandas index) is catalogued twice through the crawl's own
per-store path, `run_job` on prefetched bytes and `inspect_store` by URL: once with
the fast paths (loaders.mapping.axes, ...) and once with every switch off (cf_xarray and
xarray's whole decode pipeline). The Items (and the attributes collections use)
must be equal byte for byte.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import cftime
import numcodecs
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import SourceConfig
from zarr_stac.loaders.finding.inputs import common_root, kind_of
from zarr_stac.loaders.mapping import axes, temporal
from zarr_stac.loaders.mapping import item as mapping
from zarr_stac.loaders.reading import fastpath
from zarr_stac.loaders.reading.fetch import prefetch_many
from zarr_stac.loaders.running.crawl import inspect_store
from zarr_stac.loaders.running.jobs import CataloguedStore, Job, run_job
from zarr_stac.loaders.vocabulary import StoreRef
from zarr_stac.samples import samples

from .cases import CASES
from .real_stores import write_store
from .test_real_stores import cordex_like, netcdf_born, real_metadata_stores, with_level_zero

# (module, attribute): every fast-path switch, all turned off for the reference.
SWITCHES = [(mapping, "FAST_AXES"), (fastpath, "FAST_OPEN"), (fastpath, "FAST_DECODE"), (temporal, "FAST_STEP")]


@contextmanager
def reference_paths():
    saved = [(module, name, getattr(module, name)) for module, name in SWITCHES]
    try:
        for module, name, _ in saved:
            setattr(module, name, False)
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _plain(**overrides) -> xr.Dataset:
    """A dataset as xarray writes it from numpy/pandas: no CF attributes at all."""
    coords = {
        "time": pd.date_range("2000-01-01", periods=24, freq="MS"),
        "lat": np.linspace(-88, 88, 45),
        "lon": np.linspace(0, 356, 90),
    }
    coords.update(overrides)
    names = list(coords)
    shape = tuple(np.size(coords[n]) for n in names)
    return xr.Dataset({"tas": (names, np.zeros(shape, "f4"))}, coords=coords)


def _renamed(ds: xr.Dataset, **names) -> xr.Dataset:
    return ds.rename(names)


PLAIN = {
    "plain-xarray": _plain,
    "plain-latitude-longitude": lambda: _renamed(_plain(), lat="latitude", lon="longitude"),
    "plain-t-y-x": lambda: _renamed(_plain(), time="t", lat="y", lon="x"),
    "plain-cftime-noleap": lambda: _plain(
        time=xr.date_range("2001-01-01", periods=12, freq="MS", calendar="noleap", use_cftime=True)
    ),
    "plain-with-level": lambda: _plain(lev=np.array([1000.0, 850.0, 500.0])),
    "plain-valid-time-and-step": lambda: _renamed(_plain(), time="valid_time"),
    "plain-no-time": lambda: _plain().isel(time=0, drop=True),
    "plain-nav-lat-lon": lambda: _renamed(_plain(), lat="nav_lat", lon="nav_lon"),
    # Coordinate types a pandas index holds differently (or not at all): the Items must not change.
    "plain-float32-float16": lambda: _plain(
        lat=np.linspace(-88, 88, 45, dtype="f4"), lon=np.linspace(0, 356, 90, dtype="f4"), lev=np.array([1, 2], "f2")
    ),
    "plain-int-levels-string-members": lambda: _plain(
        lev=np.array([1000, 850], "i2"), member=np.array(["r1i1p1", "r2i1p1"]), cell=np.array([2**63, 2**63 + 1], "u8")
    ),
    "plain-seconds-time": lambda: _plain(time=np.arange(4).astype("datetime64[D]").astype("datetime64[s]")),
    "plain-timedelta-step": lambda: _plain(step=np.array([0, 6, 12], "timedelta64[h]").astype("timedelta64[ns]")),
}


def _write(ds: xr.Dataset, path: Path, *, zarr_format: int = 2, consolidated: bool = True) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(path), mode="w", zarr_format=zarr_format, consolidated=consolidated)
    return str(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("mapping-paths")
    urls = {}
    for case in CASES:
        urls[case.name] = _write(
            case.build(), folder / f"{case.name}.zarr", zarr_format=case.zarr_format, consolidated=case.consolidated
        )
    for sample in samples():
        name = "sample-" + sample.path.replace("/", "-")
        urls[name] = _write(sample.dataset, folder / name, zarr_format=sample.zarr_format)
    for name, (case, coordinates) in real_metadata_stores().items():
        urls[name] = str(write_store(case, folder / f"{name}.zarr", coordinates))
    urls["netcdf-born"] = _write(netcdf_born(), folder / "netcdf-born.zarr")
    urls["level-zero"] = _write(with_level_zero(), folder / "level-zero.zarr", zarr_format=3)
    urls["cordex-like"] = _write(cordex_like(), folder / "cordex-like.zarr")
    for name, build in PLAIN.items():
        urls[name] = _write(build(), folder / f"{name}.zarr")
        urls[name + "-v3"] = _write(build(), folder / f"{name}-v3.zarr", zarr_format=3)
    return urls


def _json(outcome) -> str:
    if isinstance(outcome, CataloguedStore):
        item = outcome.item.to_dict(include_self_link=False, transform_hrefs=False)
        return json.dumps({"item": item, "attrs": outcome.attrs}, sort_keys=True)
    return json.dumps({"failure": [outcome.kind, outcome.reason]}, sort_keys=True)


def _crawl_path(urls: list[str]) -> list[str]:
    """`run_job` on prefetched bytes, as a crawl's batch does."""
    root = common_root(urls)
    source = SourceConfig(url=root, storage=StorageOptions())
    jobs = [Job(source, root, StoreRef(url=url, kind=kind_of(url))) for url in urls]
    prefetched = asyncio.run(prefetch_many([job.ref for job in jobs], StorageOptions()))
    return [_json(run_job(job, fetched)) for job, fetched in zip(jobs, prefetched)]


@pytest.fixture(scope="module")
def both_paths(stores) -> dict[str, tuple[str, str, str, str]]:
    """{store: (crawl fast, crawl reference, inspect fast, inspect reference)}."""
    names, urls = list(stores), list(stores.values())
    fast = _crawl_path(urls)
    fast_inspect = [_json(inspect_store(url)) for url in urls]
    with reference_paths():
        reference = _crawl_path(urls)
        reference_inspect = [_json(inspect_store(url)) for url in urls]
    return dict(zip(names, zip(fast, reference, fast_inspect, reference_inspect)))


STORE_NAMES = (
    [case.name for case in CASES]
    + ["sample-" + s.path.replace("/", "-") for s in samples()]
    + ["ifs-blosc2", "hrrr-forecast", "smap-ease", "hrrr-no-coordinates", "hrrr-no-valid-time"]
    + ["netcdf-born", "level-zero", "cordex-like"]
    + [name + suffix for name in PLAIN for suffix in ("", "-v3")]
)


@pytest.mark.parametrize("name", STORE_NAMES)
def test_fast_and_reference_paths_give_the_same_item(both_paths, name):
    fast, reference, fast_inspect, reference_inspect = both_paths[name]
    assert fast == reference
    assert fast_inspect == reference_inspect


def test_the_plain_xarray_store_is_catalogued(both_paths):
    fast = json.loads(both_paths["plain-xarray"][0])
    assert fast["item"]["properties"]["start_datetime"] == "2000-01-01T00:00:00Z"
    assert fast["item"]["properties"]["cube:dimensions"]["time"]["step"] == "P1M"
    assert fast["item"]["bbox"] == [-180.0, -88.0, 180.0, 88.0]  # 0..356 every 4 degrees: all round


# -- loaders.mapping.axes against cf_xarray itself, over many attribute combinations ---------------

NAMES = ["time", "t", "lat", "lon", "latitude", "x", "y", "lev", "member", "rlat", "step", "valid_time", "nav_lon"]
ATTRIBUTES = [
    {},
    {"standard_name": "time"},
    {"standard_name": "latitude"},
    {"standard_name": "longitude"},
    {"units": "degrees_east"},
    {"units": "degrees_north"},
    {"axis": "X"},
    {"axis": "Y"},
    {"axis": "T"},
    {"axis": "Z"},
    {"positive": "down"},
    {"standard_name": "projection_x_coordinate"},
    {"long_name": "latitude"},
    {"_CoordinateAxisType": "Time"},
    {"standard_name": "air_pressure", "units": "hPa"},
]
VALUES = {
    "datetime": pd.date_range("2000-01-01", periods=3, freq="D").values,
    "timedelta": np.array([0, 3, 6], dtype="timedelta64[h]"),
    "cftime": np.array([cftime.DatetimeNoLeap(2000, 1, d) for d in (1, 2, 3)]),
    "float": np.array([1.0, 2.0, 3.0]),
}


def _datasets():
    combos = itertools.product(NAMES, range(len(ATTRIBUTES)), VALUES)
    for i, (name, attrs, kind) in enumerate(combos):
        other = NAMES[(i * 7 + 3) % len(NAMES)]
        if other == name:
            continue
        coords = {
            name: (name, VALUES[kind], dict(ATTRIBUTES[attrs])),
            other: (other, VALUES["float"], dict(ATTRIBUTES[(i * 5) % len(ATTRIBUTES)])),
        }
        yield f"{name}-{attrs}-{kind}-{other}", xr.Dataset({"v": ((name, other), np.zeros((3, 3)))}, coords=coords)


def test_axes_classify_and_guess_as_cf_xarray_does():
    checked = 0
    for label, ds in _datasets():
        found = axes.classify(ds)
        assert found is not None, label
        assert (found.axes, found.coordinates) == (ds.cf.axes, ds.cf.coordinates), label
        guessed = axes.guess(ds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = ds.cf.guess_coord_axis()
        assert (guessed.axes, guessed.coordinates) == (reference.cf.axes, reference.cf.coordinates), label
        checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: ds.assign_attrs(coordinates="lat lon"),
        lambda ds: ds.assign({"mesh": ((), 0, {"cf_role": "grid_topology"})}),
        lambda ds: ds.assign({"crs": ((), 0, {"grid_mapping_name": "latitude"})}),
        lambda ds: ds.assign({"v2": (("lat",), np.zeros(45), {"cell_measures": "X: lat"})}),
        lambda ds: ds.assign({"v3": (("lat",), np.zeros(45), {"standard_name": "X"})}),
        lambda ds: ds.assign_coords(lat=ds["lat"].assign_attrs(units=np.array(["degrees_north"]))),
    ],
    ids=[
        "dataset-coordinates",
        "sgrid",
        "grid-mapping-named-latitude",
        "cell-measure-named-X",
        "standard-name-X",
        "array-units",
    ],
)
def test_axes_leave_unusual_datasets_to_cf_xarray(change):
    assert axes.classify(change(_plain())) is None
    assert axes.guess(change(_plain())) is None


# -- fastpath.decode_v2 against zarr itself ----------------------------------------------------


def _v2_array(values: np.ndarray, **kwargs):
    import zarr
    from zarr.storage import MemoryStore

    store = MemoryStore()
    group = zarr.open_group(store, mode="w", zarr_format=2)
    array = group.create_array("a", shape=values.shape, dtype=values.dtype, **kwargs)
    array[...] = values
    files = {key: buffer.to_bytes() for key, buffer in store._store_dict.items()}
    return array, files


V2_ARRAYS = {
    "f8-one-chunk": (np.linspace(-88, 88, 45), {}),
    "f4-edge-chunks": (np.arange(10, dtype="f4"), {"chunks": (3,)}),
    "big-endian": (np.arange(7, dtype=">f8"), {"chunks": (4,)}),
    "fortran-2d": (np.arange(35, dtype="i4").reshape(5, 7), {"chunks": (2, 3), "order": "F"}),
    "slash-separator": (
        np.arange(12, dtype="u2").reshape(3, 4),
        {"chunks": (2, 2), "chunk_key_encoding": {"name": "v2", "separator": "/"}},
    ),
    "delta-filter": (np.arange(20, dtype="i8"), {"filters": [numcodecs.Delta(dtype="<i8")], "chunks": (6,)}),
    "uncompressed": (np.arange(5, dtype="f8"), {"compressors": None}),
    "datetime64": (pd.date_range("2000-01-01", periods=5, freq="D").values.astype("M8[ns]"), {}),
    "scalar": (np.array(3.5), {}),
    "nan": (np.array([np.nan, 1.0, np.inf]), {}),
}


@pytest.mark.parametrize("label", V2_ARRAYS)
def test_decode_v2_reads_what_zarr_reads(label):
    values, kwargs = V2_ARRAYS[label]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array, files = _v2_array(values, **kwargs)
    decoded, expected = fastpath.decode_v2(array, "a", files), array[...]
    assert decoded is not None
    assert type(decoded) is type(expected) and decoded.dtype == expected.dtype
    assert np.asarray(decoded).tobytes() == np.asarray(expected).tobytes()


def test_decode_v2_leaves_absent_chunks_and_strings_to_zarr():
    array, files = _v2_array(np.arange(10, dtype="f8"), chunks=(5,))
    assert fastpath.decode_v2(array, "a", {k: v for k, v in files.items() if k != "a/1"}) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strings, files = _v2_array(np.array(["a", "b"], dtype="U1"))
    assert fastpath.decode_v2(strings, "a", files) is None


# -- temporal.time_step: numpy month arithmetic against one pandas Timestamp per value ---------

TIMES = {
    "monthly-1850": pd.date_range("1850-01-01", periods=1980, freq="MS").values,
    "mid-month": (pd.date_range("1849-12-01", periods=25, freq="MS") + pd.Timedelta("15D")).values,
    "yearly-pre-1970": pd.date_range("1700-07-01", periods=5, freq="YS-JUL").values,
    "quarterly": pd.date_range("2000-01-01", periods=9, freq="QS").values,
    "six-hourly": pd.date_range("1969-12-31", periods=9, freq="6h").values,
    "irregular": pd.to_datetime(["1969-12-31T23:00", "1970-01-01T01:00", "1970-02-01T00:00"]).values,
    "seconds-unit": pd.date_range("2000-01-01", periods=4, freq="MS").values.astype("M8[s]"),
    "days-unit": np.arange(3).astype("M8[D]"),
    "descending": pd.date_range("2000-01-01", periods=4, freq="MS").values[::-1],
    "with-nat": np.array(["2000-01-01", "NaT", "2000-03-01"], dtype="M8[ns]"),
}


@pytest.mark.parametrize("label", TIMES)
def test_time_step_is_the_same_on_both_paths(label):
    ds = xr.Dataset(coords={"time": ("time", TIMES[label])})
    fast = temporal.time_step(ds, "time")
    with reference_paths():
        reference = temporal.time_step(ds, "time")
    assert fast == reference


# -- the crawl's prefetched chunks are the chunks the store holds, whatever its chunk key encoding ----
CHUNK_KEY_ENCODINGS = {
    "v3-default-slash": (3, {"name": "default", "configuration": {"separator": "/"}}),
    "v3-default-dot": (3, {"name": "default", "configuration": {"separator": "."}}),  # c.0, not c/0
    "v3-v2-dot": (3, {"name": "v2", "configuration": {"separator": "."}}),
    "v3-v2-slash": (3, {"name": "v2", "configuration": {"separator": "/"}}),
}


@pytest.mark.parametrize("label", CHUNK_KEY_ENCODINGS)
def test_the_crawl_reads_the_coordinates_inspect_reads(tmp_path, label):
    zarr_format, encoding = CHUNK_KEY_ENCODINGS[label]
    ds = _plain()
    for name in ds.variables:
        ds[name].encoding["chunk_key_encoding"] = encoding
    url = _write(ds, tmp_path / f"{label}.zarr", zarr_format=zarr_format)
    (crawled,) = _crawl_path([url])
    assert crawled == _json(inspect_store(url))
    assert json.loads(crawled)["item"]["bbox"] == [-180.0, -88.0, 180.0, 88.0]
