"""Grids described without a CF grid_mapping: the Zarr conventions `proj` and `spatial` (GeoZarr),
STAC's projection fields on EOPF products, GDAL/rioxarray's WKT; and the boxes and STAC Items
stores declare, which are hints that the grid overrules.

Real metadata (tests/data/eopf, tests/data/zarr-conventions: see their SOURCES.md), coordinates
synthesised from the grid each documents; every expected box is computed here with pyproj from
that documented grid.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from pathlib import Path

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
from zarr_stac.loaders.mapping.embedded_stac import embedded_stac
from zarr_stac.loaders.mapping.grid import declared_box_notes, describe_grid
from zarr_stac.loaders.mapping.item import find_axes
from zarr_stac.loaders.running.crawl import crawl, inspect_store
from zarr_stac.samples import write_dataset

from .real_stores import upload
from .tree_stores import arrays_of, node, tree, write_group

BUCKET = "geozarr-stores"
DATA = Path(__file__).resolve().parent.parent / "data"
S2 = "S2A_MSIL2A_20251008T100041_N0511_R122_T32TQM_20251008T122613.json"
S2_GEOZARR = "S2A_MSIL2A_20251008T100041_N0511_R122_T32TQM_20251008T122613-geozarr.json"
S1_RTC = "s1-grd-rtc-31TCH.json"

# T32TQM at 10 m, as its arrays' proj:transform [10, 0, 699960, 0, -10, 4700040] documents it:
# x/y hold the cell centres.
S2_X = 699960 + 5 + 10 * np.arange(10980)
S2_Y = 4700040 - 5 - 10 * np.arange(10980)


def outline_bbox(xmin: float, ymin: float, xmax: float, ymax: float, crs: CRS | str) -> list[float]:
    """The WGS84 bbox of a rectangle in `crs` (regional, away from poles and 180°), from 1001
    points a side."""
    xs, ys = np.linspace(xmin, xmax, 1001), np.linspace(ymin, ymax, 1001)
    edge_x = np.concatenate([xs, np.full(1001, xmax), xs, np.full(1001, xmin)])
    edge_y = np.concatenate([np.full(1001, ymin), ys, np.full(1001, ymax), ys])
    lon, lat = Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True).transform(
        edge_x, edge_y
    )
    return [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))]


# -- the grid of each real group, whatever store it comes from -----------------------------
def _eopf_r10m(folder: Path) -> Path:
    group = node(tree(S2), "measurements/reflectance/r10m")
    return write_group(folder, group["attributes"], arrays_of(group), 2, {"x": S2_X, "y": S2_Y})


def _geozarr_r10m(folder: Path) -> Path:
    group = node(tree(S2_GEOZARR), "measurements/reflectance/r10m")
    return write_group(folder, group["attributes"], arrays_of(group), 3, {"x": S2_X, "y": S2_Y})


def _s1_conditions(folder: Path) -> Path:
    group = node(tree(S1_RTC), "descending/conditions")
    return write_group(folder, group["attributes"], arrays_of(group), 3, {})


S2_CENTRES = outline_bbox(S2_X.min(), S2_Y.min(), S2_X.max(), S2_Y.max(), "EPSG:32632")
GROUPS = {
    # EOPF: proj:epsg and proj:wkt2 on every array, no grid_mapping; x/y without attributes.
    "eopf-s2-l2a-r10m": (_eopf_r10m, "EPSG:32632", S2_CENTRES, [699965, 4590245, 809755, 4700035], []),
    # GeoZarr: proj:code on the group and a CF spatial_ref that agree; its spatial:bbox [0, 0, 0, 0] does not.
    "geozarr-s2-l2a-r10m": (
        _geozarr_r10m, "EPSG:32632", S2_CENTRES, [699965, 4590245, 809755, 4700035], ["spatial:bbox [0, 0, 0, 0]"]
    ),
    # No x/y arrays at all: proj:code and spatial:transform, over the sizes of spatial:dimensions.
    "s1-rtc-conditions": (
        _s1_conditions, "EPSG:32631", outline_bbox(500000, 4890200, 609800, 5000000, "EPSG:32631"),
        [500000, 4890200, 609800, 5000000], [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_the_grid_of_a_real_group(tmp_path, name):
    write, code, bbox, native, contradicted = GROUPS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(write(tmp_path / f"{name}.zarr"), engine="zarr", chunks=None)
    axes = find_axes(ds)
    grid = describe_grid(ds, longitude=axes.longitude, latitude=axes.latitude, x=axes.x, y=axes.y)
    assert grid.crs == CRS.from_user_input(code)
    assert grid.bbox == pytest.approx(bbox, abs=1e-6)
    assert grid.native_bbox == pytest.approx(native)
    assert grid.shape == [10980, 10980]
    notes = declared_box_notes(grid, None)
    assert [note for note in notes if "contradicts" in note] == [
        f"{box} of the group contradicts the grid's extent [{', '.join(f'{v:.6g}' for v in native)}]: "
        "the grid's is published"
        for box in contradicted
    ]


# -- whole stores: crawled and inspected, the same Item ------------------------------------
def _eopf_product(folder: Path) -> Path:
    """The EOPF product's root attributes (its stac_discovery) and its 10 m reflectances, as one group."""
    product = tree(S2)
    group = node(product, "measurements/reflectance/r10m")
    return write_group(folder, product["attributes"], arrays_of(group), 2, {"x": S2_X, "y": S2_Y})


