"""The aggregation extension: counts of what a search matches, checked against the
extension's own document and against counts made by hand from the Items that were loaded."""

import re
from collections import Counter
from datetime import datetime

import httpx
import jsonschema
import pytest

from stac_api.serving import aggregation

# The extension's response objects as its specification defines them
# (../shared/stac-api-specs/aggregation/v0.3.0/README.md, "AggregationCollection fields",
# "Aggregation fields", "Bucket fields"; its openapi.yaml is the filter extension's and
# describes no aggregation). `integer` is the data type the README gives total_count.
DATA_TYPES = [
    "integer",
    "numeric",
    "string",
    "datetime",
    *(f"interval_{u}" for u in ("year", "month", "week", "day", "hour", "minute", "second")),
]
BUCKET = {
    "type": "object",
    "required": ["key", "data_type"],
    "properties": {
        "key": {"type": "string"},
        "data_type": {"enum": DATA_TYPES},
        "frequency": {"type": "integer", "minimum": 0},
        "from": {"type": "number"},
        "to": {"type": "number"},
    },
}
AGGREGATION = {
    "type": "object",
    "required": ["name", "data_type"],
    "properties": {
        "name": {"type": "string"},
        "data_type": {"enum": DATA_TYPES},
        "buckets": {"type": "array", "items": BUCKET},
        "overflow": {"type": "integer", "minimum": 0},
        "value": {"type": ["string", "number"]},
    },
    "oneOf": [{"required": ["buckets"]}, {"required": ["value"]}],
}
LINK = {"type": "object", "required": ["rel", "href"], "properties": {"rel": {"type": "string"}}}
AGGREGATION_COLLECTION = {
    "type": "object",
    "required": ["type", "aggregations"],
    "properties": {
        "type": {"const": "AggregationCollection"},
        "aggregations": {"type": "array", "items": AGGREGATION},
        "links": {"type": "array", "items": LINK},
    },
}
# /aggregations lists what may be asked: names and types, no values.
AGGREGATIONS_LIST = {
    **AGGREGATION_COLLECTION,
    "properties": {
        **AGGREGATION_COLLECTION["properties"],
        "aggregations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "data_type"],
                "properties": {"name": {"type": "string"}, "data_type": {"enum": DATA_TYPES}},
            },
        },
    },
}

FACETS = ["experiment_id", "source_id", "variable_id", "variables"]
EVERYTHING = ["total_count", "collection_frequency", "datetime_frequency", "datetime_min", "datetime_max"] + [
    f"{facet}_frequency" for facet in FACETS
]


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def period(item):
    p = item.properties
    start = p.get("start_datetime") or p["datetime"]
    return when(start), when(p.get("end_datetime") or start)


def overlaps(a, b):
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def matching(items, bbox=None, interval=None, equal=None, ids=None, collections=None, word=None):
    """The Items a search matches, decided here in Python from the search's meaning."""
    found = []
    for item in items:
        start, end = period(item)
        if bbox and not overlaps(item.bbox, bbox):
            continue
        if interval and not (start <= when(interval[1]) and end >= when(interval[0])):
            continue
        if equal and any(item.properties.get(k) != v for k, v in equal.items()):
            continue
        if ids and item.id not in ids:
            continue
        if collections and item.collection_id not in collections:
            continue
        # Free text: the word in the Item's title, description or keywords.
        text = " ".join(str(item.properties.get(k, "")) for k in ("title", "description", "keywords"))
        if word and not re.search(rf"\b{word}\b", text, re.IGNORECASE):
            continue
        found.append(item)
    return found


def truncated(moment, interval):
    """The start of the hour, day, month or year `moment` falls in."""
    start = {"year": dict(month=1, day=1, hour=0), "month": dict(day=1, hour=0), "day": dict(hour=0), "hour": {}}
    return moment.replace(minute=0, second=0, microsecond=0, **start[interval]).strftime("%Y-%m-%dT%H:%M:%SZ")


def by_hand(items, interval):
    """Every aggregation of EVERYTHING, counted here from the Items."""
    counts = {"total_count": len(items), "collection_frequency": Counter(i.collection_id for i in items)}
    for facet in FACETS:
        values = Counter()
        for item in items:
            value = item.properties.get(facet)
            values.update(value if isinstance(value, list) else [] if value is None else [value])
        counts[f"{facet}_frequency"] = values
    counts["datetime_frequency"] = Counter(truncated(period(i)[0], interval) for i in items)
    counts["datetime_min"] = min(period(i)[0] for i in items).strftime("%Y-%m-%dT%H:%M:%SZ")
    counts["datetime_max"] = max(period(i)[1] for i in items).strftime("%Y-%m-%dT%H:%M:%SZ")
    return counts


