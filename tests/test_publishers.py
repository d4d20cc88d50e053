"""The publisher contract (`zarr_stac.common.publishing.Publisher`), checked on every publisher.

In the style of zarr-python's `StoreTests`: `PublisherTests` holds the tests; each publisher's
class makes one (`make`: a new run over the same catalogue at each call) and reads back what
it published without the publisher's code (`published`, `versions`, `lose`): the static
catalogue by following its links from `catalog.json`, pgstac with SQL. The Items are those of
the sample stores (`sample_crawl`: 8 in `cmip6`, one in `reanalysis`, one in `ocean`).
"""

from __future__ import annotations

import inspect
import json
import posixpath
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
import pystac
import pytest

from stac_api.loading.ingest import Ingest
from static_catalog.catalog import StaticCatalog
from static_catalog.publication import Publication
from zarr_stac.common.publishing import Publisher
from zarr_stac.common.rejection import ItemRejected
from zarr_stac.common.stac import MayDelete, delete_nothing

SOURCES = "s3://samples/cmip6 s3://samples/ocean s3://samples/reanalysis"
Key = tuple[str, str]  # (collection id, item id)


def everything(collection_id: str) -> bool:
    return True


def json_of(item: pystac.Item) -> dict[str, Any]:
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def run(
    publisher: Publisher,
    collections: list[pystac.Collection],
    added: Iterable[pystac.Item | dict[str, Any]] = (),
    kept: Iterable[dict[str, Any]] = (),
    may_delete: MayDelete = delete_nothing,
) -> tuple[Any, dict[Key, str]]:
    """One run through the contract, in the order the driver (`zarr_stac.publish`) calls it;
    the report and {(collection, item id): kind} of every Item refused (by `add` or later)."""
    added, kept = list(added), list(kept)
    refused: dict[Key, str] = {}

    def key(item: pystac.Item | dict[str, Any]) -> Key:
        return (item.collection_id, item.id) if isinstance(item, pystac.Item) else (item["collection"], item["id"])

    with publisher:
        publisher.expect(key(item) for item in added)
        for item in added:
            try:
                publisher.add(item)
            except ItemRejected as exc:
                assert exc.reason, "a refusal says why"
                refused[key(item)] = exc.kind
        for data in kept:
            publisher.keep(data)
        report = publisher.finish(collections, may_delete=may_delete)
    for rejection in report.rejected:
        assert rejection.reason, "a refusal says why"
        refused[(rejection.collection_id, rejection.item_id)] = rejection.kind
    return report, refused


