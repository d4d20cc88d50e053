"""Cataloguing reads metadata and coordinates only, never a data variable's chunks.

The stores sit behind a recording proxy; every request the crawl makes is listed
and checked against the keys of the data variables. Hierarchies and pyramids (real
metadata, tests/data/hierarchies) too: one metadata document, then the coordinate
chunks of every group.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.proxy import FaultProxy
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.samples import write_dataset

from .hierarchies import (
    IFS_ENS,
    S2_GEOZARR,
    S2_GEOZARR_SPEC,
    ifs_ens_coordinates,
    s2_geozarr_coordinates,
    upload,
    write_consolidated_store,
    write_healpix_pyramid,
    write_spec_store,
)

DATA_BYTES = 8_000_000  # per data variable; incompressible
METADATA_DOCUMENTS = (".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json")


def big_store() -> xr.Dataset:
    time = pd.date_range("2000-01-01", periods=32, freq="D")
    lat = np.linspace(-89.5, 89.5, 180)
    lon = np.linspace(0.5, 359.5, 360)
    rng = np.random.default_rng(0)
    shape = (time.size, lat.size, lon.size)
    ds = xr.Dataset(
        {name: (("time", "lat", "lon"), rng.random(shape, dtype="f4"), {"units": "1"}) for name in ("big_a", "big_b")},
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )
    for name in ("big_a", "big_b"):
        ds[name].encoding["chunks"] = (8, 180, 360)
    assert ds["big_a"].nbytes >= DATA_BYTES
    return ds


@pytest.fixture(scope="module")
def big_bucket(s3_server, storage):
    s3_server.create_bucket("big", public=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = big_store()
        write_dataset(ds, "s3://big/v2.zarr", storage, zarr_format=2, public=True)
        write_dataset(ds, "s3://big/v3.zarr", storage, zarr_format=3, public=True)
        write_dataset(ds, "s3://big/v2-unconsolidated.zarr", storage, zarr_format=2, consolidated=False, public=True)
    return "s3://big"


def test_only_metadata_and_coordinates_are_read(big_bucket, s3_server):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        result = crawl(big_bucket, StorageOptions(endpoint_url=proxy.url, anon=True))
        requests = list(proxy.requests)
    assert result.failures == [] and len(result.items) == 3
    chunk_of_data = re.compile(r"/big_[ab]/(c/)?\d")  # v2 "big_a/0.0.0", v3 "big_a/c/0/0/0"
    touched = [r.path for r in requests if r.method == "GET" and chunk_of_data.search(r.path)]
    assert touched == [], f"data chunks were read: {touched[:5]}"
    total = sum(r.response_bytes for r in requests)
    assert total < 100_000, f"{total} bytes read for 3 stores whose data variables hold {6 * DATA_BYTES}"


# -- hierarchies and pyramids: one metadata document, then the coordinate chunks of every group --
@pytest.fixture(scope="module")
def tree_bucket(s3_server, storage, tmp_path_factory):
    s3_server.create_bucket("trees", public=True)
    folder = tmp_path_factory.mktemp("trees")
    stores = {
        "ifs-ens.zarr": write_consolidated_store(IFS_ENS, folder / "ifs-ens.zarr", ifs_ens_coordinates()),
        "s2-geozarr.zarr": write_spec_store(
            S2_GEOZARR, S2_GEOZARR_SPEC, folder / "s2-geozarr.zarr", s2_geozarr_coordinates()
        ),
        "healpix-pyramid.zarr": write_healpix_pyramid(folder / "healpix-pyramid.zarr"),
    }
    objects = {}
    for name, path in stores.items():
        upload(path, f"s3://trees/{name}", storage)
        objects[name] = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    return "s3://trees", objects


def test_a_hierarchy_costs_one_metadata_request_plus_its_coordinate_chunks(tree_bucket, s3_server):
    """The stores hold no data chunk, only coordinate chunks (the tests write nothing else): each
    is read once, after the one consolidated document; no group's or array's own document is
    read. The other requests find nothing (a v3 store's `.zmetadata`, an all-fill chunk)."""
    url, objects = tree_bucket
    with FaultProxy(s3_server.endpoint_url) as proxy:
        result = crawl(url, StorageOptions(endpoint_url=proxy.url, anon=True))
        requests = list(proxy.requests)
    assert len(result.items) == 2 and [f.kind for f in result.failures] == ["no-time"]  # s2-geozarr: no time
    for store, stored in objects.items():
        chunks = {key for key in stored if key.rsplit("/", 1)[-1] not in METADATA_DOCUMENTS}
        gets = [r for r in requests if r.method == "GET" and f"/trees/{store}/" in r.path]
        read = sorted(r.path.split(f"/trees/{store}/", 1)[1] for r in gets if r.status < 300)
        assert read == sorted({"zarr.json", *chunks}), store
        assert all(r.status == 404 for r in gets if r.status >= 300), store
        assert len(chunks) >= 3