def as_counted(response):
    """The response's aggregations in by_hand's shape."""
    out = {}
    for agg in response["aggregations"]:
        if "buckets" in agg:
            assert agg["overflow"] == 0
            out[agg["name"]] = Counter({b["key"]: b["frequency"] for b in agg["buckets"]})
        else:
            out[agg["name"]] = agg["value"]
    return out


SEARCHES = [
    pytest.param({}, {}, "year", id="everything"),
    pytest.param({"bbox": "10,-40,20,-30"}, {"bbox": [10, -40, 20, -30]}, "year", id="bbox"),
    pytest.param(
        {"datetime": "2015-01-01T00:00:00Z/2020-12-31T00:00:00Z"},
        {"interval": ("2015-01-01T00:00:00Z", "2020-12-31T00:00:00Z")},
        "hour",
        id="datetime",
    ),
    pytest.param(
        {"filter": "source_id = 'ModelB' AND variable_id = 'tas'"},
        {"equal": {"source_id": "ModelB", "variable_id": "tas"}},
        "year",
        id="filter",
    ),
    pytest.param(
        {"ids": "era-like-daily,north-atlantic-sst,ModelA.ssp585.r1i1p1f1.pr.gn"},
        {"ids": {"era-like-daily", "north-atlantic-sst", "ModelA.ssp585.r1i1p1f1.pr.gn"}},
        "year",
        id="ids",
    ),
    pytest.param({"q": "Atlantic"}, {"word": "Atlantic"}, "hour", id="q"),
    pytest.param(
        {"collections": "ocean,reanalysis"}, {"collections": {"ocean", "reanalysis"}}, "year", id="collections"
    ),
    pytest.param(
        {"collections": "cmip6", "bbox": "-10,40,10,50", "datetime": "2000-01-01T00:00:00Z/2005-01-01T00:00:00Z"},
        {
            "collections": {"cmip6"},
            "bbox": [-10, 40, 10, 50],
            "interval": ("2000-01-01T00:00:00Z", "2005-01-01T00:00:00Z"),
        },
        "hour",
        id="collections bbox datetime",
    ),
]


def post_body(params):
    """The same search as a POST body (cql2-text filters as cql2-json, as pystac-client does)."""
    from cql2 import Expr

    body = {}
    for key, value in params.items():
        if key == "filter":
            body.update({"filter": Expr(value).to_json(), "filter-lang": "cql2-json"})
        elif key == "bbox":
            body[key] = [float(v) for v in value.split(",")]
        elif key in ("ids", "collections"):
            body[key] = value.split(",")
        else:
            body[key] = value
    return body


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("params", "meaning", "interval"), SEARCHES)
def test_counts_agree_with_counts_by_hand(api_url, sample_crawl, method, params, meaning, interval):
    if method == "GET":
        response = httpx.get(f"{api_url}/aggregate", params={**params, "aggregations": ",".join(EVERYTHING)})
    else:
        response = httpx.post(f"{api_url}/aggregate", json={**post_body(params), "aggregations": EVERYTHING})
    assert response.status_code == 200, response.text
    body = response.json()
    jsonschema.validate(body, AGGREGATION_COLLECTION)
    expected = by_hand(matching(sample_crawl.items, **meaning), interval)
    assert expected["total_count"] > 0
    assert as_counted(body) == expected
    (dates,) = [a for a in body["aggregations"] if a["name"] == "datetime_frequency"]
    assert (dates["interval"], dates["data_type"]) == (interval, f"interval_{interval}")


def test_counts_agree_with_the_search_itself(api_url):
    # The same parameters mean the same items in /search and /aggregate (a 2-D box is kept as is).
    params = {"bbox": "-70,10,-60,20", "datetime": "2021-06-01T00:00:00Z/..", "filter": "variables IS NOT NULL"}
    found = httpx.get(f"{api_url}/search", params={**params, "limit": 100}).json()["features"]
    counted = httpx.get(f"{api_url}/aggregate", params={**params, "aggregations": "total_count"}).json()
    assert counted["aggregations"] == [{"name": "total_count", "data_type": "integer", "value": len(found)}]
    assert len(found) == 1


def test_a_collection_counts_its_own_items_only(api_url, sample_crawl):
    response = httpx.get(
        f"{api_url}/collections/cmip6/aggregate",
        params={"aggregations": "total_count,experiment_id_frequency", "collections": "ocean"},
    )
    assert response.status_code == 200, response.text
    jsonschema.validate(response.json(), AGGREGATION_COLLECTION)
    cmip6 = [i for i in sample_crawl.items if i.collection_id == "cmip6"]
    assert as_counted(response.json()) == {
        "total_count": len(cmip6),
        "experiment_id_frequency": Counter(i.properties["experiment_id"] for i in cmip6),
    }


