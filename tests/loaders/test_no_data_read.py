"""Cataloguing reads metadata and coordinates only, never a data variable's chunks.

The stores sit behind a recording proxy; every request the crawl makes is listed
and checked against the keys of the data variables. Hierarchies and pyramids (real
metadata, tests/data/hierarchies) too: one metadata document, then the coordinate
chunks of every group.
"""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.proxy import FaultProxy
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.samples import write_dataset

from .hierarchies import (
    EOPF_S2,
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


# -- hierarchies, pyramids and GeoZarr products: one metadata document, then the coordinate chunks --
def data_arrays(folder: Path) -> set[str]:
    """The paths of a store's data arrays, from its documents as written, by CF's rule: an array
    of a group that is none of its group's dimensions and that no array of the group names as
    one of its `coordinates`, its `grid_mapping` or its `bounds`."""
    groups: dict[str, dict[str, tuple[list, dict]]] = {}
    for document in folder.rglob("*"):
        path = document.parent.relative_to(folder).as_posix()
        if document.name == "zarr.json" and path != ".":
            meta = json.loads(document.read_text())
            if meta.get("node_type") == "array":
                entry = (meta.get("dimension_names") or [], meta.get("attributes", {}))
                groups.setdefault(path.rpartition("/")[0], {})[path.rpartition("/")[2]] = entry
        elif document.name == ".zarray":
            attrs_file = document.parent / ".zattrs"
            attrs = json.loads(attrs_file.read_text()) if attrs_file.exists() else {}
            entry = (attrs.get("_ARRAY_DIMENSIONS", []), attrs)
            groups.setdefault(path.rpartition("/")[0], {})[path.rpartition("/")[2]] = entry
    data = set()
    for group, arrays in groups.items():
        named = {str(d) for dims, _ in arrays.values() for d in dims}
        for _, attrs in arrays.values():
            for key in ("coordinates", "grid_mapping", "bounds"):
                if isinstance(attrs.get(key), str):
                    named |= {word.rstrip(":") for word in attrs[key].split()}
        data |= {f"{group}/{name}".lstrip("/") for name in arrays if name not in named}
    return data


@pytest.fixture(scope="module")
def tree_bucket(s3_server, storage, tmp_path_factory):
    s3_server.create_bucket("trees", public=True)
    folder = tmp_path_factory.mktemp("trees")
    stores = {
        "ifs-ens.zarr": write_consolidated_store(IFS_ENS, folder / "ifs-ens.zarr", ifs_ens_coordinates()),
        "s2-geozarr.zarr": write_spec_store(
            S2_GEOZARR, S2_GEOZARR_SPEC, folder / "s2-geozarr.zarr", s2_geozarr_coordinates()
        ),
        "eopf-s2.zarr": write_spec_store(S2_GEOZARR, EOPF_S2, folder / "eopf-s2.zarr", s2_geozarr_coordinates(EOPF_S2)),
        "healpix-pyramid.zarr": write_healpix_pyramid(folder / "healpix-pyramid.zarr"),
    }
    objects, data = {}, {}
    for name, path in stores.items():
        upload(path, f"s3://trees/{name}", storage)
        objects[name] = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        data[name] = data_arrays(path)
    return "s3://trees", objects, data


def test_a_hierarchy_costs_one_metadata_request_plus_its_coordinate_chunks(tree_bucket, s3_server):
    """The stores hold only coordinate chunks (the tests write no other): each is read once,
    after the one consolidated document; no group's or array's own document is read, and no key
    of a data array is asked for, whether it exists or not. The other requests find nothing
    (the `.zmetadata` a v3 store is probed for, an absent coordinate chunk)."""
    url, objects, data = tree_bucket
    with FaultProxy(s3_server.endpoint_url) as proxy:
        result = crawl(url, StorageOptions(endpoint_url=proxy.url, anon=True))
        requests = list(proxy.requests)
    assert len(result.items) == 3 and [f.kind for f in result.failures] == ["no-time"]  # s2-geozarr: no time
    for store, stored in objects.items():
        chunks = {key for key in stored if key.rsplit("/", 1)[-1] not in METADATA_DOCUMENTS}
        gets = [r for r in requests if r.method == "GET" and f"/trees/{store}/" in r.path]
        keys = [r.path.split(f"/trees/{store}/", 1)[1] for r in gets]
        read = sorted(key for key, r in zip(keys, gets, strict=True) if r.status < 300)
        metadata = ".zmetadata" if ".zmetadata" in stored else "zarr.json"
        assert read == sorted({metadata, *chunks}), store
        assert all(r.status == 404 for r in gets if r.status >= 300), store
        assert len(keys) == len(set(keys)), f"{store}: a key asked for twice"
        assert len(chunks) >= 3 and len(data[store]) >= 3
        touched = [key for key in keys if any(key.startswith(f"{array}/") for array in data[store])]
        assert touched == [], f"{store}: data chunks asked for: {touched[:5]}"
