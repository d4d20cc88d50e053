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

import hashlib
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
import psycopg
import pystac
from pypgstac.load import Loader, Methods
from pystac.link import HIERARCHICAL_LINKS

from common.spatial import union_bboxes

from . import queryables, search_order
from .db import pgstac_database

# Links that describe a static catalogue's tree: the API makes its own.
STRUCTURAL_RELS = {"self", *HIERARCHICAL_LINKS}


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
    # Where `finish` spent its time (seconds by step): for benchmarks and operators.
    seconds: dict[str, float] = field(default_factory=dict)
    # What the operator should know, though the load succeeded.
    notes: list[str] = field(default_factory=list)


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
    """A load in progress: `add` items as they come, then `finish`.

    Items need their collection's row (pgstac partitions by collection), but a
    collection's document is complete only when all its items are known: a
    collection new to the database gets a placeholder row first, replaced by its
    document at `finish`.

    pypgstac loads a batch one partition (collection) at a time, so a batch of
    items from a thousand collections costs a thousand small transactions. Items
    are therefore grouped by collection: a collection's items are loaded once
    `batch_size` of them are waiting; the others wait in memory up to
    `memory_items`, then on disk (one file per collection), and are loaded
    collection by collection at `finish`. Memory stays bounded whatever the load.
    """

    def __init__(self, dsn: str, *, batch_size: int = 5000, memory_items: int = 20_000, connections: int = 4):
        self.db = pgstac_database(dsn)
        self.loader = Loader(db=self.db)
        self.conn = self.db.connect()
        # Collections are independent partitions: several are loaded at once, each
        # through its own connection (the work happens in PostgreSQL, not here).
        self._loaders = queue.Queue()
        self._databases = [pgstac_database(dsn) for _ in range(connections)]
        for database in self._databases:
            self._loaders.put(Loader(db=database))
        self._pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="pgstac-load")
        self._loading: list[Future] = []
        self.batch_size = batch_size
        self.memory_items = memory_items
        self.report = LoadReport()
        self.loaded_ids: dict[str, set[str]] = defaultdict(set)
        self._waiting: dict[str, list[bytes]] = defaultdict(list)
        self._waiting_count = 0
        self._spilled: dict[str, int] = defaultdict(int)  # items on disk, per collection
        self._spill_dir = tempfile.TemporaryDirectory(prefix="zarr-stac-ingest-")
        self._known: set[str] = set()  # collections that have a row
        self.facets: dict[str, dict[str, queryables.FacetStats]] = defaultdict(dict)
        self._count_lock = threading.Lock()
        try:
            self._ensure_search_order()
        except BaseException:
            self.__exit__()  # the pools opened above: a database without pgstac must not keep them
            raise

    def _ensure_search_order(self) -> None:
        """A database migrated by pypgstac alone lacks the index of the search order:
        made here, before the items arrive, when this role may."""
        try:
            if search_order.ensure(self.conn):
                self.report.notes.append(f"built the index of pgstac's search order ({search_order.NAME}), missing from this database")
        except psycopg.errors.InsufficientPrivilege:
            self.report.notes.append(
                f"this role may not index pgstac.items: searches stay slow where many items share a start time until "
                f"the owner of pgstac runs `zarr-stac db migrate` (it adds {search_order.NAME})"
            )

    def __enter__(self) -> Ingest:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._spill_dir.cleanup()
        for database in self._databases:
            database.close()
        self.db.close()

    def add(self, item: pystac.Item | dict[str, Any]) -> None:
        data = for_pgstac(item) if isinstance(item, pystac.STACObject) else item
        collection_id = data["collection"]
        self.loaded_ids[collection_id].add(data["id"])
        queryables.observe(self.facets[collection_id], data.get("properties", {}))
        waiting = self._waiting[collection_id]
        waiting.append(orjson.dumps(data))
        self._waiting_count += 1
        if len(waiting) + self._spilled[collection_id] >= self.batch_size:
            self._load_collection(collection_id)
        elif self._waiting_count >= self.memory_items:
            self._spill()

    def _spill_path(self, collection_id: str) -> str:
        return os.path.join(self._spill_dir.name, hashlib.md5(collection_id.encode(), usedforsecurity=False).hexdigest() + ".ndjson")

    def _spill(self) -> None:
        for collection_id, waiting in self._waiting.items():
            if waiting:
                with open(self._spill_path(collection_id), "ab") as handle:
                    handle.write(b"\n".join(waiting) + b"\n")
                self._spilled[collection_id] += len(waiting)
        self._waiting.clear()
        self._waiting_count = 0

    def _ensure_rows(self, collection_ids: Iterable[str]) -> None:
        missing = [cid for cid in collection_ids if cid not in self._known]
        if missing:
            self.loader.load_collections(iter([placeholder(cid) for cid in missing]), insert_mode=Methods.ignore)
            self._known.update(missing)

    def _load_collection(self, collection_id: str) -> None:
        """Everything waiting for one collection, in batches of one partition."""
        self._ensure_rows([collection_id])
        rows: list[bytes] = []
        if self._spilled.pop(collection_id, 0):
            path = self._spill_path(collection_id)
            with open(path, "rb") as handle:
                rows.extend(line.rstrip(b"\n") for line in handle if line.strip())
            os.remove(path)
        waiting = self._waiting.pop(collection_id, [])
        self._waiting_count -= len(waiting)
        rows.extend(waiting)
        self._loading = [f for f in self._loading if not f.done() or f.result() is None]
        while len(self._loading) >= 2 * self._pool._max_workers:  # bounded: memory stays flat
            self._loading.pop(0).result()
        self._loading.append(self._pool.submit(self._load_rows, rows))

    def _load_rows(self, rows: list[bytes]) -> None:
        loader = self._loaders.get()
        try:
            for batch in _batches(rows, self.batch_size):
                loader.load_items((orjson.loads(row) for row in batch), insert_mode=Methods.upsert)
                with self._count_lock:
                    self.report.items += len(batch)
        finally:
            self._loaders.put(loader)

    def _flush(self) -> None:
        for collection_id in sorted(set(self._waiting) | set(self._spilled)):
            self._load_collection(collection_id)
        for future in self._loading:
            future.result()  # a failed batch fails the load, with its error
        self._loading = []

    def finish(self, collections: Iterable[pystac.Collection], *, sync: Callable[[str], bool] = never) -> LoadReport:
        """Collection documents, then `sync` deletions, then queryables and summaries."""
        step = time.perf_counter()
        self._flush()
        self.report.seconds["items"] = time.perf_counter() - step
        step = time.perf_counter()
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
        observed = {cid: self.facets.get(cid, {}) for cid in ids}
        parallel = queryables.can_build_in_parallel(self.conn)
        self.report.seconds["collections"] = time.perf_counter() - step
        step = time.perf_counter()
        self.report.queryables = queryables.refresh(self.conn, observed, queue_index_builds=parallel)
        self.report.seconds["queryables"] = time.perf_counter() - step
        if parallel:
            step = time.perf_counter()
            self._build_queued_indexes()
            self.report.seconds["indexes"] = time.perf_counter() - step
        return self.report

    def _build_queued_indexes(self) -> None:
        """The index builds the registration queued, on all loader connections at once."""
        groups = queryables.queued_by_partition(self.conn)
        shares: list[list[str]] = [[] for _ in self._databases]
        for n, group in enumerate(sorted(groups, key=len, reverse=True)):
            shares[n % len(shares)].extend(group)
        builds = [self._pool.submit(queryables.run_queued, database.connect(), share) for database, share in zip(self._databases, shares)]
        for build in builds:
            build.result()
        queryables.run_queue_to_the_end(self.conn)


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
            ingest._known.update(c.id for c in collections)
            for c in collections:
                ingest.loaded_ids.setdefault(c.id, set())
        for item in items:
            ingest.add(item)
        return ingest.finish(collections, sync=sync)

