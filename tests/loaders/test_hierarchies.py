"""Hierarchies, pyramids and bare arrays: what a store whose arrays are not all in its root group becomes.

Real metadata as found (tests/data/hierarchies, SOURCES.md), coordinate chunks synthesised
(tests/loaders/hierarchies.py). Every store is crawled from the test S3 server (its metadata
and coordinates prefetched) and inspected on its own (opened lazily through its URL): both
must give the same Item. Expectations follow from the synthesised coordinates and the grids
the sources document, never from zarr-stac's output.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from static_catalog.validate import validate_object
from static_catalog.write import write_catalog
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import HrefRewrite, MappingConfig, SourceConfig
from zarr_stac.loaders.failures import StoreFailure
from zarr_stac.loaders.mapping.multiscales import find_pyramids
from zarr_stac.loaders.running.crawl import crawl, inspect_store

from .hierarchies import (
    IFS_ENS,
    IFS_INIT,
    IFS_LAT,
    IFS_LEADS,
    IFS_LEVELS,
    PYRAMID_LEVELS,
    PYRAMID_TIMES,
    S2_GEOZARR,
    S2_GEOZARR_SPEC,
    document,
    ifs_ens_coordinates,
    nodes_of_spec,
    s2_geozarr_coordinates,
    upload,
    write_consolidated_store,
    write_healpix_pyramid,
    write_healpix_zoom_levels,
    write_spec_store,
)

BUCKET = "hierarchies"
# Equatorial base cell 6 of HEALPix is centred on 180°E: it spans 45° either side of it, and up
# to asin(2/3) in latitude (Gorski et al. 2005) — across the antimeridian.
BASE_CELL_6_BBOX = [135.0, -math.degrees(math.asin(2 / 3)), -135.0, math.degrees(math.asin(2 / 3))]


def _iso(seconds: float) -> str:
    return np.datetime64(int(seconds), "s").astype("datetime64[s]").item().strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def hierarchy_bucket(s3_server, storage, tmp_path_factory) -> str:
    import dask.array

    s3_server.create_bucket(BUCKET, public=True)
    folder = tmp_path_factory.mktemp("hierarchies")
    stores = {
        "ifs-ens.zarr": write_consolidated_store(IFS_ENS, folder / "ifs-ens.zarr", ifs_ens_coordinates()),
        "s2-geozarr.zarr": write_spec_store(
            S2_GEOZARR, S2_GEOZARR_SPEC, folder / "s2-geozarr.zarr", s2_geozarr_coordinates()
        ),
        "healpix-pyramid.zarr": write_healpix_pyramid(folder / "healpix-pyramid.zarr"),
        "healpix-zoom-groups.zarr": write_healpix_pyramid(folder / "healpix-zoom-groups.zarr", declared=False),
    }
    for name, path in stores.items():
        upload(path, f"s3://{BUCKET}/{name}", storage)
    # A Dask job's output, as `da.to_zarr` writes it: an array at the store's root.
    array = dask.array.random.random((1000, 1000), chunks=(500, 500))
    options = storage.for_fsspec(f"s3://{BUCKET}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array.to_zarr(f"s3://{BUCKET}/job-output.zarr", storage_options=options)
        array.to_zarr(f"s3://{BUCKET}/job-output-v2.zarr", storage_options=options, zarr_format=2)
        array.to_zarr(f"s3://{BUCKET}/outputs/run-1", storage_options=options, zarr_format=2)
    return f"s3://{BUCKET}"


@pytest.fixture(scope="module")
def hierarchy_crawl(hierarchy_bucket, storage):
    return crawl(hierarchy_bucket, storage)


def _item(result, name: str) -> dict:
    (item,) = [i for i in result.items if i.id == name]
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def _both_paths(result, storage, name: str) -> list[dict]:
    """The Item from the crawl (prefetched) and from `inspect` (lazy), which must be equal."""
    lazy = inspect_store(f"s3://{BUCKET}/{name}.zarr", storage)
    assert not isinstance(lazy, StoreFailure), lazy
    items = [_item(result, name), lazy.item.to_dict(include_self_link=False, transform_hrefs=False)]
    assert items[0] == items[1]
    return items


def _failure(result, url: str) -> StoreFailure:
    (failure,) = [f for f in result.failures if f.url == url]
    return failure


def test_what_becomes_an_item_and_what_fails(hierarchy_crawl):
    assert sorted(i.id for i in hierarchy_crawl.items) == ["healpix-pyramid", "healpix-zoom-groups", "ifs-ens"]
    assert {f.url.removeprefix(f"s3://{BUCKET}/"): f.kind for f in hierarchy_crawl.failures} == {
        "s2-geozarr.zarr": "no-time",
        "job-output.zarr": "no-coordinates",
        "job-output-v2.zarr": "no-coordinates",
        "outputs/run-1": "no-coordinates",
    }


# -- 1. hierarchies: one Item, every group's variables, an asset per data group ------------
def test_datatree_child_group_variables_are_named_by_their_path(hierarchy_crawl, storage):
    for item in _both_paths(hierarchy_crawl, storage, "ifs-ens"):
        props = item["properties"]
        # 1.5° longitudes meet all round the globe.
        assert item["bbox"] == [-180.0, float(IFS_LAT.min()), 180.0, float(IFS_LAT.max())]
        assert props["start_datetime"] == _iso(IFS_INIT)
        assert props["end_datetime"] == _iso(IFS_INIT + IFS_LEADS.max())
        temperature = props["cube:variables"]["pressure_level/temperature"]
        assert temperature["dimensions"] == [
            "init_time", "lead_time", "ensemble_member", "pressure_level/pressure_level", "latitude", "longitude"
        ]  # fmt: skip
        assert temperature["unit"] == "degree_Celsius" and temperature["shape"] == [1, 47, 101, 10, 121, 240]
        assert props["cube:variables"]["average_temperature_2m"]["dimensions"][-2:] == ["latitude", "longitude"]
        # The child repeats the root's coordinates (DataTree inheritance): one dimension each.
        assert sorted(props["cube:dimensions"]) == sorted(
            ["init_time", "lead_time", "ensemble_member", "latitude", "longitude", "pressure_level/pressure_level"]
        )
        level = props["cube:dimensions"]["pressure_level/pressure_level"]
        assert level["type"] == "spatial" and level["axis"] == "z" and level["unit"] == "hPa"
        assert level["extent"] == [int(IFS_LEVELS.min()), int(IFS_LEVELS.max())]
        assert "pressure_level/wind_u" in props["variables"] and "pressure_surface" in props["variables"]


def test_each_data_group_has_an_asset_that_opens_it(hierarchy_crawl, storage):
    for item in _both_paths(hierarchy_crawl, storage, "ifs-ens"):
        assert sorted(item["assets"]) == ["pressure_level", "zarr"]
        group = item["assets"]["pressure_level"]
        assert group["href"] == f"s3://{BUCKET}/ifs-ens.zarr/pressure_level"
        assert group["type"] == "application/vnd.zarr; version=3" and group["zarr:node_type"] == "group"
        assert group["xarray:open_kwargs"] == {"engine": "zarr", "consolidated": False, "chunks": {}}
        # The store's own asset opens the whole tree.
        assert "xr.open_datatree(" in item["properties"]["description"]
    # With the crawl's keys: moto answers 403 to the anonymous HEAD zarr sends for a group
    # without consolidated metadata, which S3 allows under the bucket's s3:GetObject.
    ds = xr.open_dataset(
        group["href"], **group["xarray:open_kwargs"], storage_options=storage.for_fsspec(group["href"])
    )
    assert "temperature" in ds.data_vars and ds.sizes["pressure_level"] == IFS_LEVELS.size


def test_items_are_valid_stac(hierarchy_crawl, tmp_path, validator):
    write_catalog(hierarchy_crawl.collections, hierarchy_crawl.items, str(tmp_path))
    for name in ("ifs-ens", "healpix-pyramid", "healpix-zoom-groups"):
        item = json.loads((tmp_path / BUCKET / name / f"{name}.json").read_text())
        assert validate_object(item, validator) is None


def test_a_hierarchy_without_any_time_fails_saying_so(hierarchy_crawl, storage):
    url = f"s3://{BUCKET}/s2-geozarr.zarr"
    for failure in (_failure(hierarchy_crawl, url), inspect_store(url, storage)):
        assert isinstance(failure, StoreFailure) and failure.kind == "no-time"
        groups = sum(1 for n in nodes_of_spec(document(S2_GEOZARR, S2_GEOZARR_SPEC)).values() if "shape" in n)
        assert groups and "any of its 22 groups" in failure.reason and "\n" not in failure.reason


# -- 3. multiscales --------------------------------------------------------------------------
def test_geozarr_multiscales_group_is_one_pyramid_of_its_declared_levels():
    spec = document(S2_GEOZARR, S2_GEOZARR_SPEC)
    nodes = nodes_of_spec(spec)
    attributes = {path: node["attributes"] for path, node in nodes.items() if node.get("node_type") == "group"}
    children = {}
    for path in attributes:
        children.setdefault(path.rpartition("/")[0], []).append(path)
    data = {
        group: frozenset(
            path.rpartition("/")[2]
            for path, node in nodes.items()
            if path.rpartition("/")[0] == group and node.get("node_type") != "group"
        )
        for group in attributes
    }
    (pyramid,) = find_pyramids(attributes, children, data)
    assert pyramid.path == "measurements/reflectance" and pyramid.declared
    resolutions = ("r10m", "r20m", "r60m", "r120m", "r360m", "r720m")
    assert pyramid.levels == tuple(f"measurements/reflectance/{r}" for r in resolutions)


@pytest.mark.parametrize(("name", "declared"), [("healpix-pyramid", True), ("healpix-zoom-groups", False)])
def test_healpix_pyramid_is_one_dataset_at_its_finest_level(hierarchy_crawl, storage, name, declared):
    finest = max(PYRAMID_LEVELS)
    for item in _both_paths(hierarchy_crawl, storage, name):
        props = item["properties"]
        # Sparse levels: the bbox of the cells present (base cell 6), across the antimeridian.
        assert item["bbox"] == pytest.approx(BASE_CELL_6_BBOX)
        assert item["geometry"]["type"] == "MultiPolygon"
        assert props["dggs:refinement_level"] == finest and props["healpix:nside"] == 2**finest
        assert props["start_datetime"] == str(PYRAMID_TIMES[0])[:19] + "Z"
        assert props["end_datetime"] == str(PYRAMID_TIMES[-1])[:19] + "Z"
        # The variables once, from the finest level; the coarser levels are listed, not repeated.
        assert list(props["cube:variables"]) == [f"{finest}/tas"]
        assert props["cube:dimensions"][f"{finest}/cell"]["extent"] == [6 * 4**finest, 7 * 4**finest - 1]
        asset = item["assets"]["zarr"]
        expected_type = "application/vnd.zarr; version=3" + ("; profile=multiscales" if declared else "")
        assert asset["type"] == expected_type
        assert asset["multiscales:levels"] == [
            {"group": str(zoom), "zoom": zoom, "cells": 4**zoom} for zoom in sorted(PYRAMID_LEVELS, reverse=True)
        ]


# -- 4. a bare array at the root --------------------------------------------------------------
@pytest.mark.parametrize("path", ["job-output.zarr", "job-output-v2.zarr", "outputs/run-1"])
def test_an_array_at_the_root_is_reported_as_one_that_cannot_be_placed(hierarchy_crawl, storage, path):
    url = f"s3://{BUCKET}/{path}"
    for failure in (_failure(hierarchy_crawl, url), inspect_store(url, storage)):
        assert isinstance(failure, StoreFailure) and failure.kind == "no-coordinates"
        assert "root is a single array (1000×1000, float64)" in failure.reason
        assert "cannot be placed" in failure.reason and "\n" not in failure.reason


def test_a_group_asset_href_is_public_where_the_store_is(hierarchy_bucket, storage):
    """With `public_href`, a group's asset follows the store's public URL, the crawled one its alternate."""
    rewrite = HrefRewrite(prefix=f"s3://{BUCKET}/", public="https://data.example.org/")
    source = SourceConfig(url=f"{hierarchy_bucket}/ifs-ens.zarr", storage=storage, public_href=rewrite)
    (item,) = crawl(MappingConfig(sources=[source])).items
    assets = item.to_dict(transform_hrefs=False)["assets"]
    assert assets["zarr"]["href"] == "https://data.example.org/ifs-ens.zarr"
    group = assets["pressure_level"]
    assert group["href"] == "https://data.example.org/ifs-ens.zarr/pressure_level"
    assert group["alternate"]["s3"]["href"] == f"s3://{BUCKET}/ifs-ens.zarr/pressure_level"


def test_a_store_of_too_many_groups_is_refused(tmp_path):
    root = tmp_path / "many.zarr"
    documents = {".zgroup": {"zarr_format": 2}, ".zattrs": {}}
    documents.update({f"g{i}/.zgroup": {"zarr_format": 2} for i in range(1000)})
    for key, value in documents.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(json.dumps(value))
    (root / ".zmetadata").write_text(json.dumps({"zarr_consolidated_format": 1, "metadata": documents}))
    for failure in (crawl(str(tmp_path)).failures[0], inspect_store(str(root), StorageOptions())):
        assert failure.kind == "too-large" and "more than the 1,000 groups one store may have" in failure.reason


def test_global_zoom_levels_cost_no_memory_for_their_cells(tmp_path):
    """Zoom levels 3..11 as a viewer keeps them, all global: 12·4^11 cells at the finest, known
    without an array of their ids (one would take 400 MB, and several times that to check)."""
    folder = write_healpix_zoom_levels(tmp_path / "zooms.zarr")
    script = (
        "import json, resource, sys, warnings; warnings.simplefilter('ignore');"
        "from zarr_stac.loaders.running.crawl import inspect_store;"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "item = inspect_store(sys.argv[1]).item.to_dict(transform_hrefs=False);"
        "grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024;"
        "print(json.dumps({'grown_mb': grown, 'bbox': item['bbox'], 'asset': item['assets']['zarr']}))"
    )
    found = json.loads(
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True, capture_output=True, text=True).stdout
    )
    assert found["bbox"] == [-180.0, -90.0, 180.0, 90.0]
    levels = found["asset"]["multiscales:levels"]
    assert [level["zoom"] for level in levels] == list(range(11, 2, -1))
    assert levels[0]["cells"] == 12 * 4**11 and found["asset"]["type"] == "application/vnd.zarr; version=2"
    assert found["grown_mb"] < 200, f"{found['grown_mb']:.0f} MB to catalogue it"


def test_the_time_of_other_groups_when_the_finest_grid_has_none(tmp_path):
    """A product whose measurement grid has no time (as EOPF's): the times found in its other
    groups, all of them, each described where it is."""
    grid = xr.Dataset(
        {"b04": (("lat", "lon"), np.zeros((30, 40), "u2"))},
        coords={
            "lat": ("lat", np.linspace(41.4, 42.4, 30), {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", np.linspace(11.4, 12.8, 40), {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )

    def times(first: str, count: int) -> xr.Dataset:
        values = np.datetime64(first, "ns") + np.arange(count) * np.timedelta64(10, "s")
        return xr.Dataset(
            {"roll": ("azimuth_time", np.zeros(count))},
            coords={"azimuth_time": ("azimuth_time", values, {"standard_name": "time"})},
        )

    tree = xr.DataTree.from_dict(
        {
            "/measurements/r10m": grid,
            "/conditions/attitude": times("2025-09-12T05:36:40", 25),
            "/conditions/orbit": times("2025-09-12T05:35:00", 16),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree.to_zarr(str(tmp_path / "product.zarr"), zarr_format=2, consolidated=True)
    crawled = crawl(str(tmp_path)).items[0].to_dict(transform_hrefs=False)
    inspected = inspect_store(str(tmp_path / "product.zarr")).item.to_dict(transform_hrefs=False)
    assert crawled == inspected
    props = crawled["properties"]
    assert crawled["bbox"] == pytest.approx([11.4, 41.4, 12.8, 42.4])
    assert props["start_datetime"] == "2025-09-12T05:35:00Z"  # the orbit's first
    assert props["end_datetime"] == "2025-09-12T05:40:40Z"  # the attitude's last
    dims = props["cube:dimensions"]
    assert dims["conditions/attitude/azimuth_time"]["extent"] == ["2025-09-12T05:36:40Z", "2025-09-12T05:40:40Z"]
    assert dims["conditions/orbit/azimuth_time"]["extent"] == ["2025-09-12T05:35:00Z", "2025-09-12T05:37:30Z"]
    assert props["cube:variables"]["conditions/orbit/roll"]["dimensions"] == ["conditions/orbit/azimuth_time"]
    assert props["cube:variables"]["measurements/r10m/b04"]["dimensions"] == [
        "measurements/r10m/lat",
        "measurements/r10m/lon",
    ]
    assert sorted(a for a in crawled["assets"]) == [
        "conditions/attitude",
        "conditions/orbit",
        "measurements/r10m",
        "zarr",
    ]


@pytest.mark.parametrize("case", ["ifs-ens", "healpix-pyramid"])
def test_the_fast_paths_give_the_reference_item(tmp_path, case):
    """Coordinates decoded once, axes found without cf_xarray: the same Item as the reference paths."""
    from .test_mapping_paths import reference_paths

    if case == "ifs-ens":
        store = write_consolidated_store(IFS_ENS, tmp_path / f"{case}.zarr", ifs_ens_coordinates())
    else:
        store = write_healpix_pyramid(tmp_path / f"{case}.zarr")
    fast = crawl(str(tmp_path)).items[0].to_dict(transform_hrefs=False)
    with reference_paths():
        reference = crawl(str(tmp_path)).items[0].to_dict(transform_hrefs=False)
        lazy = inspect_store(str(store)).item.to_dict(transform_hrefs=False)
    assert fast == reference == lazy
    assert {"ifs-ens": "pressure_level/temperature", "healpix-pyramid": "10/tas"}[case] in fast["properties"][
        "variables"
    ]
