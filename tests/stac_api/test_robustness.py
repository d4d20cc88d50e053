"""The API under abuse: generated requests, hostile filters, sustained load, a lost database.

Every test talks to a real uvicorn server over a real PostgreSQL/pgstac cluster. The
load test takes about a minute: it is the one slow test of this module.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from stac_api.app import create_app
from stac_api.loading.ingest import load
from stac_api.serving.settings import Settings
from zarr_stac.services import PostgresCluster, free_port

from ..conftest import own_pgstac_cluster, serve_api, wait_until_answering

ALL_ITEMS = {
    *(f"Model{m}.{e}.r1i1p1f1.{v}.gn" for m in "AB" for e in ("historical", "ssp585") for v in ("pr", "tas")),
    "era-like-daily",
    "north-atlantic-sst",
}
CMIP6_TAS = {f"Model{m}.{e}.r1i1p1f1.tas.gn" for m in "AB" for e in ("historical", "ssp585")}
CMIP6_SSP585_TAS = {"ModelA.ssp585.r1i1p1f1.tas.gn", "ModelB.ssp585.r1i1p1f1.tas.gn"}
REFUSED = 400  # the expected answer: "400 with a message"


# -- generated requests (schemathesis) ----------------------------------------------------
# The OpenAPI document is the app's own, rendered without a database (so that pytest can
# parametrise by operation at collection time); the first test checks that the live
# server documents exactly the same, and every case is sent to the live server.
# Bounded and reproducible in CI: 15 examples per operation and phase, derandomised.
# ZARR_STAC_FUZZ_EXAMPLES=500 explores further, with a new random seed each run.
FUZZ_EXAMPLES = os.environ.get("ZARR_STAC_FUZZ_EXAMPLES")
OPENAPI = create_app(Settings(database_url="postgresql://nobody:unused@127.0.0.1:9/none")).openapi()
SCHEMA = schemathesis.openapi.from_dict(
    OPENAPI,
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": int(FUZZ_EXAMPLES or 15),
                "deterministic": not FUZZ_EXAMPLES,
                "database": "none",
            }
        }
    ),
)


def test_the_live_server_documents_the_operations_under_test(api_url):
    assert httpx.get(f"{api_url}/api").json() == OPENAPI
    # Read-only: with transactions off, nothing the generated requests send can write.
    assert {method for operations in OPENAPI["paths"].values() for method in operations} == {"get", "post"}
    # POST only where it reads: a search, and the aggregation extension's counts of one.
    assert sorted(path for path, operations in OPENAPI["paths"].items() if "post" in operations) == [
        "/aggregate",
        "/aggregations",
        "/collections/{collection_id}/aggregate",
        "/collections/{collection_id}/aggregations",
        "/search",
    ]


@SCHEMA.parametrize()
def test_generated_requests_never_get_a_server_error(case, api_url):
    # Positive and negative cases for every operation the API documents: whatever a
    # client sends, the answer is never a 5xx.
    case.call_and_validate(base_url=api_url, checks=[not_a_server_error])


# Requests that answered 500 before the fixes in stac_api (found by the test above with
# more examples, or by hand): a 4xx naming the mistake, or the answer when there was none.
FOUND_BY_FUZZING = [
    pytest.param("GET", "/search", {"query": "x"}, 400, id="query-not-json"),
    pytest.param("GET", "/collections/cmip6/items", {"query": "x"}, 400, id="items-query-not-json"),
    pytest.param("GET", "/collections", {"query": "1"}, 400, id="collections-query-not-an-object"),
    pytest.param("GET", "/collections", {"query": ""}, 200, id="collections-query-empty"),
    pytest.param("GET", "/search", {"intersects": "x"}, 400, id="intersects-not-json"),
    pytest.param("GET", "/search", {"fields": ",,-"}, 200, id="empty-field-names"),
    pytest.param("GET", "/collections", {"offset": "-1"}, 400, id="negative-offset"),
    pytest.param("GET", "/collections", {"bbox": "nan,1,2,3"}, 400, id="nan-in-bbox"),
    pytest.param("GET", "/collections", {"filter": "false"}, 400, id="collections-filter-false"),
    pytest.param("GET", "/collections", {"q": "\x00"}, 400, id="nul-in-free-text"),
    pytest.param("GET", "/search", {"sortby": "\x00"}, 400, id="nul-in-sortby"),
    pytest.param("GET", "/search", {"token": "next:\x00"}, 400, id="nul-in-token"),
    pytest.param("GET", "/collections/%00", None, 400, id="nul-in-collection-id"),
    pytest.param("GET", "/collections/cmip6/items/%00", None, 400, id="nul-in-item-id"),
    pytest.param("POST", "/search", "[null, null]", 400, id="body-not-an-object"),
    pytest.param("POST", "/search", "null", 400, id="body-null"),
    pytest.param("POST", "/search", "[99999999999999999999999]", 400, id="body-a-list-of-a-huge-integer"),
    pytest.param("POST", "/search", ("text/plain", '{"limit": 1}'), 415, id="body-not-declared-json"),
    pytest.param(
        "POST",
        "/search",
        {"filter": {"op": "=", "args": [{"property": "variable_id"}, 2**72]}},
        200,
        id="integer-beyond-64-bits",
    ),
]


@pytest.mark.parametrize(("method", "path", "payload", "status"), FOUND_BY_FUZZING)
def test_requests_that_once_made_a_500_get_a_proper_answer(api_url, method, path, payload, status):
    if method == "GET":
        response = httpx.get(api_url + path, params=payload)
    elif isinstance(payload, tuple):
        response = httpx.post(api_url + path, content=payload[1], headers={"Content-Type": payload[0]})
    elif isinstance(payload, str):
        response = httpx.post(api_url + path, content=payload, headers={"Content-Type": "application/json"})
    else:
        response = httpx.post(api_url + path, json=payload)
    assert response.status_code == status, (response.status_code, response.text[:300])
    if status != 200:
        assert response.json(), "an error names what was wrong"


# -- hostile CQL2 ---------------------------------------------------------------------------
def item_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT collection, count(*) FROM pgstac.items GROUP BY collection").fetchall())


@pytest.fixture(scope="module")
def counts_before(loaded_dsn) -> dict[str, int]:
    counts = item_counts(loaded_dsn)
    assert counts == {"cmip6": 8, "reanalysis": 1, "ocean": 1}
    return counts


def assert_answered(response: httpx.Response, expected: set[str] | int) -> None:
    """200 with exactly the `expected` items, or the `expected` refusal with a message."""
    if expected == REFUSED:
        assert response.status_code == 400, (response.status_code, response.text[:500])
        body = response.json()
        assert body.get("description") or body.get("detail"), body
    else:
        assert response.status_code == 200, (response.status_code, response.text[:500])
        assert {f["id"] for f in response.json()["features"]} == expected


HOSTILE_CQL2_TEXT = [
    # A quote doubled inside a literal is part of the value, not the end of it.
    pytest.param("variable_id = 'x''; DROP TABLE pgstac.items; --'", set(), id="escaped-quote-drop-table"),
    pytest.param("variable_id = 'x'; DROP TABLE pgstac.items; --", REFUSED, id="stacked-statement"),
    pytest.param("id = 'x' UNION SELECT * FROM pgstac.items", REFUSED, id="union-select"),
    pytest.param("1=1) OR (1=1", REFUSED, id="unbalanced-parentheses"),
    # A tautology is a filter like any other: it matches everything, and reads nothing else.
    pytest.param("variable_id = 'nothing' OR 1=1", ALL_ITEMS, id="tautology"),
    pytest.param("\"id; DROP TABLE pgstac.items; --\" = 'tas'", set(), id="hostile-property-name"),
    pytest.param("properties->>'id' = 'x'", REFUSED, id="sql-json-operator"),
    pytest.param("variable_id IN ('tas', 'x''); DROP TABLE pgstac.items; --')", CMIP6_TAS, id="in-list-with-quote"),
    pytest.param("variable_id LIKE '%'' OR ''1''=''1'", set(), id="like-with-quotes"),
    # A function name in a filter is never called in the database.
    pytest.param("pg_sleep(30) = 1", REFUSED, id="pg-sleep"),
    pytest.param("variable_id = 'tas\x00'", REFUSED, id="nul-in-literal"),
    pytest.param('"\x00" = 1', REFUSED, id="nul-in-property"),
    pytest.param("variable_id = 'täs ☃ 𝄞 \u202e'", set(), id="unicode"),
    pytest.param("variable_id = '" + "x" * 6000 + "'", set(), id="huge-literal"),
    pytest.param("variable_id = '" + "x" * 12_000 + "'", REFUSED, id="too-long"),
    # Nesting: a reasonable depth works, a deeper one is refused before cql2 sees it.
    # Unrefused, cql2 0.6 takes the whole server down: 2,000 parentheses or 5,000 minus
    # signs overflow its parser's stack (SIGSEGV), a sum of 1,500 terms makes its
    # validation allocate more than 20 GB, 300 nested NOTs validate for minutes.
    pytest.param("NOT (" * 10 + "variable_id = 'tas'" + ")" * 10, CMIP6_TAS, id="nested-10"),
    pytest.param("(" * 40 + "variable_id = 'tas'" + ")" * 40, REFUSED, id="parentheses-40"),
    pytest.param("(" * 2000 + "variable_id = 'tas'" + ")" * 2000, REFUSED, id="parentheses-2000"),
    pytest.param("NOT (" * 25 + "variable_id = 'tas'" + ")" * 25, REFUSED, id="not-25"),
    pytest.param("NOT " * 12 + "variable_id = 'tas'", REFUSED, id="not-chain-12"),
    pytest.param("variable_id = " + "-" * 5000 + "1", REFUSED, id="minus-chain-5000"),
    pytest.param("variable_id = 1" + " + 1" * 100, REFUSED, id="sum-of-100"),
    pytest.param("datetime > TIMESTAMP('2000-13-45T00:00:00Z')", REFUSED, id="impossible-date"),
    pytest.param("variable_id = 'tas' AND experiment_id = 'ssp585'", CMIP6_SSP585_TAS, id="benign-control"),
]


@pytest.mark.parametrize(("cql2_text", "expected"), HOSTILE_CQL2_TEXT)
def test_hostile_cql2_text_is_only_ever_a_filter(api_url, loaded_dsn, counts_before, cql2_text, expected):
    response = httpx.get(
        f"{api_url}/search", params={"filter": cql2_text, "filter-lang": "cql2-text", "limit": 100}, timeout=20
    )
    assert_answered(response, expected)
    assert item_counts(loaded_dsn) == counts_before


def prop(name: str) -> dict:
    return {"property": name}


def equals(left, right) -> dict:
    return {"op": "=", "args": [left, right]}


def not_nested(depth: int) -> dict | str:
    """`variable_id = 'tas'` under 2 * `depth` NOTs; as JSON text when too deep for json.dumps."""
    text = json.dumps(equals(prop("variable_id"), "tas"))
    for _ in range(2 * depth):
        text = f'{{"op": "not", "args": [{text}]}}'
    return json.loads(text) if depth < 200 else text


HOSTILE_CQL2_JSON = [
    pytest.param(equals(prop("variable_id"), "x'; DROP TABLE pgstac.items; --"), set(), id="quote-in-literal"),
    pytest.param(equals(prop("id; DROP TABLE pgstac.items; --"), "tas"), set(), id="hostile-property-name"),
    pytest.param(equals(prop("variable_id') OR ('1'='1"), "tas"), set(), id="property-closing-quote"),
    pytest.param(equals(prop("properties->>'variable_id'"), "tas"), set(), id="sql-json-operator-as-property"),
    pytest.param(
        {"op": "=; DROP TABLE pgstac.items; --", "args": [prop("variable_id"), "tas"]}, REFUSED, id="hostile-operator"
    ),
    pytest.param({"op": "pg_sleep", "args": [30]}, REFUSED, id="pg-sleep"),
    pytest.param(equals(prop("variable_id"), {"op": "pg_sleep", "args": [30]}), REFUSED, id="pg-sleep-as-value"),
    pytest.param(
        {"op": "in", "args": [prop("variable_id"), ["tas", "x'); DROP TABLE pgstac.items; --"]]},
        CMIP6_TAS,
        id="in-list-with-quote",
    ),
    pytest.param({"op": "in", "args": [prop("variable_id"), []]}, REFUSED, id="in-empty-list"),
    pytest.param({"op": "and", "args": []}, REFUSED, id="and-of-nothing"),
    pytest.param(equals(1, 1), ALL_ITEMS, id="tautology"),
    pytest.param(
        equals(prop("variable_id"), {"timestamp": "x'; DROP TABLE pgstac.items; --"}), REFUSED, id="hostile-timestamp"
    ),
    pytest.param(
        {"op": "s_intersects", "args": [prop("geometry"), {"type": "Point; DROP TABLE x", "coordinates": [0, 0]}]},
        REFUSED,
        id="hostile-geometry-type",
    ),
    pytest.param(equals(prop("\x00"), "tas"), REFUSED, id="nul-in-property"),
    pytest.param(equals(prop("variable_id"), "\x00"), REFUSED, id="nul-in-literal"),
    pytest.param(equals(prop("variable_id"), "x" * 1_000_000), set(), id="megabyte-literal"),
    pytest.param(equals(prop("p" * 100_000), "tas"), set(), id="huge-property-name"),
    pytest.param(not_nested(5), CMIP6_TAS, id="nested-10"),
    pytest.param(not_nested(100), REFUSED, id="nested-200"),
    pytest.param(not_nested(450), REFUSED, id="nested-900"),
    pytest.param(equals(prop("variable_id"), "tas"), CMIP6_TAS, id="benign-control"),
]


@pytest.mark.parametrize(("cql2_json", "expected"), HOSTILE_CQL2_JSON)
def test_hostile_cql2_json_is_only_ever_a_filter(api_url, loaded_dsn, counts_before, cql2_json, expected):
    if isinstance(cql2_json, str):  # JSON text
        body = f'{{"filter-lang": "cql2-json", "limit": 100, "filter": {cql2_json}}}'
    else:
        body = json.dumps({"filter-lang": "cql2-json", "filter": cql2_json, "limit": 100})
    response = httpx.post(f"{api_url}/search", content=body, headers={"Content-Type": "application/json"}, timeout=20)
    assert_answered(response, expected)
    assert item_counts(loaded_dsn) == counts_before


# -- sustained load -------------------------------------------------------------------------
LOAD_SECONDS = 60
LOAD_CONNECTIONS = 64
LOAD_REQUESTS = [
    ("GET", "/", None),
    ("GET", "/collections", None),
    ("GET", "/collections/cmip6/items", {"limit": "3"}),
    ("GET", "/search", {"bbox": "-10,40,10,50", "datetime": "2000-01-01T00:00:00Z/2005-01-01T00:00:00Z", "limit": "5"}),
    ("GET", "/search", {"filter": "variable_id = 'tas' AND experiment_id = 'ssp585'", "filter-lang": "cql2-text"}),
    (
        "POST",
        "/search",
        {
            "collections": ["cmip6"],
            "filter-lang": "cql2-json",
            "filter": equals(prop("source_id"), "ModelB"),
            "bbox": [-10, 40, 10, 50],
        },
    ),
]


async def closed_loop(base_url: str, seconds: float, connections: int) -> tuple[collections.Counter, list[str]]:
    """`connections` clients, each sending its next request when the last is answered."""
    outcomes: collections.Counter = collections.Counter()
    problems: list[str] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        deadline = time.monotonic() + seconds

        async def one_client(number: int) -> None:
            sent = number
            while time.monotonic() < deadline:
                method, path, payload = LOAD_REQUESTS[sent % len(LOAD_REQUESTS)]
                sent += 1
                try:
                    if method == "GET":
                        response = await client.get(path, params=payload)
                    else:
                        response = await client.post(path, json=payload)
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
                    problems.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                    continue
                outcomes[response.status_code] += 1
                if response.status_code != 200:
                    problems.append(f"{method} {path}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(one_client(n) for n in range(connections)))
    return outcomes, problems


@contextmanager
def served_by_the_cli(dsn: str) -> Iterator[str]:
    """`zarr-stac serve` in its own process, as operators run it: the load generator
    then has this process to itself (in one process, the server's work starves the
    clients). Its keep-alive outlasts the clients': see `zarr-stac serve`."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "zarr-stac"), "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": dsn},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/_mgmt/ping", server)
        yield url
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.slow
def test_a_minute_of_load_from_64_connections_gets_no_error(loaded_dsn):
    # The slow test (LOAD_SECONDS): its own server, so that it disturbs no other test.
    with served_by_the_cli(loaded_dsn) as url:
        started = time.monotonic()
        outcomes, problems = asyncio.run(closed_loop(url, LOAD_SECONDS, LOAD_CONNECTIONS))
        took = time.monotonic() - started
    print(f"\n{sum(outcomes.values())} requests in {took:.0f} s from {LOAD_CONNECTIONS} connections: {dict(outcomes)}")
    assert not problems, f"{len(problems)} errors, {dict(outcomes)}; first: {problems[:5]}"
    assert took >= LOAD_SECONDS
    assert outcomes[200] >= 4 * LOAD_CONNECTIONS  # every connection was answered, again and again


