"""Load STAC Collections and Items into pgstac with pypgstac.

Collections first, then items in batches, both in upsert mode: loading the same
crawl twice leaves the database as it was after the first load. Each batch is
one transaction (pypgstac's), so an interrupted load leaves whole batches and a
rerun completes it.

After the items: with `sync`, the items of a collection that this crawl did not
produce are deleted, but only for collections the crawl saw completely; then
queryables, property indexes and summaries are refreshed (see `queryables`).
Extents only grow unless the collection was synced (a partial load must not
shrink what other loads put there).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
import pystac
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
from pypgstac.migrate import Migrate
from pystac.link import HIERARCHICAL_LINKS

from loaders.spatial import union_bboxes

from . import queryables

# Links that describe a static catalogue's tree: the API makes its own.
STRUCTURAL_RELS = {"self", *HIERARCHICAL_LINKS}


def migrate(dsn: str) -> str:
    """Install or upgrade pgstac in the database; returns the pgstac version."""
    with PgstacDB(dsn=dsn) as db:
        return Migrate(db).run_migration()


def for_pgstac(obj: pystac.STACObject) -> dict[str, Any]:
    """The JSON pgstac stores: no tree links, absolute asset hrefs."""
    data = obj.to_dict(include_self_link=False, transform_hrefs=False)
    data["links"] = [link for link in data.get("links", []) if link.get("rel") not in STRUCTURAL_RELS]
    return data


@dataclass
class LoadReport:
    collections: int = 0
    items: int = 0
    deleted: int = 0
    queryables: dict[str, list[str]] = field(default_factory=dict)


def _batches(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch


def never(collection_id: str) -> bool:
    return False


def _widen(data: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
    """`data` with extents that also cover what the database already had."""
    try:
        bboxes = data["extent"]["spatial"]["bbox"][:1] + existing["extent"]["spatial"]["bbox"][:1]
        data["extent"]["spatial"]["bbox"] = [union_bboxes(bboxes)]
        new, old = data["extent"]["temporal"]["interval"][0], existing["extent"]["temporal"]["interval"][0]
        starts = [t for t in (new[0], old[0]) if t]
        ends = [t for t in (new[1], old[1]) if t]
        data["extent"]["temporal"]["interval"] = [[min(starts, key=pystac.utils.str_to_datetime) if starts else None, max(ends, key=pystac.utils.str_to_datetime) if ends else None]]
    except (KeyError, IndexError, TypeError):
        pass
    return data


def placeholder(collection_id: str) -> dict[str, Any]:
    """A collection row for items to be loaded into before its document is known."""
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "description": "Being loaded.",
        "license": "other",
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }


class Ingest:
    """A load in progress: `add` items as they come (written in batches), then `finish`.

    Items need their collection's row (pgstac partitions by collection), but a
    collection's document is complete only when all its items are known: a
    collection new to the database gets a placeholder row first, replaced by its
    document at `finish`. Memory holds one batch plus the ids loaded per collection.
    """

    def __init__(self, dsn: str, *, batch_size: int = 5000):
        self.db = PgstacDB(dsn=dsn)
        self.loader = Loader(db=self.db)
        self.conn = self.db.connect()
        self.batch_size = batch_size
        self.report = LoadReport()
        self.loaded_ids: dict[str, set[str]] = defaultdict(set)
        self._batch: list[dict[str, Any]] = []

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, *exc) -> None:
        self.db.close()

    def add(self, item: pystac.Item) -> None:
        data = for_pgstac(item)
        collection_id = data["collection"]
        if collection_id not in self.loaded_ids:
            self.loader.load_collections(iter([placeholder(collection_id)]), insert_mode=Methods.ignore)
            self.loaded_ids[collection_id] = set()
        self.loaded_ids[collection_id].add(data["id"])
        self._batch.append(data)
        if len(self._batch) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self.loader.load_items(iter(self._batch), insert_mode=Methods.upsert)
            self.report.items += len(self._batch)
            self._batch = []

    def finish(self, collections: Iterable[pystac.Collection], *, sync: Callable[[str], bool] = never) -> LoadReport:
        """Collection documents, then `sync` deletions, then queryables and summaries."""
        self._flush()
        collection_dicts = [for_pgstac(c) for c in collections]
        ids = [c["id"] for c in collection_dicts]
        existing = {row[0]: row[1] for row in self.conn.execute("SELECT id, content FROM pgstac.collections WHERE id = ANY(%s)", (ids,))}
        for data in collection_dicts:
            old = existing.get(data["id"])
            if old is not None and not sync(data["id"]):
                old = old if isinstance(old, dict) else orjson.loads(old)
                if old.get("description") != "Being loaded.":
                    _widen(data, old)
        if collection_dicts:
            self.loader.load_collections(iter(collection_dicts), insert_mode=Methods.upsert)
        self.report.collections = len(collection_dicts)
        for collection_id in ids:
            if sync(collection_id):
                self.report.deleted += self.conn.execute(
                    "DELETE FROM pgstac.items WHERE collection = %s AND NOT (id = ANY(%s))",
                    (collection_id, sorted(self.loaded_ids.get(collection_id, ()))),
                ).rowcount
        self.report.queryables = queryables.refresh(self.conn, ids)
        return self.report


def load(
    dsn: str,
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    *,
    batch_size: int = 5000,
    sync: Callable[[str], bool] = never,
) -> LoadReport:
    """Upsert `collections` and `items`; `sync(id)` says whether that collection was fully crawled."""
    with Ingest(dsn, batch_size=batch_size) as ingest:
        collections = list(collections)
        # Collections first when they are known up front (their documents, not placeholders).
        if collections:
            ingest.loader.load_collections(iter([for_pgstac(c) for c in collections]), insert_mode=Methods.ignore)
            for c in collections:
                ingest.loaded_ids.setdefault(c.id, set())
        for item in items:
            ingest.add(item)
        return ingest.finish(collections, sync=sync)

