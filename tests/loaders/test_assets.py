"""The access fields of an asset, per object store and configuration (issue 17).

The storage schemes come from the public options alone, as `xarray:storage_options`
do: an endpoint or region used only to crawl, and keys, never reach them. (Clients
opening real stores are in tests/test_clients.py.)
"""

from __future__ import annotations

import warnings

import pytest
import xarray as xr
from pydantic import SecretStr

from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import ConfigError, HrefRewrite, SourceConfig, load_config
from zarr_stac.loaders.mapping.assets import AWS_S3_PLATFORM, storage_scheme, storage_schemes_of
from zarr_stac.loaders.mapping.item import store_to_item
from zarr_stac.loaders.reading.open import open_store
from zarr_stac.loaders.vocabulary import StoreRef
from zarr_stac.samples import era_like_daily, write_dataset


@pytest.mark.parametrize(
    ("href", "options", "expected"),
    [
        (
            "s3://era5-pds/2020",
            {"anon": True},
            ("aws-s3-era5-pds", {"type": "aws-s3", "platform": AWS_S3_PLATFORM, "bucket": "era5-pds"}),
        ),
        (
            "s3://noaa-gfs/x.zarr",
            {"anon": True, "client_kwargs": {"region_name": "us-east-1"}},
            (
                "aws-s3-noaa-gfs",
                {"type": "aws-s3", "platform": AWS_S3_PLATFORM, "bucket": "noaa-gfs", "region": "us-east-1"},
            ),
        ),
        (
            "s3://cmip6/tas.zarr",
            {"anon": True, "endpoint_url": "https://swift.example.org:8080/"},
            (
                "custom-s3-swift.example.org:8080-cmip6",
                {"type": "custom-s3", "platform": "https://swift.example.org:8080", "bucket": "cmip6"},
            ),
        ),
        (
            "s3://b/x.zarr",
            {"client_kwargs": {"endpoint_url": "http://minio:9000", "region_name": "eu-1"}},
            (
                "custom-s3-minio:9000-b",
                {"type": "custom-s3", "platform": "http://minio:9000", "bucket": "b", "region": "eu-1"},
            ),
        ),
        (
            "gs://cmip6/CMIP6/x.zarr",
            {"token": "anon"},
            ("gcs-cmip6", {"type": "gcs", "platform": "https://storage.googleapis.com", "bucket": "cmip6"}),
        ),
        ("https://objects.example.org/a.zarr", {}, None),
        ("/data/a.zarr", {}, None),
    ],
)
def test_storage_scheme_of_each_object_store(href, options, expected):
    assert storage_scheme(href, options) == expected


def test_schemes_use_public_options_only():
    crawl = StorageOptions(
        endpoint_url="http://10.0.0.5:7480", region="internal-1", key=SecretStr("AKIAKEY"), secret=SecretStr("s3cr3t")
    )
    # Crawled through an internal endpoint; readers use the public one.
    source = SourceConfig(
        url="s3://b", storage=crawl, public_storage_options={"anon": True, "endpoint_url": "https://s3.example.org"}
    )
    assert storage_schemes_of(source, ["s3://b/x.zarr"]) == {
        "custom-s3-s3.example.org-b": {"type": "custom-s3", "platform": "https://s3.example.org", "bucket": "b"}
    }
    # Public options that name no endpoint mean AWS, whatever was crawled.
    source = SourceConfig(url="s3://b", storage=crawl, public_storage_options={"anon": True})
    assert storage_schemes_of(source, ["s3://b/x.zarr"]) == {
        "aws-s3-b": {"type": "aws-s3", "platform": AWS_S3_PLATFORM, "bucket": "b"}
    }
    # Derived from the storage options: endpoint and region are public, keys never.
    source = SourceConfig(url="s3://b", storage=crawl)
    text = repr(storage_schemes_of(source, ["s3://b/x.zarr"]))
    assert "10.0.0.5:7480" in text and "internal-1" in text
    assert "AKIAKEY" not in text and "s3cr3t" not in text


@pytest.fixture(scope="module")
def era_store(s3_server, storage):
    s3_server.create_bucket("assets", public=True)
    url = "s3://assets/era.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(era_like_daily(), url, storage, zarr_format=3, public=True)
    return url


def item_for(url: str, source: SourceConfig, **properties):
    opened = open_store(StoreRef(url=url), source.storage)
    try:
        return store_to_item(opened, item_id="era", collection_id="c", source=source, properties=properties)
    finally:
        opened.dataset.close()


def test_public_href_keeps_the_crawled_url_as_an_alternate_with_its_scheme(era_store, storage, s3_server):
    public = f"{s3_server.endpoint_url}/assets/"
    source = SourceConfig(
        url="s3://assets", storage=storage, public_href=HrefRewrite(prefix="s3://assets/", public=public)
    )
    item = item_for(era_store, source).to_dict()
    asset = item["assets"]["zarr"]
    key = f"custom-s3-{s3_server.endpoint_url.removeprefix('http://')}-assets"
    assert asset["href"] == f"{public}era.zarr" and "storage:refs" not in asset  # plain HTTP(S): no scheme
    assert asset["alternate"]["s3"]["storage:refs"] == [key]
    assert item["properties"]["storage:schemes"] == {
        key: {"type": "custom-s3", "platform": s3_server.endpoint_url, "bucket": "assets"}
    }
    assert [link["href"] for link in item["links"] if link["rel"] == "store"] == [f"{public}era.zarr"]
    assert asset["type"] == "application/vnd.zarr; version=3"
    # HTTPS readers need no options at all
    ds = xr.open_dataset(asset["href"], **asset["xarray:open_kwargs"])
    assert ds.sizes["time"] == 31


def test_descriptions_default_off_and_templated(era_store, storage, tmp_path):
    default = item_for(era_store, SourceConfig(url="s3://assets", storage=storage))
    assert default.properties["description"].startswith("ERA-like daily 2 m temperature: a Zarr store.")
    assert "storage_options={'anon': True, 'endpoint_url': " in default.properties["description"]
    # A description the store came with (intake, CSV) is kept, the recipe after it.
    described = item_for(
        era_store, SourceConfig(url="s3://assets", storage=storage), description="From the intake catalogue."
    )
    assert described.properties["description"].startswith("From the intake catalogue.\n\nOpen it with xarray")
    off = item_for(era_store, SourceConfig(url="s3://assets", storage=storage, item_description=False))
    assert "description" not in off.properties
    templated = SourceConfig(
        url="s3://assets",
        storage=storage,
        path_template="{name}.zarr",
        item_description="{name} ({id}) at {href}:\n\n{python}",
    )
    item = item_for(era_store, templated, name="era")
    assert item.properties["description"].startswith(
        "era (era) at s3://assets/era.zarr:\n\n```python\nimport xarray as xr\n"
    )

    config = tmp_path / "mapping.yaml"
    config.write_text("sources:\n  - url: s3://b\n    item_description: 'see {nowhere}'\n")
    with pytest.raises(
        ConfigError,
        match=r"item_description uses \{nowhere\}, which path_template does not define "
        r"\(defined: href, id, kind, python, title\)",
    ):
        load_config(config)
