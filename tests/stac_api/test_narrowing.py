"""Searches that name no collection, narrowed to the collections whose bounds can match them,
answer exactly what pgstac alone answers: random searches over a few hundred collections,
every page of each (the paging tokens followed), against the same API with narrowing off.

The catalogue holds what narrowing must not get wrong: collections across the antimeridian,
items with a time range or an instant, properties absent from some items, null, numbers
compared with strings, a dotted property name, a collection loaded partly (its values not all
seen), items written afterwards by another writer than a load, an empty collection.
"""

from __future__ import annotations

import json
import random
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pystac
import pytest
from fastapi.testclient import TestClient
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
from starlette.requests import Request

from stac_api.app import create_api
from stac_api.collection_bounds import TABLE
from stac_api.loading.ingest import load
from stac_api.serving.narrowing import narrow
from stac_api.serving.settings import Settings
from tests.conftest import serve_api

SEED = 27
N_COLLECTIONS = 240
VARIABLES = ["tas", "pr", "uas", "vas", "psl", "zg500"]
EXPERIMENTS = ["historical", "ssp126", "ssp585", "piControl"]
SOURCES = ["ModelA", "ModelB", "ModelC"]
VERSIONS = ["v1", "v2", "v20200101"]
START = datetime(1850, 1, 1, tzinfo=UTC)


def box(west: float, south: float, east: float, north: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


class Catalogue:
    """Random collections and items, and the boxes and periods each collection spans."""

    def __init__(self, rng: random.Random) -> None:
        self.collections: list[pystac.Collection] = []
        self.items: list[pystac.Item] = []
        self.boxes: dict[str, list[tuple[float, float, float, float]]] = {}
        for n in range(N_COLLECTIONS):
            cid = f"c{n:03d}"
            self.boxes[cid] = []
            west, south = rng.uniform(-180, 150), rng.uniform(-90, 60)
            width, height = rng.choice([1, 5, 20]), rng.choice([1, 5, 20])
            across = n % 23 == 0  # across the antimeridian: two boxes
            experiments = rng.sample(EXPERIMENTS, rng.randint(1, 2))
            first = START + timedelta(days=rng.randint(0, 365 * 250))
            count = {7: 0, 11: 3}.get(n, rng.randint(1, 4))  # c007: no item; c011: loaded partly again
            for k in range(count):
                w, s = west + rng.uniform(0, 5), south + rng.uniform(0, 5)
                if across:
                    parts = [(170.0 + k, s, 180.0, s + height), (-180.0, s, -175.0 + k, s + height)]
                    geometry = {"type": "MultiPolygon", "coordinates": [box(*p)["coordinates"] for p in parts]}
                    bbox = [170.0 + k, s, -175.0 + k, s + height]
                else:
                    parts = [(w, s, min(w + width, 180.0), min(s + height, 90.0))]
                    geometry, bbox = box(*parts[0]), list(parts[0])
                self.boxes[cid].extend(parts)
                start = first + timedelta(days=rng.randint(0, 365 * 20))
                properties: dict = {
                    "variable_id": rng.choice(VARIABLES),
                    "experiment_id": rng.choice(experiments),
                    "member": rng.choice(["r1i1p1f1", "r2i1p1f1"]) if n % 3 else "r1i1p1f1",
                    "realization": rng.randint(1, 3),  # a number: not narrowed on
                    "model.version": rng.choice(VERSIONS),
                    "note": None,
                }
                if rng.random() < 0.7:
                    properties["source_id"] = rng.choice(SOURCES)
                if rng.random() < 0.5:  # a period, else an instant
                    properties["start_datetime"] = start.isoformat()
                    properties["end_datetime"] = (start + timedelta(days=rng.randint(1, 365 * 30))).isoformat()
                    when = None
                else:
                    when = start
                self.items.append(pystac.Item(f"{cid}-i{k}", geometry, bbox, when, properties, collection=cid))
            self.collections.append(
                pystac.Collection(
                    cid,
                    f"collection {cid}",
                    pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]), pystac.TemporalExtent([[START, None]])),
                )
            )


