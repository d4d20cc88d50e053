"""Searching the API as users do: CQL2 filters, queryables, collection search, fields."""

import httpx
import psycopg
import pytest
from pystac_client import Client

CMIP6_SSP585_TAS = {"ModelA.ssp585.r1i1p1f1.tas.gn", "ModelB.ssp585.r1i1p1f1.tas.gn"}


@pytest.fixture(scope="module")
def client(api_url) -> Client:
    return Client.open(api_url)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cql2_text_filter_on_path_template_properties(client, method):
    # As users write it; pystac-client sends text by GET and converts it to JSON for POST.
    search = client.search(filter="variable_id = 'tas' AND experiment_id = 'ssp585'", method=method)
    assert {item.id for item in search.items()} == CMIP6_SSP585_TAS


def test_cql2_json_filter_by_post(api_url):
    body = {
        "filter-lang": "cql2-json",
        "filter": {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "variable_id"}, "tas"]},
                {"op": "=", "args": [{"property": "experiment_id"}, "ssp585"]},
            ],
        },
        "collections": ["cmip6"],
    }
    response = httpx.post(f"{api_url}/search", json=body)
    assert response.status_code == 200, response.text
    assert {f["id"] for f in response.json()["features"]} == CMIP6_SSP585_TAS


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_query_extension_on_path_template_properties(client, method):
    # The older `query` extension, which pystac-client still offers.
    search = client.search(query={"variable_id": {"eq": "tas"}, "experiment_id": {"eq": "ssp585"}}, method=method)
    assert {item.id for item in search.items()} == CMIP6_SSP585_TAS
    assert any(c.endswith("item-search#query") for c in client.get_conforms_to())


def test_filter_combined_with_bbox_and_datetime(client):
    search = client.search(bbox=[-10, 40, 10, 50], datetime="2000-01-01/2005-01-01", filter="source_id = 'ModelB'")
    assert {item.id for item in search.items()} == {
        "ModelB.historical.r1i1p1f1.pr.gn",
        "ModelB.historical.r1i1p1f1.tas.gn",
    }


def test_array_property_of_variables(client):
    search = client.search(filter="a_contains(variables, ('thetao'))")
    assert {item.id for item in search.items()} == {"north-atlantic-sst"}


def test_queryables_list_the_facets_with_their_values(api_url):
    queryables = httpx.get(f"{api_url}/collections/cmip6/queryables").json()
    properties = queryables["properties"]
    assert properties["variable_id"]["enum"] == ["pr", "tas"]
    assert properties["experiment_id"]["enum"] == ["historical", "ssp585"]
    assert properties["source_id"]["type"] == "string"
    assert properties["variables"]["type"] == "array"


def test_facets_are_indexed_and_summarised(loaded_dsn, client):
    with psycopg.connect(loaded_dsn) as conn:
        indexes = [
            row[0]
            for row in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'pgstac' "
                "AND tablename LIKE '\\_items\\_%' AND indexdef LIKE '%variable_id%'"
            )
        ]
        # The builds were queued, then run in parallel: none is left, none failed.
        left = conn.execute("SELECT count(*) FROM pgstac.query_queue").fetchone()[0]
        failed = conn.execute("SELECT count(*) FROM pgstac.query_queue_history WHERE error IS NOT NULL").fetchone()[0]
    assert indexes, "no property index on variable_id"
    assert (left, failed) == (0, 0)
    summaries = client.get_collection("cmip6").summaries.to_dict()
    assert summaries["variable_id"] == ["pr", "tas"] and summaries["source_id"] == ["ModelA", "ModelB"]


def test_collection_search_by_free_text(api_url):
    found = httpx.get(f"{api_url}/collections", params={"q": "monthly"}).json()["collections"]
    assert [c["id"] for c in found] == ["cmip6"]
    assert found[0]["title"] == "CMIP6-like monthly means"


def test_collection_search_by_bbox_and_datetime(api_url):
    found = httpx.get(
        f"{api_url}/collections",
        params={"bbox": "-70,10,-60,20", "datetime": "2021-06-01T00:00:00Z/2021-06-30T00:00:00Z"},
    ).json()["collections"]
    assert [c["id"] for c in found] == ["ocean"]


def test_fields_include_and_exclude(api_url):
    response = httpx.get(
        f"{api_url}/search",
        params={"collections": "cmip6", "limit": 2, "fields": "id,properties.variable_id,-assets,-links"},
    ).json()
    feature = response["features"][0]
    assert "assets" not in feature and "links" not in feature
    assert set(feature["properties"]) == {"variable_id"}


def test_sort_by_a_property(api_url):
    response = httpx.get(
        f"{api_url}/search", params={"collections": "cmip6", "sortby": "-properties.start_datetime,id", "limit": 8}
    ).json()
    assert [f["id"] for f in response["features"]][:2] == [
        "ModelA.ssp585.r1i1p1f1.pr.gn",
        "ModelA.ssp585.r1i1p1f1.tas.gn",
    ]


def test_page_size_is_capped(loaded_dsn):
    from ..conftest import serve_api

    with serve_api(loaded_dsn, max_page_size=3) as live:
        page = httpx.get(f"{live.url}/search", params={"limit": 5000}).json()
        assert len(page["features"]) == 3
        assert any(link["rel"] == "next" for link in page["links"])
        collections = httpx.get(f"{live.url}/collections", params={"limit": 5000}).json()
        assert len(collections["collections"]) == 3


def test_health_checks_the_database(api_url):
    health = httpx.get(f"{api_url}/_mgmt/health")
    assert health.status_code == 200
    assert health.json()["pgstac"]["pgstac_version"] == "0.10.0"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"bbox": "1,2,3"}, "must have 4 or 6 values"),
        ({"bbox": "181,0,182,1"}, "Bounding box must be within"),
        ({"datetime": "yesterday"}, "Invalid RFC3339 datetime"),
        ({"limit": "-1"}, "greater than 0"),
        ({"limit": "lots"}, "valid integer"),
        ({"token": "next:garbage"}, "token"),
        ({"token": "garbage"}, "token"),
        ({"filter": "variable_id = "}, "Invalid filter"),
        ({"sortby": "+"}, "sortby"),
    ],
)
def test_malformed_parameters_are_a_400_naming_the_culprit(api_url, params, words):
    response = httpx.get(f"{api_url}/search", params=params)
    assert response.status_code == 400, (response.status_code, response.text)
    assert words.lower() in response.text.lower()


def test_a_3d_bbox_is_accepted(api_url):
    for response in (
        httpx.get(f"{api_url}/search", params={"bbox": "-10,40,0,10,50,1000"}),
        httpx.post(f"{api_url}/search", json={"bbox": [-10, 40, 0, 10, 50, 1000]}),
        httpx.get(f"{api_url}/collections", params={"bbox": "-10,40,0,10,50,1000"}),
    ):
        assert response.status_code == 200, response.text
