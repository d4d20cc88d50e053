"""What deployments get wrong: links behind proxies, CORS for stac-browser, paging, write access."""

import datetime as dt

import httpx
import pystac
import pytest
from pystac_client import Client

from stac_api.loading.ingest import load
from stac_api.serving.settings import Settings

from ..conftest import serve_api

PUBLIC = "https://stac.example.org"


def all_hrefs(document: dict) -> list[str]:
    hrefs = [link["href"] for link in document.get("links", [])]
    for key in ("collections", "features"):
        for child in document.get(key, []):
            hrefs += [link["href"] for link in child.get("links", [])]
    return hrefs


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stac.example.org"},
        {"Forwarded": "proto=https;host=stac.example.org"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stac.example.org", "X-Forwarded-Port": "443"},
    ],
    ids=["x-forwarded", "forwarded", "x-forwarded-port"],
)
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/collections",
        "/collections/cmip6",
        "/collections/cmip6/items?limit=2",
        "/search?limit=2",
        "/collections/cmip6/items/ModelA.historical.r1i1p1f1.tas.gn",
    ],
)
def test_links_carry_the_public_url_behind_a_proxy(api_url, headers, path):
    document = httpx.get(f"{api_url}{path}", headers=headers).json()
    hrefs = [h for h in all_hrefs(document) if h.startswith("http")]
    assert hrefs and all(h.startswith(PUBLIC + "/") for h in hrefs), hrefs


def test_links_carry_a_non_default_forwarded_port(api_url):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stac.example.org", "X-Forwarded-Port": "8443"}
    for path in ("/", "/collections", "/search?limit=2"):
        hrefs = [h for h in all_hrefs(httpx.get(f"{api_url}{path}", headers=headers).json()) if h.startswith("http")]
        assert hrefs and all(h.startswith("https://stac.example.org:8443/") for h in hrefs), hrefs


def test_links_carry_the_root_path(loaded_dsn):
    # Behind a proxy that serves the API under /stac/ and strips the prefix.
    with serve_api(loaded_dsn, root_path="/stac") as live:
        for path in ("/", "/collections", "/collections/cmip6/items?limit=2", "/search?limit=2"):
            document = httpx.get(
                f"{live.url}{path}", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stac.example.org"}
            ).json()
            hrefs = [h for h in all_hrefs(document) if h.startswith("http")]
            assert hrefs and all(h.startswith(f"{PUBLIC}/stac/") or h == f"{PUBLIC}/stac" for h in hrefs), hrefs


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cors_preflight_for_stac_browser(api_url, method):
    response = httpx.options(
        f"{api_url}/search",
        headers={
            "Origin": "https://radiantearth.github.io",
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://radiantearth.github.io")
    assert method in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


def test_conformance_matches_what_is_enabled(api_url):
    conforms = set(httpx.get(f"{api_url}/conformance").json()["conformsTo"])
    for expected in (
        "https://api.stacspec.org/v1.0.0/core",
        "https://api.stacspec.org/v1.0.0/item-search",
        "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
        "https://api.stacspec.org/v1.1.0/item-search#sort",
        "https://api.stacspec.org/v1.0.0/item-search#fields",
        "https://api.stacspec.org/v1.0.0/ogcapi-features",
        "https://api.stacspec.org/v1.0.0-rc.1/collection-search",
        "https://api.stacspec.org/v1.0.0-rc.1/collection-search#free-text",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    ):
        assert expected in conforms, expected
    assert not any("transaction" in c for c in conforms), "transactions are off by default"


# -- paging ----------------------------------------------------------------------------------
def many_items(n: int, collection_id: str = "many"):
    extent = pystac.Extent(
        pystac.SpatialExtent([[0.0, 0.0, 10.0, 10.0]]),
        pystac.TemporalExtent([[dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), None]]),
    )
    collection = pystac.Collection(collection_id, "Many items", extent, license="CC0-1.0", title="Many")
    items = [
        pystac.Item(
            f"i{i:04d}",
            {"type": "Point", "coordinates": [i % 10, i % 10]},
            [i % 10, i % 10, i % 10, i % 10],
            dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i),
            {"n": i},
            collection=collection_id,
        )
        for i in range(n)
    ]
    return collection, items


