"""Stores as data centres write them: real metadata (tests/data/stores, SOURCES.md), synthesised coordinates.

Every store is crawled from the test S3 server (the fast, prefetching path) and
inspected on its own (the lazy path, opened through its URL); expectations come
from the synthesised coordinates.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import CRS, Transformer

from static_catalog.validate import validate_object
from static_catalog.write import write_catalog
from tests.proxy import FaultProxy
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.failures import StoreFailure
from zarr_stac.loaders.running.crawl import crawl, inspect_store
from zarr_stac.samples import write_dataset

from .cases import LAT, LON, ROTATED_POLE, antimeridian, rotated_pole
from .real_stores import array_metadata, upload, write_store

BUCKET = "real-stores"
FORECAST_SCHEMA = "https://stac-extensions.github.io/forecast/v0.2.0/schema.json"

# ocf_datapipes' IFS store: one run, two steps (hours), data variable compressed with blosc2.
IFS_INIT = np.datetime64("2023-06-01T06:00", "ns")
IFS_STEPS = np.array([0.0, 3.0])
IFS_LAT = np.linspace(61.0, 39.0, 221)
IFS_LON = np.linspace(-12.0, 10.0, 221)

# dynamical.org's HRRR 48-hour forecast: Lambert conformal x/y (3 km), 2-D lat/lon, 2-D valid_time.
HRRR_CRS_WKT = array_metadata("hrrr-forecast")["spatial_ref"]["attributes"]["crs_wkt"]
HRRR_X = -2699020.142521929 + 1500.0 + 3000.0 * np.arange(1799)
HRRR_Y = 1588193.847443335 - 1500.0 - 3000.0 * np.arange(1059)
HRRR_INIT = np.array([np.datetime64("2024-02-29T18:00", "s").astype("int64")])
HRRR_LEADS = 3600.0 * np.arange(49)

# dynamical.org's SMAP L3 36 km: EASE-Grid 2.0 global (EPSG:6933) x/y with 2-D lat/lon.
EASE_CELL = 36032.220840584
EASE_X = -17367530.445161499 + EASE_CELL * (np.arange(964) + 0.5)
EASE_Y = 7314540.830638139 - EASE_CELL * (np.arange(406) + 0.5)
SMAP_TIME = np.array([np.datetime64("2015-04-01T00:00", "s").astype("int64")])


def _lonlat(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True).transform(xx, yy)
    return lon.astype("f4"), lat.astype("f4")


HRRR_LON, HRRR_LAT = _lonlat(HRRR_X, HRRR_Y, CRS.from_wkt(HRRR_CRS_WKT))
SMAP_LON, SMAP_LAT = _lonlat(EASE_X, EASE_Y, CRS.from_epsg(6933))


def ifs_coordinates() -> dict[str, np.ndarray]:
    return {
        "init_time": np.array([IFS_INIT.astype("int64")]),
        "step": IFS_STEPS,
        "latitude": IFS_LAT,
        "longitude": IFS_LON,
        "variable": np.array(["t2m", "u10"]),
    }


def hrrr_coordinates() -> dict[str, np.ndarray]:
    valid = HRRR_INIT[:, None] + HRRR_LEADS.astype("int64")[None, :]
    return {
        "x": HRRR_X, "y": HRRR_Y, "latitude": HRRR_LAT, "longitude": HRRR_LON,
        "init_time": HRRR_INIT, "lead_time": HRRR_LEADS, "valid_time": valid,
        "expected_forecast_length": np.array([172800.0]), "ingested_forecast_length": np.array([172800.0]),
    }  # fmt: skip


def smap_coordinates() -> dict[str, np.ndarray]:
    return {"x": EASE_X, "y": EASE_Y, "latitude": SMAP_LAT, "longitude": SMAP_LON, "time": SMAP_TIME}


def real_metadata_stores() -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """{store name: (its metadata document in tests/data/stores, the coordinates synthesised for it)}."""
    return {
        "ifs-blosc2": ("ifs-blosc2", ifs_coordinates()),
        "hrrr-forecast": ("hrrr-forecast", hrrr_coordinates()),
        "smap-ease": ("smap-ease", smap_coordinates()),
        # The HRRR metadata as found, without a single coordinate chunk.
        "hrrr-no-coordinates": ("hrrr-forecast", {}),
        # ... and with every coordinate but the valid times (which would read as 1970).
        "hrrr-no-valid-time": ("hrrr-forecast", {k: v for k, v in hrrr_coordinates().items() if k != "valid_time"}),
    }


def netcdf_born() -> xr.Dataset:
    """A store converted from NetCDF: a `char crs` grid-mapping variable becomes `|S1` (fill "")."""
    ds = antimeridian()
    mapping = {"grid_mapping_name": "latitude_longitude", "semi_major_axis": 6378137.0}
    ds["crs"] = ((), np.array(b"", dtype="S1"), mapping)
    ds["tas"].attrs["grid_mapping"] = "crs"
    return ds


def cordex_like() -> xr.Dataset:
    """A CORDEX-style rotated-pole grid that also carries 2-D lat/lon (no real document: synthesised)."""
    ds = rotated_pole()
    lon, lat = _lonlat(ds["rlon"].values, ds["rlat"].values, CRS.from_cf(ROTATED_POLE))
    return ds.assign_coords(
        lon=(("rlat", "rlon"), lon.astype("f8"), LON), lat=(("rlat", "rlon"), lat.astype("f8"), LAT)
    )


def with_level_zero() -> xr.Dataset:
    """An integer level coordinate [0] with fill value 0: zarr writes no chunk for it."""
    ds = antimeridian().expand_dims(level=np.array([0], dtype="i4"))
    ds["level"].attrs.update(long_name="model level")
    ds["level"].encoding["fill_value"] = 0
    return ds


def _iso(seconds: int | np.integer) -> str:
    return pd.Timestamp(int(seconds), unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def real_bucket(s3_server, storage, tmp_path_factory):
    s3_server.create_bucket(BUCKET, public=True)
    folder = tmp_path_factory.mktemp("real-stores")
    for name, (case, coordinates) in real_metadata_stores().items():
        upload(write_store(case, folder / f"{name}.zarr", coordinates), f"s3://{BUCKET}/{name}.zarr", storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(netcdf_born(), f"s3://{BUCKET}/netcdf-born.zarr", storage, public=True)
        write_dataset(with_level_zero(), f"s3://{BUCKET}/level-zero.zarr", storage, zarr_format=3, public=True)
        write_dataset(cordex_like(), f"s3://{BUCKET}/cordex-like.zarr", storage, public=True)
    # As zarr-python 2 wrote it (zarr 3 writes null): the fill value of a |S1 array is "".
    fs = storage.filesystem(f"s3://{BUCKET}")
    metadata = json.loads(fs.cat(f"{BUCKET}/netcdf-born.zarr/.zmetadata"))
    metadata["metadata"]["crs/.zarray"]["fill_value"] = ""
    fs.pipe(f"{BUCKET}/netcdf-born.zarr/.zmetadata", json.dumps(metadata).encode())
    return f"s3://{BUCKET}"


@pytest.fixture(scope="module")
def real_crawl(real_bucket, storage):
    return crawl(real_bucket, storage)


@pytest.fixture(scope="module")
def published(real_crawl, tmp_path_factory):
    """The crawl written as a static catalogue (which must not fail on any of these stores)."""
    out = tmp_path_factory.mktemp("real-catalogue")
    write_catalog(real_crawl.collections, real_crawl.items, str(out))
    return out


def _valid(published, validator, name: str) -> bool:
    item = json.loads((published / BUCKET / name / f"{name}.json").read_text())
    error = validate_object(item, validator)
    assert error is None, error
    return True


def _item(result, name: str) -> dict:
    (item,) = [i for i in result.items if i.id == name]
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def _both_paths(real_crawl, storage, name: str) -> list[dict]:
    """The Item from the crawl (prefetched) and from `inspect` (lazy), which must agree."""
    lazy = inspect_store(f"s3://{BUCKET}/{name}.zarr", storage)
    assert not isinstance(lazy, StoreFailure), lazy
    items = [_item(real_crawl, name), lazy.item.to_dict(include_self_link=False, transform_hrefs=False)]
    for item in items:
        json.dumps(item, allow_nan=False)
    return items


def test_only_the_expected_stores_fail(real_crawl):
    assert {f.url: f.kind for f in real_crawl.failures} == {
        f"s3://{BUCKET}/hrrr-no-coordinates.zarr": "missing-coordinates",
        f"s3://{BUCKET}/hrrr-no-valid-time.zarr": "missing-coordinates",
    }
    catalogued = sorted(i.id for i in real_crawl.items)
    assert catalogued == ["cordex-like", "hrrr-forecast", "ifs-blosc2", "level-zero", "netcdf-born", "smap-ease"]


# -- 1. a codec only data variables use ----------------------------------------------------
def test_data_variable_codec_not_installed_does_not_block_the_store(real_crawl, storage):
    import numcodecs

    with pytest.raises(numcodecs.errors.UnknownCodecError):
        numcodecs.get_codec({"id": "blosc2"})  # the case is only a case without the plugin
    for item in _both_paths(real_crawl, storage, "ifs-blosc2"):
        assert item["bbox"] == [-12.0, 39.0, 10.0, 61.0]
        variable = item["properties"]["cube:variables"]["ECMWF_BLAH"]
        assert variable["codecs"] == ["blosc2"] and variable["shape"] == [2, 1, 2, 221, 221]
        assert item["properties"]["variables"] == ["ECMWF_BLAH"]
    assert numcodecs.registry.codec_registry.get("blosc2") is None, "the stand-in must not outlive the open"


def test_a_coordinate_codec_not_installed_fails_naming_codec_and_array(tmp_path):
    folder = write_store("ifs-blosc2", tmp_path / "ifs.zarr", ifs_coordinates())
    metadata = json.loads((folder / ".zmetadata").read_text())
    metadata["metadata"]["latitude/.zarray"]["compressor"] = {"id": "blosc2", "cname": "zstd", "clevel": 5}
    (folder / ".zmetadata").write_text(json.dumps(metadata))
    failure = inspect_store(str(folder))
    assert isinstance(failure, StoreFailure) and failure.kind == "unknown-codec"
    assert "'latitude'" in failure.reason and "blosc2" in failure.reason


# -- 2. byte strings ------------------------------------------------------------------------
def test_byte_string_variable_becomes_json_and_the_catalogue_is_written(real_crawl, storage, published, validator):
    for item in _both_paths(real_crawl, storage, "netcdf-born"):
        crs = item["properties"]["cube:variables"]["crs"]
        assert crs["data_type"] == "other" and "nodata" not in crs  # datacube's nodata is a number
    assert _valid(published, validator, "netcdf-born")


# -- 3. forecast archives --------------------------------------------------------------------
def test_single_run_without_valid_times(real_crawl, storage, published, validator):
    init = pd.Timestamp(IFS_INIT)
    for item in _both_paths(real_crawl, storage, "ifs-blosc2"):
        props = item["properties"]
        assert props["start_datetime"] == init.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert props["end_datetime"] == (init + pd.Timedelta(hours=IFS_STEPS.max())).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert props["forecast:reference_datetime"] == props["start_datetime"] and props["forecast:horizon"] == "PT3H"
        assert props["cube:dimensions"]["step"] == {
            "type": "forecast_period", "unit": "h", "description": "time since forecast_reference_time",
            "extent": [0, 3], "step": 3, "values": ["PT0S", "PT3H"],
        }  # fmt: skip
        assert props["cube:dimensions"]["init_time"]["type"] == "temporal"
        assert FORECAST_SCHEMA in item["stac_extensions"]
    assert _valid(published, validator, "ifs-blosc2")


def test_valid_times_give_the_extent(real_crawl, storage, published, validator):
    for item in _both_paths(real_crawl, storage, "hrrr-forecast"):
        props = item["properties"]
        assert props["start_datetime"] == _iso(HRRR_INIT[0])
        assert props["end_datetime"] == _iso(HRRR_INIT[0] + int(HRRR_LEADS.max()))
        assert props["forecast:reference_datetime"] == _iso(HRRR_INIT[0]) and props["forecast:horizon"] == "P2D"
        lead = props["cube:dimensions"]["lead_time"]
        assert lead["extent"] == [0, 48] and lead["step"] == 1 and len(lead["values"]) == 49
        assert props["cube:dimensions"]["init_time"]["extent"] == [_iso(HRRR_INIT[0])] * 2
    assert _valid(published, validator, "hrrr-forecast")


# -- 4. projected grids with 2-D lat/lon -----------------------------------------------------
def test_lambert_conformal_x_y_carry_the_grid_crs(real_crawl, storage):
    expected_crs = CRS.from_wkt(HRRR_CRS_WKT)
    for item in _both_paths(real_crawl, storage, "hrrr-forecast"):
        props = item["properties"]
        expected_bbox = [float(HRRR_LON.min()), float(HRRR_LAT.min()), float(HRRR_LON.max()), float(HRRR_LAT.max())]
        assert item["bbox"] == pytest.approx(expected_bbox)
        for axis, values in (("x", HRRR_X), ("y", HRRR_Y)):
            dimension = props["cube:dimensions"][axis]
            assert CRS.from_json_dict(dimension["reference_system"]) == expected_crs
            assert dimension["reference_system"] == props["proj:projjson"] and props["proj:code"] is None
            assert dimension["extent"] == pytest.approx([values.min(), values.max()]) and dimension["unit"] == "m"
        assert props["proj:shape"] == [1059, 1799]


def test_ease_grid_x_y_carry_its_epsg_code(real_crawl, storage, published, validator):
    for item in _both_paths(real_crawl, storage, "smap-ease"):
        props = item["properties"]
        assert props["proj:code"] == "EPSG:6933"
        assert [props["cube:dimensions"][axis]["reference_system"] for axis in "xy"] == [6933, 6933]
        assert props["cube:dimensions"]["x"]["extent"] == pytest.approx([EASE_X.min(), EASE_X.max()])
        # Global: the cells meet all around the globe (spacing 0.37°), so -180..180.
        assert np.diff(np.sort(SMAP_LON[0])).max() < 1
        assert item["bbox"] == pytest.approx([-180.0, float(SMAP_LAT.min()), 180.0, float(SMAP_LAT.max())])
        assert props["start_datetime"] == _iso(SMAP_TIME[0])
    assert _valid(published, validator, "smap-ease")


def test_rotated_pole_with_2d_lonlat_x_y_carry_the_rotated_crs(real_crawl, storage):
    ds = cordex_like()
    for item in _both_paths(real_crawl, storage, "cordex-like"):
        props = item["properties"]
        assert props["proj:projjson"]["type"] == "DerivedGeographicCRS" and props["proj:code"] is None
        assert props["cube:dimensions"]["rlon"]["reference_system"] == props["proj:projjson"]
        assert props["cube:dimensions"]["rlat"]["reference_system"] == props["proj:projjson"]
        expected = [ds["lon"].values.min(), ds["lat"].values.min(), ds["lon"].values.max(), ds["lat"].values.max()]
        assert item["bbox"] == pytest.approx([float(v) for v in expected])


# -- 7. no silently wrong Item ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "coordinate"), [("hrrr-no-coordinates", "longitude"), ("hrrr-no-valid-time", "valid_time")]
)
def test_absent_extent_coordinates_fail_the_store_on_both_paths(real_crawl, storage, name, coordinate):
    (failure,) = [f for f in real_crawl.failures if f.url == f"s3://{BUCKET}/{name}.zarr"]
    lazy = inspect_store(f"s3://{BUCKET}/{name}.zarr", storage)
    for found in (failure, lazy):
        assert isinstance(found, StoreFailure) and found.kind == "missing-coordinates"
        assert f"'{coordinate}'" in found.reason and "\n" not in found.reason


def test_an_all_fill_level_coordinate_is_legitimate(real_crawl, storage):
    fs = storage.filesystem(f"s3://{BUCKET}")
    assert not fs.exists(f"{BUCKET}/level-zero.zarr/level/c/0"), "zarr omits the all-fill chunk"
    for item in _both_paths(real_crawl, storage, "level-zero"):
        assert item["properties"]["cube:dimensions"]["level"]["extent"] == [0, 0]


# -- no data chunk is read, for these stores either ------------------------------------------
def test_real_stores_read_no_data_chunk(real_bucket, s3_server):
    data_variables = {
        name
        for case in ("ifs-blosc2", "hrrr-forecast", "smap-ease")
        for name, meta in array_metadata(case).items()
        if (meta.get("dimension_names") or meta["attributes"].get("_ARRAY_DIMENSIONS")) not in ([name], None)
        and "coordinates" in meta["attributes"]
        or name == "ECMWF_BLAH"
    }
    assert {"ECMWF_BLAH", "temperature_2m", "soil_moisture_am"} <= data_variables
    with FaultProxy(s3_server.endpoint_url) as proxy:
        result = crawl(real_bucket, StorageOptions(endpoint_url=proxy.url, anon=True))
        requests = list(proxy.requests)
    assert len(result.items) == 6
    pattern = re.compile(r"/(" + "|".join(map(re.escape, sorted(data_variables))) + r")/(c/)?\d")
    assert [r.path for r in requests if r.method == "GET" and pattern.search(r.path)] == []