class PublisherTests:
    """What every publisher does. A subclass provides `make` (a fixture) and the read-backs."""

    refused_kind: str  # what this publisher calls the refusal of a `spoil`ed Item

    # -- what a subclass provides -------------------------------------------------------------
    @pytest.fixture
    def make(self, *args: Any) -> Callable[[], Publisher]:
        """A new publisher of one catalogue (each call: the next run over it)."""
        raise NotImplementedError

    def published(self, make: Callable[[], Publisher]) -> dict[Key, dict[str, Any]]:
        """{(collection, item id): properties} of every Item a reader finds."""
        raise NotImplementedError

    def published_collections(self, make: Callable[[], Publisher]) -> set[str]:
        raise NotImplementedError

    def versions(self, make: Callable[[], Publisher]) -> dict[Key, object]:
        """A token per Item that changes when it is written again."""
        raise NotImplementedError

    def lose(self, make: Callable[[], Publisher], key: Key) -> None:
        """Remove one Item from the catalogue behind the publisher's back."""
        raise NotImplementedError

    def spoil(self, item: pystac.Item) -> pystac.Item:
        """A copy of `item` this publisher must refuse (and only this one)."""
        raise NotImplementedError

    # -- the contract --------------------------------------------------------------------------
    def test_it_has_the_contracts_signatures(self, make):
        """The driver calls every publisher alike: the same methods, the same parameters."""
        publisher = make()
        for name in ("earlier_ledger", "expect", "add", "keep", "finish", "keep_ledger"):
            contract = inspect.signature(getattr(Publisher, name))
            own = inspect.signature(getattr(publisher, name))
            expected = [(p.name, p.kind) for p in contract.parameters.values() if p.name != "self"]
            assert [(p.name, p.kind) for p in own.parameters.values()] == expected, name
        assert isinstance(publisher.report.rejected, list)

    def test_what_is_added_is_published(self, make, sample_crawl):
        report, refused = run(make(), sample_crawl.collections, sample_crawl.items)
        assert refused == {}
        assert self.published(make) == {(i.collection_id, i.id): i.properties for i in sample_crawl.items}
        assert self.published_collections(make) == {c.id for c in sample_crawl.collections}

    def test_add_takes_an_item_or_its_json(self, make, sample_crawl):
        items = sample_crawl.items
        run(make(), sample_crawl.collections, [json_of(i) if n % 2 else i for n, i in enumerate(items)])
        assert self.published(make) == {(i.collection_id, i.id): i.properties for i in items}

    def test_a_rerun_of_the_same_items_publishes_the_same_catalogue(self, make, sample_crawl):
        run(make(), sample_crawl.collections, sample_crawl.items)
        before = self.published(make), self.published_collections(make)
        run(make(), sample_crawl.collections, sample_crawl.items, may_delete=everything)
        assert (self.published(make), self.published_collections(make)) == before

    def test_kept_items_are_this_runs_and_are_not_rewritten(self, make, sample_crawl):
        """`keep` (a store unchanged since the ledger): published already, so not written again;
        but this run's, so not deleted where deletion is allowed."""
        run(make(), sample_crawl.collections, sample_crawl.items)
        before = self.versions(make)
        run(make(), sample_crawl.collections, kept=[json_of(i) for i in sample_crawl.items], may_delete=everything)
        assert self.versions(make) == before
        assert set(self.published(make)) == {(i.collection_id, i.id) for i in sample_crawl.items}

    def test_a_kept_item_that_went_missing_is_published_again(self, make, sample_crawl):
        run(make(), sample_crawl.collections, sample_crawl.items)
        lost = sample_crawl.items[3]
        self.lose(make, (lost.collection_id, lost.id))
        assert (lost.collection_id, lost.id) not in self.published(make)
        run(make(), sample_crawl.collections, kept=[json_of(i) for i in sample_crawl.items], may_delete=everything)
        assert self.published(make)[(lost.collection_id, lost.id)] == lost.properties

    @pytest.mark.parametrize("may_delete", [delete_nothing, lambda c: c == "cmip6"], ids=["default", "cmip6"])
    def test_items_not_published_again_leave_only_where_may_delete_allows(self, make, sample_crawl, may_delete):
        run(make(), sample_crawl.collections, sample_crawl.items)
        gone = {next(i for i in sample_crawl.items if i.collection_id == c) for c in ("cmip6", "ocean")}
        run(make(), sample_crawl.collections, [i for i in sample_crawl.items if i not in gone], may_delete=may_delete)
        expected = {
            (i.collection_id, i.id) for i in sample_crawl.items if i not in gone or not may_delete(i.collection_id)
        }
        assert set(self.published(make)) == expected

    def test_an_item_it_refuses_is_refused_alone_and_nothing_earlier_is_lost(self, make, sample_crawl):
        """Refused by `add` or later (in a batch): the others are published; its collection counts
        as not fully published, so nothing leaves it, its own earlier version included."""
        run(make(), sample_crawl.collections, sample_crawl.items)
        earlier = self.published(make)
        cmip6 = [i for i in sample_crawl.items if i.collection_id == "cmip6"]
        bad, gone = cmip6[0], cmip6[1]
        again = [self.spoil(i) if i is bad else i for i in sample_crawl.items if i is not gone]
        report, refused = run(make(), sample_crawl.collections, again, may_delete=everything)
        assert refused == {(bad.collection_id, bad.id): self.refused_kind}
        assert self.published(make) == earlier, "its earlier version and the item not published again stay"

    def test_the_ledger_it_keeps_is_the_one_the_next_run_reads(self, make, sample_crawl):
        first = make()
        with first:
            assert first.earlier_ledger(SOURCES) is None
            first.finish(sample_crawl.collections)
            first.keep_ledger(SOURCES, b"the ledger of the first run")
        second = make()
        with second:
            assert second.earlier_ledger(SOURCES) == b"the ledger of the first run"


