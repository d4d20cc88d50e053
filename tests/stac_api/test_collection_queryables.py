"""Collection search filtering on facets (pgstac#350): a collection matches when one of its
Items has the value, decided here by hand from the Items that were loaded."""

import copy

import httpx
import pytest

from stac_api.loading.ingest import load

from ..conftest import serve_api


@pytest.fixture(scope="module")
def two_models(pg_cluster, sample_crawl):
    """The samples, plus a second CMIP6-like collection of other experiments, with a numeric facet."""
    (cmip6,) = [c for c in sample_crawl.collections if c.id == "cmip6"]
    other = cmip6.clone()
    other.id = "cmip6-picontrol"
    items = [copy.deepcopy(i) for i in sample_crawl.items]
    copies = []
    for n, item in enumerate(i for i in sample_crawl.items if i.collection_id == "cmip6"):
        twin = item.clone()
        twin.id = f"{item.id}.piControl"
        twin.collection_id = other.id
        twin.properties.update(
            experiment_id="piControl", source_id=f"Model{'C' if n % 2 else 'A'}", realization=1 + n % 2
        )
        copies.append(twin)
    dsn = pg_cluster.copy_database("collection_facets")
    load(dsn, [*sample_crawl.collections, other], items + copies)
    with serve_api(dsn) as live:
        yield live.url, items + copies


def collections_with(items, predicate):
    """The collections with an Item that satisfies `predicate` (of its properties and `collection`)."""
    return {i.collection_id for i in items if predicate({**i.properties, "collection": i.collection_id})}


@pytest.mark.parametrize(
    ("cql2", "predicate"),
    [
        ("experiment_id = 'ssp585'", lambda p: p.get("experiment_id") == "ssp585"),
        ("'piControl' = experiment_id", lambda p: p.get("experiment_id") == "piControl"),
        ("source_id IN ('ModelC', 'ModelZ')", lambda p: p.get("source_id") in ("ModelC", "ModelZ")),
        ("source_id = 'ModelA'", lambda p: p.get("source_id") == "ModelA"),
        ("variable_id = 'tas'", lambda p: p.get("variable_id") == "tas"),
        ("realization = 2", lambda p: p.get("realization") == 2),
        ("realization > 1", lambda p: p.get("realization", 0) > 1),
        ("realization < 2", lambda p: p.get("realization", 9) < 2),
        (
            "experiment_id = 'historical' AND source_id = 'ModelB'",
            lambda p: p.get("experiment_id") == "historical" and p.get("source_id") == "ModelB",
        ),
        (
            "experiment_id = 'historical' OR id = 'ocean'",
            lambda p: p.get("experiment_id") == "historical" or p["collection"] == "ocean",
        ),
    ],
)
def test_collection_search_filters_on_facets(two_models, cql2, predicate):
    url, items = two_models
    response = httpx.get(f"{url}/collections", params={"filter": cql2, "limit": 100})
    assert response.status_code == 200, response.text
    found = {c["id"] for c in response.json()["collections"]}
    assert found == collections_with(items, predicate)


def test_a_facet_filter_combines_with_the_other_parameters(two_models):
    url, items = two_models
    response = httpx.get(f"{url}/collections", params={"filter": "experiment_id = 'ssp585'", "q": "monthly"})
    assert [c["id"] for c in response.json()["collections"]] == ["cmip6"]
    response = httpx.get(f"{url}/collections", params={"filter": "experiment_id = 'ssp585'", "bbox": "-70,10,-60,20"})
    assert [c["id"] for c in response.json()["collections"]] == ["cmip6"]


@pytest.mark.parametrize("cql2", ["experiment_id <> 'ssp585'", "experiment_id LIKE 'ssp%'", "realization IN (1, 2, 3)"])
def test_what_a_summary_cannot_answer_is_refused(two_models, cql2):
    url, _ = two_models
    response = httpx.get(f"{url}/collections", params={"filter": cql2})
    if "IN" in cql2:  # numbers in a list: each as a range check
        assert response.status_code == 200, response.text
        assert {c["id"] for c in response.json()["collections"]} == {"cmip6-picontrol"}
        return
    assert response.status_code == 400, response.text
    assert "Collection search can compare the facet 'experiment_id' only with = and IN" in response.text


def test_collection_queryables_list_the_facets(two_models):
    url, items = two_models
    response = httpx.get(f"{url}/collections/queryables")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/schema+json"
    properties = response.json()["properties"]
    assert properties["experiment_id"]["enum"] == sorted(
        {i.properties["experiment_id"] for i in items if "experiment_id" in i.properties}
    )
    assert properties["realization"]["type"] == "integer"
    # An ordinary collection is still itself.
    assert httpx.get(f"{url}/collections/cmip6").json()["id"] == "cmip6"