PROJ_EXAMPLE_SHAPE = {"Y": 40, "X": 60}  # the examples give no size: synthesised
PROJ_EXAMPLE_TIME = pd.date_range("2024-05-01", periods=3, freq="D")


def proj_example(name: str) -> xr.Dataset:
    """A store whose data variable carries the attributes of a `proj` convention example, as found."""
    attributes = json.loads((DATA / "zarr-conventions" / f"{name}.json").read_text())["attributes"]
    shape = (PROJ_EXAMPLE_TIME.size, PROJ_EXAMPLE_SHAPE["Y"], PROJ_EXAMPLE_SHAPE["X"])
    return xr.Dataset(
        {"data": (("time", "Y", "X"), np.zeros(shape, "f4"), attributes)},
        coords={"time": ("time", PROJ_EXAMPLE_TIME, {"standard_name": "time"})},
    )


EQUAL_EARTH = CRS.from_epsg(8857)  # WGS 84 / Equal Earth Greenwich: CF has no grid mapping for it
EQUAL_EARTH_X = np.arange(-500000.0, 500001.0, 100000.0)
EQUAL_EARTH_Y = np.arange(5500000.0, 4999999.0, -100000.0)


def rioxarray_wkt_only() -> xr.Dataset:
    """A grid-mapping variable as rioxarray writes one for a CRS CF cannot express: CRS.to_cf()
    (only `crs_wkt`) and the GDAL `spatial_ref` WKT, no grid_mapping_name."""
    assert "grid_mapping_name" not in EQUAL_EARTH.to_cf()
    mapping = {**EQUAL_EARTH.to_cf(), "spatial_ref": EQUAL_EARTH.to_wkt()}
    x_attrs = {"standard_name": "projection_x_coordinate", "units": "metre", "axis": "X"}
    y_attrs = {"standard_name": "projection_y_coordinate", "units": "metre", "axis": "Y"}
    shape = (PROJ_EXAMPLE_TIME.size, EQUAL_EARTH_Y.size, EQUAL_EARTH_X.size)
    return xr.Dataset(
        {
            "tas": (("time", "y", "x"), np.zeros(shape, "f4"), {"grid_mapping": "spatial_ref"}),
            "spatial_ref": ((), np.int64(0), mapping),
        },
        coords={
            "time": ("time", PROJ_EXAMPLE_TIME, {"standard_name": "time"}),
            "x": ("x", EQUAL_EARTH_X, x_attrs),
            "y": ("y", EQUAL_EARTH_Y, y_attrs),
        },
    )