# -- the database goes away and comes back ----------------------------------------------------
@pytest.fixture
def own_cluster(sample_crawl) -> Iterator[PostgresCluster]:
    """A cluster of this test's own (it gets stopped), holding the samples."""
    with own_pgstac_cluster("outage") as cluster:
        load(cluster.dsn, sample_crawl.collections, sample_crawl.items)
        yield cluster


OUTAGE_REQUESTS = [
    ("GET", "/search", {"collections": "cmip6", "filter": "variable_id = 'tas'"}),
    ("POST", "/search", {"collections": ["cmip6"], "filter": equals(prop("variable_id"), "tas")}),
    ("GET", "/collections", None),
    ("GET", "/collections/cmip6", None),
    ("GET", "/collections/cmip6/items", None),
    ("GET", "/collections/cmip6/items/ModelA.ssp585.r1i1p1f1.tas.gn", None),
]


def send(base_url: str, method: str, path: str, payload) -> httpx.Response:
    if method == "GET":
        return httpx.get(base_url + path, params=payload, timeout=30)
    return httpx.post(base_url + path, json=payload, timeout=30)


@pytest.mark.postgres  # its own cluster (own_pgstac_cluster), which it stops
def test_a_lost_database_is_a_503_and_the_api_recovers_by_itself(own_cluster, caplog):
    caplog.set_level(logging.DEBUG)
    secret = own_cluster.password
    with serve_api(own_cluster.dsn) as live:
        assert httpx.get(f"{live.url}/_mgmt/health").status_code == 200
        for method, path, payload in OUTAGE_REQUESTS:
            assert send(live.url, method, path, payload).status_code == 200

        own_cluster.stop()
        started = time.monotonic()
        health = httpx.get(f"{live.url}/_mgmt/health", timeout=30)
        assert health.status_code == 503, health.text
        assert time.monotonic() - started < 10, "the health check must answer promptly, not hang"
        assert health.json()["pgstac"]["status"] == "DOWN"
        for leak in (secret, own_cluster.user, str(own_cluster.port)):
            assert leak not in health.text, health.text
        for method, path, payload in OUTAGE_REQUESTS:
            started = time.monotonic()
            response = send(live.url, method, path, payload)
            assert response.status_code == 503, (method, path, response.status_code, response.text)
            assert time.monotonic() - started < 10, (method, path, "answered too slowly")
            assert response.headers["content-type"].startswith("application/json")
            assert "unavailable" in response.json()["description"]
            assert "Retry-After" in response.headers
            for leak in (secret, own_cluster.user, str(own_cluster.port)):
                assert leak not in response.text, (method, path, response.text)

        own_cluster.start()
        # No restart of the API: its connection pool reconnects by itself.
        deadline = time.monotonic() + 30
        while httpx.get(f"{live.url}/_mgmt/health").status_code != 200:
            assert time.monotonic() < deadline, "the API did not recover within 30 s of the database's return"
            time.sleep(0.5)
        for method, path, payload in OUTAGE_REQUESTS:
            while (response := send(live.url, method, path, payload)).status_code != 200:
                assert time.monotonic() < deadline, (method, path, response.status_code, response.text)
                time.sleep(0.5)
        found = send(live.url, "GET", "/search", {"filter": "variable_id = 'tas' AND experiment_id = 'ssp585'"}).json()
        assert {f["id"] for f in found["features"]} == CMIP6_SSP585_TAS
    assert secret not in caplog.text