def test_a_search_matching_nothing_counts_zero(api_url):
    response = httpx.get(
        f"{api_url}/aggregate",
        params={"aggregations": "total_count,collection_frequency", "filter": "source_id = 'nobody'"},
    )
    assert response.status_code == 200, response.text
    jsonschema.validate(response.json(), AGGREGATION_COLLECTION)
    assert as_counted(response.json()) == {"total_count": 0, "collection_frequency": Counter()}


def test_without_aggregations_the_total_count(api_url, sample_crawl):
    response = httpx.get(f"{api_url}/aggregate").json()
    assert response["aggregations"] == [{"name": "total_count", "data_type": "integer", "value": 10}]
    assert len(sample_crawl.items) == 10


def test_buckets_beyond_the_cap_are_counted_as_overflow(api_url, sample_crawl, monkeypatch):
    monkeypatch.setattr(aggregation, "MAX_BUCKETS", 2)
    response = httpx.get(f"{api_url}/aggregate", params={"aggregations": "variables_frequency"}).json()
    jsonschema.validate(response, AGGREGATION_COLLECTION)
    per_value = Counter(v for i in sample_crawl.items for v in i.properties["variables"])
    ranked = sorted(per_value.items(), key=lambda kv: (-kv[1], kv[0]))
    (agg,) = response["aggregations"]
    assert [(b["key"], b["frequency"]) for b in agg["buckets"]] == ranked[:2]
    assert agg["overflow"] == sum(n for _, n in ranked[2:]) > 0


@pytest.mark.parametrize(
    ("path", "facets"),
    [
        ("/aggregations", ["experiment_id", "grid_label", "member_id", "source_id", "variable_id", "variables"]),
        ("/collections/cmip6/aggregations", ["experiment_id", "grid_label", "member_id", "source_id", "variable_id"]),
        ("/collections/ocean/aggregations", []),
    ],
)
def test_aggregations_list_the_registered_facets(api_url, loaded_dsn, path, facets):
    response = httpx.get(api_url + path)
    assert response.status_code == 200, response.text
    jsonschema.validate(response.json(), AGGREGATIONS_LIST)
    names = [a["name"] for a in response.json()["aggregations"]]
    assert names[:5] == ["total_count", "datetime_min", "datetime_max", "collection_frequency", "datetime_frequency"]
    # Every collection's items carry `variables`; the path template's fields only cmip6's.
    assert sorted(names[5:]) == sorted(f"{f}_frequency" for f in {*facets, "variables"})


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "words"),
    [
        ("GET", "/collections/ocean/aggregate", {"aggregations": "experiment_id_frequency"}, 400, "not offered"),
        ("GET", "/aggregate", {"aggregations": "cloud_cover_frequency"}, 400, "not offered"),
        ("GET", "/aggregate", {"aggregations": ",".join(["total_count"] * 5 + EVERYTHING * 3)}, 200, "total_count"),
        ("GET", "/aggregate", {"aggregations": ",".join(f"a{n}" for n in range(21))}, 400, "At most 20 aggregations"),
        ("GET", "/collections/nowhere/aggregate", {}, 404, "does not exist"),
        ("GET", "/collections/nowhere/aggregations", {}, 404, "does not exist"),
        ("GET", "/aggregate", {"bbox": "1,2,3"}, 400, "4 or 6 values"),
        ("GET", "/aggregate", {"filter": "variable_id = "}, 400, "Invalid filter"),
        ("GET", "/aggregate", {"datetime": "yesterday"}, 400, "datetime"),
        ("GET", "/aggregate", {"intersects": "[1, 2]"}, 400, "intersects must be a JSON object"),
        ("POST", "/aggregate", "[1, 2]", 400, "JSON object"),
        ("POST", "/aggregate", {"filter": {"op": "=", "args": [{"property": "a"}]}}, 400, ""),
    ],
)
def test_mistakes_are_refused_with_their_reason(api_url, method, path, params, status, words):
    if method == "GET":
        response = httpx.get(api_url + path, params=params)
    elif isinstance(params, str):
        response = httpx.post(api_url + path, content=params, headers={"content-type": "application/json"})
    else:
        response = httpx.post(api_url + path, json=params)
    assert response.status_code == status, response.text
    assert words.lower() in response.text.lower()


def test_landing_page_collections_and_conformance_link_the_extension(api_url):
    landing = httpx.get(api_url).json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["aggregate"] == f"{api_url}/aggregate" and rels["aggregations"] == f"{api_url}/aggregations"
    assert "https://api.stacspec.org/v0.3.0/aggregation" in landing["conformsTo"]
    assert "https://api.stacspec.org/v0.3.0/aggregation#filter" in landing["conformsTo"]
    collection = httpx.get(f"{api_url}/collections/cmip6").json()
    rels = {link["rel"]: link["href"] for link in collection["links"]}
    assert rels["aggregate"] == f"{api_url}/collections/cmip6/aggregate"
    assert rels["aggregations"] == f"{api_url}/collections/cmip6/aggregations"
