"""Explicit inputs: URL lists, Pangeo-style CSV, kerchunk references, intake catalogues."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.loaders.finding.inputs import common_root, expand_input
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.loaders.vocabulary import InputError
from zarr_stac.samples import write_dataset

from .cases import antimeridian, descending_lat


@pytest.fixture(scope="module")
def inputs_bucket(s3_server, storage):
    """Two stores, two NetCDF files with a kerchunk reference over them."""
    s3_server.create_bucket("inputs", public=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), "s3://inputs/zarr/ModelX/ssp126/east.zarr", storage, public=True)
        write_dataset(descending_lat(), "s3://inputs/zarr/ModelY/ssp245/north.zarr", storage, public=True)
    fs = storage.filesystem("s3://inputs")
    months = []
    # Equal lengths: a combined reference needs one chunk shape.
    for month, (first, days) in enumerate((("2000-01-01", 29), ("2000-01-30", 29)), start=1):
        time = pd.date_range(first, periods=days, freq="D")
        ds = xr.Dataset(
            {
                "pr": (
                    ("time", "lat", "lon"),
                    np.full((days, 3, 4), month, dtype="f4"),
                    {"standard_name": "precipitation_flux", "units": "kg m-2 s-1"},
                )
            },
            coords={
                "time": ("time", time, {"standard_name": "time"}),
                "lat": ("lat", [10.0, 20.0, 30.0], {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": ("lon", [100.0, 110.0, 120.0, 130.0], {"standard_name": "longitude", "units": "degrees_east"}),
            },
        )
        ds.time.encoding.update(units="days since 2000-01-01", calendar="standard")
        url = f"s3://inputs/netcdf/pr_2000{month:02d}.nc"
        fs.pipe(url, bytes(ds.to_netcdf(engine="h5netcdf")), ACL="public-read")
        months.append(url)
    from kerchunk.combine import MultiZarrToZarr
    from kerchunk.hdf import SingleHdf5ToZarr

    options = storage.for_fsspec("s3://inputs")
    singles = []
    for url in months:
        with fs.open(url, "rb") as handle:
            singles.append(SingleHdf5ToZarr(handle, url).translate())
    combined = MultiZarrToZarr(singles, concat_dims=["time"], remote_protocol="s3", remote_options=options).translate()
    fs.pipe("s3://inputs/netcdf/pr_2000.json", json.dumps(combined).encode(), ACL="public-read")
    return "s3://inputs"


def only(result, item_id=None):
    assert result.failures == []
    items = result.items if item_id is None else [i for i in result.items if i.id == item_id]
    assert len(items) == 1
    return items[0]


def test_kerchunk_reference_is_a_virtual_store(inputs_bucket, storage):
    item = only(crawl(f"{inputs_bucket}/netcdf/pr_2000.json", storage))
    assert item.id == "pr_2000"
    assert item.bbox == [100.0, 10.0, 130.0, 30.0]
    assert (item.properties["start_datetime"], item.properties["end_datetime"]) == (
        "2000-01-01T00:00:00Z",
        "2000-02-27T00:00:00Z",
    )
    assert item.properties["cube:dimensions"]["time"]["step"] == "P1D"
    asset = item.assets["zarr"]
    assert (asset.href, asset.media_type, asset.roles) == (
        f"{inputs_bucket}/netcdf/pr_2000.json",
        "application/vnd.zarr+kerchunk",
        ["data", "virtual", "references"],
    )
    assert asset.extra_fields["xarray:open_kwargs"] == {"engine": "kerchunk", "chunks": {}}
    # What a user does with the published asset, anonymously:
    ds = xr.open_dataset(
        asset.href,
        **asset.extra_fields["xarray:open_kwargs"],
        storage_options=asset.extra_fields["xarray:storage_options"],
    )
    assert float(ds["pr"].sel(time="2000-02-10").isel(lat=0, lon=0)) == 2.0


def test_text_list(inputs_bucket, storage):
    fs = storage.filesystem(inputs_bucket)
    fs.pipe(
        f"{inputs_bucket}/lists/stores.txt",
        b"# two stores\ns3://inputs/zarr/ModelX/ssp126/east.zarr\n\ns3://inputs/zarr/ModelY/ssp245/north.zarr  "
        b"# trailing comment\n",
    )
    result = crawl(f"{inputs_bucket}/lists/stores.txt", storage)
    assert result.failures == []
    # Placed relative to the prefix the stores share (s3://inputs/zarr).
    assert sorted((i.collection_id, i.id) for i in result.items) == [
        ("ModelX", "ssp126.east"),
        ("ModelY", "ssp245.north"),
    ]


def test_csv_columns_become_properties(inputs_bucket, storage):
    fs = storage.filesystem(inputs_bucket)
    csv = (
        "activity_id,source_id,experiment_id,version,dcpp_init_year,zstore\n"
        "ScenarioMIP,ModelX,ssp126,20190308,,s3://inputs/zarr/ModelX/ssp126/east.zarr\n"
        "ScenarioMIP,ModelY,ssp245,20200101,2015.0,s3://inputs/zarr/ModelY/ssp245/north.zarr\n"
    )
    fs.pipe(f"{inputs_bucket}/lists/stores.csv", csv.encode())
    result = crawl(f"{inputs_bucket}/lists/stores.csv", storage)
    x = only(result, "ssp126.east")
    assert {k: x.properties[k] for k in ("activity_id", "source_id", "experiment_id", "version")} == {
        "activity_id": "ScenarioMIP",
        "source_id": "ModelX",
        "experiment_id": "ssp126",
        "version": 20190308,
    }
    assert "dcpp_init_year" not in x.properties  # empty cells are missing values
    assert only(result, "ssp245.north").properties["dcpp_init_year"] == 2015.0


def test_csv_without_zstore_is_reported_by_name(inputs_bucket, storage):
    fs = storage.filesystem(inputs_bucket)
    fs.pipe(f"{inputs_bucket}/lists/bad.csv", b"path,source_id\nx,y\n")
    result = crawl(f"{inputs_bucket}/lists/bad.csv", storage)
    assert [(f.kind, f.url) for f in result.failures] == [("input", "s3://inputs/lists/bad.csv")]
    assert "needs a 'zstore' column (found: path, source_id)" in result.failures[0].reason
    assert not result.complete


def test_intake_catalogue_imports_zarr_sources(inputs_bucket, storage):
    catalog = {
        "metadata": {"version": 1},
        "sources": {
            "east_ssp126": {
                "driver": "zarr",
                "description": "Model X, SSP1-2.6, east Pacific",
                "args": {"urlpath": "s3://inputs/zarr/ModelX/ssp126/east.zarr", "consolidated": True},
                "metadata": {"realm": "atmos", "frequency": "day", "nested": {"ignored": True}},
            },
            "north_ssp245": {
                "driver": "intake_xarray.xarray.XArraySource",
                "args": {"urlpath": "s3://inputs/zarr/ModelY/ssp245/north.zarr", "engine": "zarr"},
            },
            "some_netcdf": {"driver": "netcdf", "args": {"urlpath": "s3://inputs/netcdf/pr_200001.nc"}},
        },
    }
    import yaml

    storage.filesystem(inputs_bucket).pipe(f"{inputs_bucket}/lists/catalog.yaml", yaml.safe_dump(catalog).encode())
    result = crawl(f"{inputs_bucket}/lists/catalog.yaml", storage)
    # The netcdf source is not catalogued, and says so (issue 16: nothing dropped silently).
    assert [(f.url, f.kind) for f in result.failures] == [("s3://inputs/lists/catalog.yaml#some_netcdf", "not-zarr")]
    result.failures = []
    east = only(result, "east_ssp126")
    assert (east.properties["realm"], east.properties["frequency"]) == ("atmos", "day")
    # the intake description, then the lines of Python that open the store (issue 17)
    assert east.properties["description"].startswith("Model X, SSP1-2.6, east Pacific\n\nOpen it with xarray")
    assert "nested" not in east.properties
    assert sorted(i.id for i in result.items) == ["east_ssp126", "north_ssp245"]


@pytest.mark.parametrize(
    ("urls", "root"),
    [
        (["s3://b/a/x.zarr", "s3://b/a/y.zarr"], "s3://b/a"),
        (["s3://b/x.zarr"], "s3://b"),
        (["s3://b/x.zarr", "s3://c/y.zarr"], ""),
        (["/data/a/x.zarr", "/data/b/y.zarr"], "/data"),
    ],
)
def test_common_root(urls, root):
    assert common_root(urls) == root


def test_unknown_input_file_is_an_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("# nothing\n")
    with pytest.raises(InputError, match="lists no store URLs"):
        expand_input(str(path))


def test_several_sources_in_one_config(inputs_bucket, storage):
    config = MappingConfig(
        sources=[
            SourceConfig(url=f"{inputs_bucket}/zarr", storage=storage),
            SourceConfig(url=f"{inputs_bucket}/netcdf/pr_2000.json", storage=storage),
        ]
    )
    result = crawl(config)
    assert sorted((i.collection_id, i.id) for i in result.items) == [
        ("ModelX", "ssp126.east"),
        ("ModelY", "ssp245.north"),
        ("netcdf", "pr_2000"),
    ]


def test_a_public_https_store(tmp_path):
    """HTTP servers cannot list: the URL itself is the store."""
    from static_catalog.serve import serve_in_thread
    from zarr_stac.services import free_port

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), str(tmp_path / "public.zarr"))
    port = free_port()
    server = serve_in_thread(tmp_path, port=port, published_only=False)  # a store, not a catalogue
    try:
        url = f"http://127.0.0.1:{port}/public.zarr"
        item = only(crawl(url))
        assert item.bbox == [160.0, -10.0, -160.0, 10.0]
        assert item.assets["zarr"].href == url
        assert "xarray:storage_options" not in item.assets["zarr"].extra_fields
        ds = xr.open_dataset(url, **item.assets["zarr"].extra_fields["xarray:open_kwargs"])
        assert ds.sizes["lon"] == 21
    finally:
        server.shutdown()
        server.server_close()