def random_filter(rng: random.Random, depth: int = 0) -> dict:
    prop = rng.choice(
        [
            "variable_id",
            "properties.experiment_id",
            "member",
            "model.version",
            "source_id",
            "note",
            "realization",
            "id",
            "collection",
        ]
    )
    pool = {
        "variable_id": VARIABLES,
        "properties.experiment_id": EXPERIMENTS,
        "member": ["r1i1p1f1", "r2i1p1f1"],
        "realization": ["1", "2"],
        "model.version": VERSIONS,
        "source_id": SOURCES,
        "note": ["x"],
        "id": ["c001-i0", "c010-i1", "c100-i0"],
        "collection": ["c001", "c050", "c123"],
    }[prop] + ["nothing-has-this"]
    kind = rng.choice(["=", "=", "in", "in", "<>", "like"] + (["and", "or", "not"] if depth < 3 else []))
    if kind in ("and", "or"):
        return {"op": kind, "args": [random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    if kind == "not":
        return {"op": "not", "args": [random_filter(rng, depth + 1)]}
    if kind == "in":
        return {"op": "in", "args": [{"property": prop}, rng.sample(pool, rng.randint(1, min(3, len(pool))))]}
    if kind == "like":
        return {"op": "like", "args": [{"property": prop}, rng.choice(pool)[:2] + "%"]}
    return {"op": kind, "args": [{"property": prop}, rng.choice(pool)]}


def random_search(rng: random.Random) -> dict:
    search: dict = {"limit": rng.choice([1, 2, 3, 5, 10, 40])}
    if rng.random() < 0.6:
        west, south = rng.uniform(-180, 170), rng.uniform(-90, 80)
        search["bbox"] = [west, south, min(180, west + rng.uniform(1, 90)), min(90, south + rng.uniform(1, 60))]
    if rng.random() < 0.6:
        a = START + timedelta(days=rng.randint(0, 365 * 280))
        b = a + timedelta(days=rng.randint(0, 365 * 30))
        search["datetime"] = rng.choice(
            [f"{a:%Y-%m-%dT%H:%M:%SZ}/{b:%Y-%m-%dT%H:%M:%SZ}", f"../{b:%Y-%m-%dT%H:%M:%SZ}",
             f"{a:%Y-%m-%dT%H:%M:%SZ}/..", f"{a:%Y-%m-%dT%H:%M:%SZ}"]
        )  # fmt: skip
    if rng.random() < 0.7:
        search["filter"] = random_filter(rng)
        search["filter-lang"] = "cql2-json"
    if rng.random() < 0.3:
        field = rng.choice(["datetime", "id", "variable_id", "properties.experiment_id"])
        search["sortby"] = [{"field": field, "direction": rng.choice(["asc", "desc"])}]
    return search


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue(random.Random(SEED))


@pytest.fixture(scope="module")
def dsn(pg_cluster, catalogue) -> str:
    dsn = pg_cluster.copy_database("narrowing")
    load(dsn, catalogue.collections, catalogue.items)
    # c011 loaded again with one of its items only (nothing deleted): its other items' values
    # were not seen by this load.
    partial = [i for i in catalogue.items if i.collection_id == "c011"][:1]
    load(dsn, [c for c in catalogue.collections if c.id == "c011"], partial)
    # Items written by another writer than a load, far from their collections' bounds.
    foreign = [
        pystac.Item("c020-foreign", box(-60, -60, -59, -59), [-60, -60, -59, -59], datetime(2300, 1, 1, tzinfo=UTC),
                    {"variable_id": "written-later", "experiment_id": "elsewhere"}, collection="c020"),
        pystac.Item("c021-foreign", box(100, 80, 101, 81), [100, 80, 101, 81], datetime(1700, 1, 1, tzinfo=UTC),
                    {"variable_id": "tas"}, collection="c021"),
    ]  # fmt: skip
    with PgstacDB(dsn=dsn) as db:
        Loader(db).load_items(iter([i.to_dict() for i in foreign]), insert_mode=Methods.insert)
    catalogue.items.extend(foreign)
    for item in foreign:
        catalogue.boxes[item.collection_id].append(tuple(item.bbox))
    return dsn


@pytest.fixture(scope="module")
def servers(dsn):
    with serve_api(dsn) as narrowed, serve_api(dsn, narrow_searches=False) as plain:
        yield narrowed.url, plain.url


@pytest.fixture(scope="module")
def kept_by(dsn):
    """The collections `narrow` keeps for a search (None: not narrowed), on a running app."""
    api = create_api(Settings(database_url=dsn))
    app, body_model = api.app, api.search_post_request_model
    with TestClient(app) as client:

        async def kept(search: dict) -> list[str] | None:
            request = Request({"type": "http", "app": app, "method": "POST", "path": "/search", "headers": []})
            narrowed = await narrow(body_model.model_validate(search), request)
            expr = getattr(narrowed, "filter_expr", None)
            if expr is None or expr == search.get("filter"):
                return None
            only = expr if expr.get("args", [{}])[0] == {"property": "collection"} else expr["args"][1]
            return only["args"][1]

        yield lambda search: client.portal.call(kept, search)


def pages(base: str, search: dict, method: str, max_pages: int = 6) -> list[dict]:
    """Every page of a search (up to `max_pages`), following its next links as a client does."""
    out = []
    with httpx.Client(base_url=base, timeout=60) as http:
        if method == "POST":
            response = http.post("/search", json=search)
        else:
            params = {k: v for k, v in search.items() if k not in ("filter", "filter-lang", "sortby")}
            params = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in params.items()}
            if "filter" in search:
                params["filter"], params["filter-lang"] = json.dumps(search["filter"]), "cql2-json"
            if "sortby" in search:
                params["sortby"] = ",".join(
                    ("+" if s["direction"] == "asc" else "-") + s["field"] for s in search["sortby"]
                )
            response = http.get("/search", params=params)
        while True:
            assert response.status_code in (200, 400), response.text
            page = response.json()
            out.append(page)
            nxt = next((link for link in page.get("links", []) if link["rel"] == "next"), None)
            if response.status_code != 200 or nxt is None or len(out) >= max_pages:
                return out
            response = (
                http.post(nxt["href"], json=nxt["body"]) if nxt.get("method") == "POST" else http.get(nxt["href"])
            )


def without_host(value, base: str):
    """A response with its links made relative, to compare two servers' answers."""
    host = urlsplit(base).netloc
    if isinstance(value, dict):
        return {k: without_host(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [without_host(v, base) for v in value]
    return value.replace(host, "HOST") if isinstance(value, str) else value


def test_random_searches_answer_as_pgstac_alone(servers, kept_by):
    narrowed_url, plain_url = servers
    rng = random.Random(SEED + 1)
    ruled_out = 0
    for n in range(45):
        search = random_search(rng)
        method = "POST" if n % 2 else "GET"
        got = [without_host(p, narrowed_url) for p in pages(narrowed_url, search, method)]
        expected = [without_host(p, plain_url) for p in pages(plain_url, search, method)]
        assert got == expected, (search, method)
        kept = kept_by(search)
        if kept is not None:
            ruled_out += N_COLLECTIONS - len(kept)
            found = {f["collection"] for page in expected for f in page.get("features", [])}
            assert found <= set(kept), search
    # Not a comparison of two identical paths: most searches planned far fewer partitions.
    assert ruled_out > 20 * N_COLLECTIONS, ruled_out


def overlaps(a: tuple, b: list) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def envelope(parts: list[tuple]) -> tuple:
    return (min(p[0] for p in parts), min(p[1] for p in parts), max(p[2] for p in parts), max(p[3] for p in parts))


@pytest.mark.parametrize("bbox", [[-10, 35, 30, 70], [140, -45, 155, -10], [175, 0, 180, 60], [0, -90, 1, 90]])
def test_a_bbox_keeps_the_collections_whose_items_envelope_it_touches(dsn, catalogue, kept_by, bbox):
    # Computed from the generated boxes, not from the database's extents: the envelope of a
    # collection's items (across the antimeridian, -180 to 180).
    expected = {cid for cid, parts in catalogue.boxes.items() if parts and overlaps(envelope(parts), bbox)}
    # c020 and c021's bounds were forgotten (another writer added items): kept whatever the
    # search. c007 has no item; c011's extent is read from the database after its partial load.
    assert set(kept_by({"bbox": bbox})) == expected | {"c020", "c021"}


@pytest.mark.parametrize(
    ("filter_", "expected_values"),
    [
        ({"op": "=", "args": [{"property": "variable_id"}, "zg500"]}, {"zg500"}),
        ({"op": "in", "args": [{"property": "properties.experiment_id"}, ["ssp126", "piControl"]]},
         {"ssp126", "piControl"}),
    ],
)  # fmt: skip
def test_a_facet_filter_keeps_the_collections_with_that_value(catalogue, kept_by, filter_, expected_values):
    name = filter_["args"][0]["property"].removeprefix("properties.")
    expected = {i.collection_id for i in catalogue.items if i.properties.get(name) in expected_values}
    kept = set(kept_by({"filter": filter_, "filter-lang": "cql2-json"}))
    # c011's values are unknown after its partial load, c020/c021's after the other writer.
    assert kept == expected | {"c011", "c020", "c021"}


def test_a_load_by_the_ingest_role_keeps_bounds_and_a_later_write_forgets_them(pg_cluster, pgstac_dsn, catalogue):
    # pgstac_ingest owns nothing: the trigger (its owner's) and the grants let it load as before.
    role, password = f"ingest_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE pgstac_ingest")
    dsn = pgstac_dsn.replace(
        f"{pg_cluster.user}:{quote(pg_cluster.password, safe='')}@", f"{role}:{quote(password, safe='')}@"
    )
    collections = catalogue.collections[30:33]
    items = [i for i in catalogue.items if i.collection_id in {c.id for c in collections}]
    report = load(dsn, collections, items)
    assert report.items == len(items) and not [n for n in report.notes if TABLE in n]
    query = f"SELECT collection, known, facets IS NOT NULL FROM {TABLE} ORDER BY 1"
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        assert conn.execute(query).fetchall() == [(c.id, True, True) for c in collections]
    with PgstacDB(dsn=dsn) as db:  # another writer, as the same role
        again = items[0].to_dict()
        again["properties"]["variable_id"] = "changed"
        Loader(db).load_items(iter([again]), insert_mode=Methods.upsert)
    with psycopg.connect(pgstac_dsn, autocommit=True) as conn:
        assert [row[0] for row in conn.execute(query)] == sorted({c.id for c in collections} - {items[0].collection_id})
