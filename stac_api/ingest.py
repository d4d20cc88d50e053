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


def load(
    dsn: str,
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    *,
    batch_size: int = 5000,
    sync: Callable[[str], bool] = never,
) -> LoadReport:
    """Upsert `collections` and `items`; `sync(id)` says whether that collection was fully crawled."""
    report = LoadReport()
    with PgstacDB(dsn=dsn) as db:
        loader = Loader(db=db)
        conn = db.connect()
        collection_dicts = [for_pgstac(c) for c in collections]
        ids = [c["id"] for c in collection_dicts]
        existing = {row[0]: row[1] for row in conn.execute("SELECT id, content FROM pgstac.collections WHERE id = ANY(%s)", (ids,))}
        for data in collection_dicts:
            if data["id"] in existing and not sync(data["id"]):
                _widen(data, existing[data["id"]] if isinstance(existing[data["id"]], dict) else orjson.loads(existing[data["id"]]))
        if collection_dicts:
            loader.load_collections(iter(collection_dicts), insert_mode=Methods.upsert)
        report.collections = len(collection_dicts)

        loaded_ids: dict[str, set[str]] = defaultdict(set)
        for batch in _batches((for_pgstac(i) for i in items), batch_size):
            loader.load_items(iter(batch), insert_mode=Methods.upsert)
            report.items += len(batch)
            for data in batch:
                loaded_ids[data["collection"]].add(data["id"])

        for collection_id in ids:
            if sync(collection_id):
                deleted = conn.execute(
                    "DELETE FROM pgstac.items WHERE collection = %s AND NOT (id = ANY(%s))",
                    (collection_id, sorted(loaded_ids[collection_id])),
                ).rowcount
                report.deleted += deleted
        report.queryables = queryables.refresh(conn, ids)
    return report
