"""Crawling the sample bucket on a real S3 server: what each store becomes."""

import json

import pytest

from zarr_stac.loaders.finding.prefixes import discover_stores
from zarr_stac.samples import CMIP6_EXPERIMENTS, CMIP6_SOURCES, CMIP6_VARIABLES

EXPECTED_STORES = {
    "s3://samples/reanalysis/era-like-daily.zarr",
    "s3://samples/ocean/north-atlantic-sst.zarr",
    *(
        f"s3://samples/cmip6/{s}/{e}/r1i1p1f1/{v}/gn.zarr"
        for s in CMIP6_SOURCES
        for e in CMIP6_EXPERIMENTS
        for v in CMIP6_VARIABLES
    ),
}


def test_discovery_finds_every_store_and_nothing_else(sample_bucket, storage):
    assert {ref.url for ref in discover_stores(sample_bucket, storage)} == EXPECTED_STORES


def test_stores_not_named_zarr_are_recognised_by_their_metadata(empty_bucket, storage):
    import warnings

    from zarr_stac.samples import era_like_daily, write_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(era_like_daily(), f"{empty_bucket}/a/v20190101", storage, zarr_format=2, consolidated=True)
        write_dataset(era_like_daily(), f"{empty_bucket}/b/v20200101", storage, zarr_format=2, consolidated=False)
        write_dataset(era_like_daily(), f"{empty_bucket}/c/v20210101", storage, zarr_format=3)
    found = {ref.url: (ref.zarr_format, ref.consolidated) for ref in discover_stores(empty_bucket, storage)}
    assert found == {
        f"{empty_bucket}/a/v20190101": (2, True),
        f"{empty_bucket}/b/v20200101": (2, False),
        f"{empty_bucket}/c/v20210101": (3, None),  # v3 keeps consolidated metadata inside zarr.json
    }


def test_one_collection_per_top_level_prefix(sample_crawl):
    assert sample_crawl.failures == []
    assert sample_crawl.complete
    assert {c.id: len(sample_crawl.items_of(c.id)) for c in sample_crawl.collections} == {
        "cmip6": 8,
        "ocean": 1,
        "reanalysis": 1,
    }


def item(crawl, item_id):
    (found,) = [i for i in crawl.items if i.id == item_id]
    return found


def test_global_0_360_daily_store(sample_crawl):
    era = item(sample_crawl, "era-like-daily")
    assert era.collection_id == "reanalysis"
    assert era.bbox == [-180.0, -90.0, 180.0, 90.0]
    assert era.properties["start_datetime"] == "2000-01-01T00:00:00Z"
    assert era.properties["end_datetime"] == "2000-02-01T00:00:00Z"  # widened by time_bnds
    dims = era.properties["cube:dimensions"]
    assert dims["time"] == {
        "type": "temporal",
        "extent": ["2000-01-01T00:00:00Z", "2000-02-01T00:00:00Z"],
        "step": "P1D",
        "description": "time",
    }
    assert dims["lon"]["extent"] == [0.0, 357.5] and dims["lon"]["axis"] == "x"
    assert dims["lat"]["extent"] == [-90.0, 90.0] and dims["lat"]["step"] == -2.5
    t2m = era.properties["cube:variables"]["t2m"]
    assert t2m == {
        "type": "data",
        "description": "2 metre temperature",
        "long_name": "2 metre temperature",
        "standard_name": "air_temperature",
        "dimensions": ["time", "lat", "lon"],
        "unit": "K",
        "shape": [31, 73, 144],
        "chunks": [31, 37, 72],
        "data_type": "float32",
        "nodata": "nan",
        "codecs": ["blosc"],  # what a reader must have installed
    }
    assert era.properties["cube:variables"]["time_bnds"]["type"] == "auxiliary"


@pytest.mark.parametrize("source", sorted(CMIP6_SOURCES))
def test_cmip6_like_monthly_stores(sample_crawl, source):
    tas = item(sample_crawl, f"{source}.historical.r1i1p1f1.tas.gn")
    assert tas.collection_id == "cmip6"
    assert tas.bbox == [-180.0, -87.5, 180.0, 87.5]
    assert tas.properties["start_datetime"] == "2000-01-16T12:00:00Z"
    assert tas.properties["end_datetime"] == "2014-12-16T12:00:00Z"
    assert tas.properties["cube:dimensions"]["time"]["step"] == "P1M"
    assert tas.properties["cube:variables"]["tas"]["nodata"] == pytest.approx(1e20)
    assert tas.properties["cube:variables"]["tas"]["cell_methods"] == "time: mean"


def test_zarr_v3_regional_store_with_depth(sample_crawl, s3_server):
    sst = item(sample_crawl, "north-atlantic-sst")
    assert sst.bbox == [-80.0, 0.0, 0.0, 60.0]
    assert sst.geometry == {
        "type": "Polygon",
        "coordinates": [[[-80.0, 0.0], [0.0, 0.0], [0.0, 60.0], [-80.0, 60.0], [-80.0, 0.0]]],
    }
    assert sst.properties["cube:dimensions"]["depth"] == {
        "type": "spatial",
        "axis": "z",
        "extent": [0.5, 50.0],
        "unit": "m",
        "description": "depth",
    }
    asset = sst.assets["zarr"]
    assert asset.extra_fields["xarray:open_kwargs"] == {"engine": "zarr", "consolidated": True, "chunks": {}}


def test_assets_open_with_public_options_only(sample_crawl, s3_server):
    for found in sample_crawl.items:
        asset = found.assets["zarr"]
        # the sample ocean store is written as Zarr v3, every other one as v2 (zarr_stac/samples.py)
        version = 3 if found.id == "north-atlantic-sst" else 2
        assert asset.media_type == f"application/vnd.zarr; version={version}"
        assert asset.extra_fields["zarr:zarr_format"] == version
        assert asset.roles == ["data", "zarr"]
        assert asset.href.startswith("s3://samples/") and asset.href.endswith(".zarr")
        assert asset.extra_fields["xarray:storage_options"] == {"anon": True, "endpoint_url": s3_server.endpoint_url}
        text = json.dumps(found.to_dict())
        assert "zarr-stac-local" not in text, "a crawl credential leaked into the Item"


def test_discovery_never_descends_into_a_store(empty_bucket, storage, s3_server):
    import warnings
    from urllib.parse import unquote

    from tests.proxy import FaultProxy, FaultRules
    from zarr_stac.samples import era_like_daily, write_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(era_like_daily(), f"{empty_bucket}/outer.zarr", storage, zarr_format=2, consolidated=True)
        # A group (here a whole dataset) inside the store: part of it, not a store of its own.
        write_dataset(era_like_daily(), f"{empty_bucket}/outer.zarr/inner", storage, zarr_format=2, consolidated=True)
    with FaultProxy(s3_server.endpoint_url, FaultRules()) as proxy:
        found = [
            ref.url for ref in discover_stores(empty_bucket, storage.model_copy(update={"endpoint_url": proxy.url}))
        ]
    assert found == [f"{empty_bucket}/outer.zarr"]
    listed = [unquote(r.path) for r in proxy.requests if "list-type" in r.path or "prefix=" in r.path]
    assert listed and not [path for path in listed if "prefix=outer.zarr/" in path], listed
