"""The STAC API over pgstac, used the way users use it: pystac-client and xarray."""

import httpx
import pystac
import pytest
import xarray as xr
from pystac_client import Client

from static_catalog.write import write_catalog


@pytest.fixture(scope="module")
def client(api_url) -> Client:
    return Client.open(api_url)


def test_landing_page_is_ours(api_url):
    landing = httpx.get(api_url).json()
    assert (landing["id"], landing["title"]) == ("zarr-stac", "zarr-stac")


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/search?limit=2", "application/geo+json"),
        ("/search?filter=variable_id%3D%27tas%27", "application/geo+json"),
        ("/collections/cmip6/items?limit=2", "application/geo+json"),
        ("/collections/cmip6/items/ModelA.ssp585.r1i1p1f1.tas.gn", "application/geo+json"),
        ("/collections", "application/json"),
        ("/collections/cmip6", "application/json"),
    ],
)
def test_each_answer_says_what_it_is(api_url, path, media_type):
    # Answers are sent as pgstac made them (no FastAPI re-encoding): with the media type of their route.
    response = httpx.get(api_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    body = response.json()
    assert body.get("type") in ("FeatureCollection", "Feature", "Collection") or "collections" in body


def test_collections(client, sample_crawl):
    assert sorted(c.id for c in client.get_collections()) == ["cmip6", "ocean", "reanalysis"]
    cmip6 = client.get_collection("cmip6")
    assert cmip6.extent.spatial.bboxes == [[-180.0, -87.5, 180.0, 87.5]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            dict(collections=["cmip6"], bbox=[-10, 40, 10, 50], datetime="2016-01-01/2017-01-01"),
            {
                "ModelA.ssp585.r1i1p1f1.pr.gn",
                "ModelA.ssp585.r1i1p1f1.tas.gn",
                "ModelB.ssp585.r1i1p1f1.pr.gn",
                "ModelB.ssp585.r1i1p1f1.tas.gn",
            },
            id="cmip6 scenario years",
        ),
        pytest.param(
            dict(bbox=[-70, 10, -60, 20], datetime="2021-06-05T00:00:00Z"),
            {"north-atlantic-sst"},
            id="a point in time in the Atlantic",
        ),
        pytest.param(
            dict(bbox=[100, 10, 110, 20], datetime="2000-01-10/2000-01-20"),
            {
                "era-like-daily",
                "ModelA.historical.r1i1p1f1.pr.gn",
                "ModelA.historical.r1i1p1f1.tas.gn",
                "ModelB.historical.r1i1p1f1.pr.gn",
                "ModelB.historical.r1i1p1f1.tas.gn",
            },
            id="global stores in Asia",
        ),
        pytest.param(dict(collections=["ocean"], bbox=[100, 10, 110, 20]), set(), id="nothing there"),
    ],
)
def test_search_returns_exactly_the_expected_items(client, query, expected):
    assert {item.id for item in client.search(**query).items()} == expected


def test_api_and_static_catalogue_agree_item_by_item(api_url, sample_crawl, tmp_path):
    write_catalog(sample_crawl.collections, sample_crawl.items, str(tmp_path))
    static = {
        item.id: item for item in pystac.Catalog.from_file(str(tmp_path / "catalog.json")).get_items(recursive=True)
    }
    served = {item.id: item for item in Client.open(api_url).search(max_items=None).items()}
    assert served.keys() == static.keys()
    for item_id, item in static.items():
        api_item = served[item_id]
        assert api_item.geometry == item.geometry, item_id
        assert api_item.bbox == item.bbox, item_id
        assert api_item.properties == item.properties, item_id
        assert api_item.collection_id == item.collection_id
        assert {k: a.to_dict() for k, a in api_item.assets.items()} == {
            k: a.to_dict() for k, a in item.assets.items()
        }, item_id


def test_an_asset_opens_with_xarray_and_reads_a_value(client):
    item = next(client.search(collections=["reanalysis"]).items())
    asset = item.assets["zarr"]
    ds = xr.open_dataset(
        asset.href,
        **asset.extra_fields["xarray:open_kwargs"],
        storage_options=asset.extra_fields["xarray:storage_options"],
    )
    value = float(ds["t2m"].isel(time=0, lat=36, lon=0).values)
    assert 290 < value < 310  # sample temperature at the equator