@pytest.fixture(scope="module")
def geozarr_bucket(s3_server, storage, tmp_path_factory):
    s3_server.create_bucket(BUCKET, public=True)
    folder = tmp_path_factory.mktemp("geozarr-stores")
    for name, write in {
        "eopf-s2-l2a": _eopf_product,
        "geozarr-s2-l2a-r10m": _geozarr_r10m,
        "s1-rtc-conditions": _s1_conditions,
    }.items():
        upload(write(folder / f"{name}.zarr"), f"s3://{BUCKET}/{name}.zarr", storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("epsg26711", "wkt2"):
            write_dataset(proj_example(name), f"s3://{BUCKET}/proj-{name}.zarr", storage, zarr_format=3, public=True)
        write_dataset(rioxarray_wkt_only(), f"s3://{BUCKET}/equal-earth.zarr", storage, public=True)
    return f"s3://{BUCKET}"


@pytest.fixture(scope="module")
def geozarr_crawl(geozarr_bucket, storage):
    return crawl(geozarr_bucket, storage)


@pytest.fixture(scope="module")
def published(geozarr_crawl, tmp_path_factory):
    """The crawl written as a static catalogue."""
    out = tmp_path_factory.mktemp("geozarr-catalogue")
    write_catalog(geozarr_crawl.collections, geozarr_crawl.items, str(out))
    return out


def _valid(published, validator, name: str) -> bool:
    item = json.loads((published / BUCKET / name / f"{name}.json").read_text())
    error = validate_object(item, validator)
    assert error is None, error
    return True


def _both(geozarr_crawl, storage, name: str) -> tuple[list[dict], list[str]]:
    """The Item of the crawl and of `inspect` (which must be the same), and the notes of both."""
    lazy = inspect_store(f"s3://{BUCKET}/{name}.zarr", storage)
    assert not isinstance(lazy, StoreFailure), lazy
    (crawled,) = [i for i in geozarr_crawl.items if i.id == name]
    items = [i.to_dict(include_self_link=False, transform_hrefs=False) for i in (crawled, lazy.item)]
    assert items[0] == items[1]
    url = f"s3://{BUCKET}/{name}.zarr"
    crawl_notes = [n.removeprefix(f"{url}: ") for n in geozarr_crawl.notes if n.startswith(f"{url}: ")]
    assert crawl_notes == lazy.notes
    return items, lazy.notes


def test_an_eopf_product_is_placed_by_its_proj_fields_and_dated_by_its_stac_item(
    geozarr_crawl, storage, published, validator
):
    stac = tree(S2)["attributes"]["stac_discovery"]
    items, notes = _both(geozarr_crawl, storage, "eopf-s2-l2a")
    item = items[0]
    assert item["bbox"] == pytest.approx(S2_CENTRES, abs=1e-6)
    props = item["properties"]
    assert props["proj:code"] == "EPSG:32632" and props["proj:shape"] == [10980, 10980]
    assert props["proj:bbox"] == [699965, 4590245, 809755, 4700035]
    assert [props["cube:dimensions"][axis]["reference_system"] for axis in "xy"] == [32632, 32632]
    # No time coordinate: the product's STAC Item says when (to the second), and who took it.
    start = pd.Timestamp(stac["properties"]["start_datetime"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (props["start_datetime"], props["end_datetime"]) == (start, start)
    assert "time" not in props["cube:dimensions"]
    assert {k: props[k] for k in ("platform", "constellation", "mission")} == {
        "platform": "sentinel-2a", "constellation": "sentinel-2", "mission": "copernicus",
    }  # fmt: skip
    assert not any(name.startswith(("eo:", "sat:", "eopf:", "processing:")) for name in props)
    # Its STAC Item's bbox has west and east swapped (it would go round the world): the grid's wins, said once.
    assert stac["bbox"][0] > stac["bbox"][2]
    assert notes == [
        f"the bbox [{', '.join(f'{v:.6g}' for v in stac['bbox'])}] of stac_discovery contradicts the grid's "
        f"[{', '.join(f'{v:.6g}' for v in item['bbox'])}]: the grid's is published"
    ]
    assert _valid(published, validator, item["id"])


@pytest.mark.parametrize(
    ("name", "crs"),
    [
        ("epsg26711", CRS.from_epsg(26711)),
        ("wkt2", CRS.from_epsg(32633)),  # the example's WKT is WGS 84 / UTM zone 33N
    ],
)
def test_a_transform_without_x_y_arrays_places_the_grid(geozarr_crawl, storage, published, validator, name, crs):
    transform = json.loads((DATA / "zarr-conventions" / f"{name}.json").read_text())["attributes"]["spatial:transform"]
    a, _, c, _, e, f = transform
    rows, columns = PROJ_EXAMPLE_SHAPE["Y"], PROJ_EXAMPLE_SHAPE["X"]
    xmin, xmax, ymin, ymax = c, c + a * columns, f + e * rows, f  # pixel registration: cell corners
    item = _both(geozarr_crawl, storage, f"proj-{name}")[0][0]
    props = item["properties"]
    assert item["bbox"] == pytest.approx(outline_bbox(xmin, ymin, xmax, ymax, crs), abs=1e-6)
    assert props["proj:code"] == f"EPSG:{crs.to_epsg()}"
    assert props["proj:bbox"] == [xmin, ymin, xmax, ymax] and props["proj:shape"] == [rows, columns]
    assert props["proj:transform"] == transform
    # cube:dimensions: the cell centres, the cell size as the step, in the grid's CRS.
    assert props["cube:dimensions"]["X"] == {
        "type": "spatial", "axis": "x", "extent": [c + a / 2, c + a * (columns - 0.5)], "step": a,
        "reference_system": crs.to_epsg(),
    }  # fmt: skip
    assert props["cube:dimensions"]["Y"]["extent"] == [f + e * (rows - 0.5), f + e / 2]
    assert props["start_datetime"] == "2024-05-01T00:00:00Z" and props["end_datetime"] == "2024-05-03T00:00:00Z"
    assert _valid(published, validator, item["id"])


def test_a_grid_mapping_with_only_its_wkt(geozarr_crawl, storage):
    item = _both(geozarr_crawl, storage, "equal-earth")[0][0]
    expected = outline_bbox(EQUAL_EARTH_X.min(), EQUAL_EARTH_Y.min(), EQUAL_EARTH_X.max(), EQUAL_EARTH_Y.max(), 8857)
    assert item["bbox"] == pytest.approx(expected, abs=1e-6)
    assert item["properties"]["proj:code"] == "EPSG:8857"


def test_a_group_placed_by_its_transform_but_without_a_time_says_so(geozarr_crawl, storage):
    """A group of a product whose time lives elsewhere: placed, but not dated, on both paths."""
    url = f"s3://{BUCKET}/s1-rtc-conditions.zarr"
    (failure,) = [f for f in geozarr_crawl.failures if f.url == url]
    for found in (failure, inspect_store(url, storage)):
        assert isinstance(found, StoreFailure) and found.kind == "no-time", found


def test_geozarr_stores_read_no_data_chunk(geozarr_bucket, s3_server):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        result = crawl(geozarr_bucket, StorageOptions(endpoint_url=proxy.url, anon=True))
        requests = list(proxy.requests)
    assert len(result.items) == 4
    data = r"(b0\d|gamma_area_\d+|data|tas)"
    pattern = re.compile(rf"\.zarr/{data}/(c/)?\d|\.zarr/{data}/\d")
    assert [r.path for r in requests if r.method == "GET" and pattern.search(r.path)] == []


# -- declarations that cannot be trusted -----------------------------------------------------
def _utm_store(**group_attrs) -> xr.Dataset:
    """A 3 × 4 UTM 32N grid with a CF grid mapping (as rioxarray writes it), and `group_attrs`."""
    utm = CRS.from_epsg(32632)
    x_attrs = {"standard_name": "projection_x_coordinate", "units": "metre", "axis": "X"}
    y_attrs = {"standard_name": "projection_y_coordinate", "units": "metre", "axis": "Y"}
    ds = xr.Dataset(
        {
            "b02": (("time", "y", "x"), np.zeros((1, 3, 4), "f4"), {"grid_mapping": "spatial_ref"}),
            "spatial_ref": ((), np.int64(0), {**utm.to_cf(), "spatial_ref": utm.to_wkt()}),
        },
        coords={
            "time": ("time", PROJ_EXAMPLE_TIME[:1], {"standard_name": "time"}),
            "x": ("x", 700005.0 + 10 * np.arange(4), x_attrs),
            "y": ("y", 4700035.0 - 10 * np.arange(3), y_attrs),
        },
    )
    ds["time"].encoding["units"] = "days since 2000-01-01"  # a value that is not zarr's fill
    ds.attrs.update(group_attrs)
    return ds


def test_two_crss_for_one_grid_place_it_nowhere(tmp_path):
    write_dataset(_utm_store(**{"proj:code": "EPSG:32633"}), str(tmp_path / "two.zarr"))
    failure = inspect_store(str(tmp_path / "two.zarr"))
    assert isinstance(failure, StoreFailure) and failure.kind == "no-coordinates"
    assert failure.reason == "the CF grid mapping and proj:code 'EPSG:32633' of the group are different CRSs"


@pytest.mark.parametrize(
    ("attrs", "note"),
    [
        ({"proj:code": "EPSG:0"}, "proj:code 'EPSG:0' of the group ignored: not a CRS that pyproj knows"),
        ({"proj:code": "32632"}, "proj:code of the group ignored: 'proj:code' must match '^[^:]+:[^:]+$', got '32632'"),
        ({"proj:wkt2": "PROJCRS[" * 20_000}, "proj:wkt2 of the group ignored: not a CRS that pyproj knows"),
        (
            {"spatial:bbox": [0, 0, 0]},
            "spatial attributes of the group ignored: 'spatial:bbox' must have exactly 4 items, got 3",
        ),
    ],
)
def test_a_broken_declaration_is_left_out_and_said(tmp_path, attrs, note):
    write_dataset(_utm_store(**attrs), str(tmp_path / "broken.zarr"))
    outcome = inspect_store(str(tmp_path / "broken.zarr"))
    assert not isinstance(outcome, StoreFailure), outcome
    assert outcome.item.properties["proj:code"] == "EPSG:32632"
    assert outcome.notes == [note]


# -- a STAC Item in the attributes ----------------------------------------------------------
def test_an_embedded_stac_item_gives_the_time_and_the_acquisition_it_describes():
    """The zarr-conventions `stac` example: an EOPF GeoZarr product's root group."""
    attrs = json.loads((DATA / "zarr-conventions" / "sentinel2_item_example.json").read_text())["attributes"]
    document = attrs["stac:item"]
    found = embedded_stac(attrs)
    assert found.key == "stac:item" and found.bbox == document["bbox"] and found.problems == []
    moment = dt.datetime(2025, 11, 28, 10, 14, 1, 25000, tzinfo=dt.UTC)  # its start_datetime and end_datetime
    assert (found.start, found.end) == (moment, moment)
    # STAC common metadata of the acquisition; none of the extension fields (eo:, sat:, proj:, ...).
    assert found.properties == {
        "platform": "sentinel-2c", "constellation": "sentinel-2", "mission": "Sentinel-2", "instruments": ["msi"],
        "gsd": 10.0,
    }  # fmt: skip
    assert found.title is None