@pytest.fixture(scope="module")
def paged_api(pg_cluster):
    dsn = pg_cluster.copy_database("paging")
    collection, items = many_items(250)
    load(dsn, [collection], items)
    with serve_api(dsn) as live:
        yield live.url


@pytest.mark.parametrize("how", ["items", "search-get", "search-post"])
def test_paging_250_items_by_10_returns_each_once(paged_api, how):
    client = Client.open(paged_api)
    if how == "items":
        pages = client.get_collection("many").get_items()  # follows next links of /collections/many/items
        ids = [item.id for item in pages]
    else:
        search = client.search(collections=["many"], limit=10, method="GET" if how == "search-get" else "POST")
        ids = [item.id for page in search.pages() for item in page.items]
    assert len(ids) == 250 and len(set(ids)) == 250


@pytest.fixture(scope="module")
def many_collections_api(pg_cluster):
    dsn = pg_cluster.copy_database("many_collections")
    collections = []
    for n in range(25):
        collection, _ = many_items(0, f"coll-{n:02d}")
        collection.title = f"Collection {n}"
        collections.append(collection)
    load(dsn, collections, [])
    with serve_api(dsn) as live:
        yield live.url


@pytest.mark.parametrize("params", [{}, {"q": "Collection"}], ids=["collections", "collection-search"])
def test_collections_pages_follow_next_links_to_every_collection_once(many_collections_api, params):
    url, seen, pages = f"{many_collections_api}/collections", [], 0
    query = {"limit": 10, **params}
    while url:
        page = httpx.get(url, params=query).json()
        query = None  # the next link carries the query
        seen += [c["id"] for c in page["collections"]]
        pages += 1
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert pages == 3 and sorted(seen) == [f"coll-{n:02d}" for n in range(25)]


def test_items_pages_have_next_links(paged_api):
    page = httpx.get(f"{paged_api}/collections/many/items", params={"limit": 10}).json()
    assert len(page["features"]) == 10
    assert [link["rel"] for link in page["links"] if link["rel"] == "next"] == ["next"]
    item = page["features"][0]
    assert {link["rel"] for link in item["links"]} >= {"self", "parent", "collection", "root"}


# -- transactions ----------------------------------------------------------------------------
TOKEN = "s3cr3t-token-for-tests"


@pytest.fixture(scope="module")
def writable_api(pg_cluster):
    dsn = pg_cluster.copy_database("writable")
    collection, _ = many_items(0, "writable")
    load(dsn, [collection], [])
    with serve_api(dsn, enable_transactions_extensions=True, transactions_token=TOKEN) as live:
        yield live.url


def new_item(item_id: str) -> dict:
    _, items = many_items(1, "writable")
    data = items[0].to_dict(include_self_link=False)
    data["id"] = item_id
    return data


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"],
    ids=["none", "wrong", "not-bearer", "empty", "longer"],
)
def test_writes_without_the_token_are_refused(writable_api, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{writable_api}/collections/writable/items", json=new_item("refused"), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.delete(f"{writable_api}/collections/writable", headers=headers).status_code == 401
    assert httpx.get(f"{writable_api}/collections/writable/items/refused").status_code == 404


def test_writes_with_the_token_are_accepted(writable_api):
    response = httpx.post(
        f"{writable_api}/collections/writable/items",
        json=new_item("accepted"),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 201, response.text
    assert httpx.get(f"{writable_api}/collections/writable/items/accepted").status_code == 200
    # Reading and searching stay open.
    assert httpx.post(f"{writable_api}/search", json={"collections": ["writable"]}).status_code == 200


def test_transactions_cannot_be_enabled_without_a_token():
    with pytest.raises(ValueError, match="TRANSACTIONS_TOKEN is not set"):
        Settings(database_url="postgresql://u:p@localhost/db", enable_transactions_extensions=True)
