"""Stores that cannot be catalogued are reported by kind and never stop the others."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.proxy import FaultProxy, FaultRules
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.samples import write_dataset

from .cases import antimeridian

BUCKET = "broken"
PRIVATE_BUCKET = "broken-private"


def _no_coordinates() -> xr.Dataset:
    return xr.Dataset(
        {"v": (("time", "a", "b"), np.zeros((2, 3, 4), "f4"))},
        coords={"time": ("time", pd.date_range("2000-01-01", periods=2), {"standard_name": "time"})},
    )


def _no_time() -> xr.Dataset:
    return antimeridian().isel(time=0, drop=True)


def _undecodable_time() -> xr.Dataset:
    ds = antimeridian().drop_vars("time")
    ds["time"] = ("time", np.arange(3.0), {"units": "days since 2000-13-45", "standard_name": "time"})
    return ds


@pytest.fixture(scope="module")
def broken_bucket(s3_server, storage):
    s3_server.create_bucket(BUCKET, public=True)
    s3_server.create_bucket(PRIVATE_BUCKET)
    fs = storage.filesystem(f"s3://{BUCKET}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), f"s3://{BUCKET}/good.zarr", storage, public=True)
        write_dataset(antimeridian(), f"s3://{BUCKET}/slow.zarr", storage, public=True)
        write_dataset(_no_coordinates(), f"s3://{BUCKET}/no-coordinates.zarr", storage, public=True)
        write_dataset(_no_time(), f"s3://{BUCKET}/no-time.zarr", storage, public=True)
        write_dataset(_undecodable_time(), f"s3://{BUCKET}/undecodable-time.zarr", storage, public=True)
        # In a bucket without a public policy: anonymous readers are refused.
        write_dataset(antimeridian(), f"s3://{PRIVATE_BUCKET}/private.zarr", storage, public=False)
        write_dataset(antimeridian(), f"s3://{BUCKET}/unknown-codec.zarr", storage, public=True)
    metadata = json.loads(fs.cat(f"{BUCKET}/unknown-codec.zarr/.zmetadata"))
    # On a coordinate: a codec only data variables use no longer blocks a store (test_real_stores).
    metadata["metadata"]["lat/.zarray"]["compressor"] = {"id": "no-such-codec"}
    fs.pipe(f"{BUCKET}/unknown-codec.zarr/.zmetadata", json.dumps(metadata).encode(), ACL="public-read")
    fs.pipe(f"{BUCKET}/corrupt.zarr/.zgroup", b'{"zarr_format": 2', ACL="public-read")
    fs.pipe(f"{BUCKET}/lists/private.txt", f"s3://{PRIVATE_BUCKET}/private.zarr\n".encode(), ACL="public-read")
    fs.pipe(f"{BUCKET}/corrupt.zarr/.zmetadata", b"{not json at all", ACL="public-read")
    return f"s3://{BUCKET}"


EXPECTED_KINDS = {
    "s3://broken/corrupt.zarr": "corrupt-metadata",
    "s3://broken/no-coordinates.zarr": "no-coordinates",
    "s3://broken/no-time.zarr": "no-time",
    "s3://broken/undecodable-time.zarr": "undecodable-time",
    "s3://broken-private/private.zarr": "access-denied",
    "s3://broken/unknown-codec.zarr": "unknown-codec",
    "s3://broken/slow.zarr": "timeout",
}


@pytest.fixture(scope="module")
def broken_crawl(broken_bucket, s3_server):
    # Read anonymously, through a proxy on which every request for slow.zarr hangs.
    rules = FaultRules(hang=re.compile(r"^/broken/slow\.zarr/"))
    with FaultProxy(s3_server.endpoint_url, rules) as proxy:
        storage = StorageOptions(
            endpoint_url=proxy.url, anon=True, timeout=2.0, retries=0
        )  # the hang never answers; 2 s leaves the others room on a busy machine
        # The private store comes from an explicit list: listing its bucket is refused too.
        sources = [
            SourceConfig(url=broken_bucket, storage=storage),
            SourceConfig(url=f"{broken_bucket}/lists/private.txt", storage=storage),
        ]
        return crawl(MappingConfig(sources=sources))


def test_each_failure_is_reported_by_kind(broken_crawl):
    assert {f.url: f.kind for f in broken_crawl.failures} == EXPECTED_KINDS


def test_other_stores_are_still_catalogued(broken_crawl):
    assert [item.id for item in broken_crawl.items] == ["good"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("s3://broken/corrupt.zarr", "JSONDecodeError"),
        ("s3://broken/no-coordinates.zarr", "no longitude/latitude"),
        ("s3://broken/undecodable-time.zarr", "days since 2000-13-45"),
        ("s3://broken/unknown-codec.zarr", "no-such-codec"),
    ],
)
def test_reasons_are_one_line_and_say_why(broken_crawl, url, words):
    (failure,) = [f for f in broken_crawl.failures if f.url == url]
    assert words in failure.reason and "\n" not in failure.reason