class TestStaticCatalogue(PublisherTests):
    refused_kind = "render-error"

    @pytest.fixture
    def make(self, tmp_path) -> Callable[[], Publisher]:
        root = tmp_path / "stac"
        publisher = lambda: Publication(StaticCatalog(str(root), delete_grace=0))  # noqa: E731
        publisher.root = root  # type: ignore[attr-defined]
        return publisher

    @staticmethod
    def _documents(make) -> Iterable[tuple[str, dict[str, Any]]]:
        """(path, JSON) of every collection and item linked from the root, as a reader walks them."""
        root: Path = make.root

        def read(path: str) -> dict[str, Any]:
            return json.loads((root / path).read_text())

        def linked(path: str, data: dict[str, Any], rel: str) -> list[str]:
            folder = posixpath.dirname(path)
            return [
                posixpath.normpath(posixpath.join(folder, link["href"])) for link in data["links"] if link["rel"] == rel
            ]

        if not (root / "catalog.json").exists():
            return
        for collection_path in linked("catalog.json", read("catalog.json"), "child"):
            collection = read(collection_path)
            yield collection_path, collection
            for item_path in linked(collection_path, collection, "item"):
                if (root / item_path).exists():  # a link to nothing publishes nothing
                    yield item_path, read(item_path)

    def published(self, make):
        return {(d["collection"], d["id"]): d["properties"] for _, d in self._documents(make) if d["type"] == "Feature"}

    def published_collections(self, make):
        return {d["id"] for _, d in self._documents(make) if d["type"] == "Collection"}

    def versions(self, make):
        return {
            (d.get("collection", ""), d["id"]): (make.root / path).stat().st_mtime_ns
            for path, d in self._documents(make)
        }

    def lose(self, make, key):
        (path,) = [p for p, d in self._documents(make) if (d.get("collection"), d["id"]) == key]
        (make.root / path).unlink()

    def spoil(self, item):
        item = item.clone()
        item.properties["unrenderable"] = object()  # no JSON for it
        return item


class TestPgstac(PublisherTests):
    refused_kind = "load-error"

    @pytest.fixture
    def make(self, pgstac_dsn) -> Callable[[], Publisher]:
        publisher = lambda: Ingest(pgstac_dsn)  # noqa: E731
        publisher.dsn = pgstac_dsn  # type: ignore[attr-defined]
        return publisher

    def published(self, make):
        with psycopg.connect(make.dsn) as conn:
            rows = conn.execute("SELECT collection, id, content->'properties' FROM pgstac.items")
            return {(c, i): properties for c, i, properties in rows}

    def published_collections(self, make):
        with psycopg.connect(make.dsn) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM pgstac.collections")}

    def versions(self, make):
        """Row versions (PostgreSQL's xmin) of the items and collections."""
        with psycopg.connect(make.dsn) as conn:
            items = conn.execute("SELECT collection, id, xmin::text FROM pgstac.items").fetchall()
            collections = conn.execute("SELECT '', id, xmin::text FROM pgstac.collections").fetchall()
            return {(c, i): xmin for c, i, xmin in items + collections}

    def lose(self, make, key):
        with psycopg.connect(make.dsn) as conn:
            conn.execute("DELETE FROM pgstac.items WHERE collection = %s AND id = %s", key)

    def spoil(self, item):
        item = item.clone()
        item.properties["title"] = "bad\x00title"  # PostgreSQL's text holds no NUL
        return item
