"""Load STAC Collections and Items into pgstac with pypgstac.

Collections first, then items in batches, both in upsert mode: loading the same
crawl twice leaves the database as it was after the first load. Each batch is
one transaction (pypgstac's), so an interrupted load leaves whole batches and a
rerun completes it.

Items of stores that did not change since the last load come to `keep`, not `add`: they
are not loaded again (unless they are missing from the database), only counted as this
load's. The crawl's ledger is kept beside (`earlier_ledger`, `keep_ledger`: see `ledger`).
A collection document that did not change is not written again either.

After the items: the items of a collection that this load did not bring are deleted
where `may_delete(collection_id)` says so (a crawl says it for the collections it
saw completely); then queryables, property indexes and summaries are refreshed
(see `queryables`). Extents only grow unless items may be deleted (a partial load
must not shrink what other loads put there).

An Item that pgstac or PostgreSQL refuses fails its batch only: the batch is loaded
again in halves and that Item is left out, in `LoadReport.rejected` (see `workers`);
its collection then counts as partially loaded (nothing deleted from it, its earlier
version of that Item stays).

`Ingest` keeps the publisher contract of `zarr_stac.common.publishing`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
import psycopg
import pystac
from psycopg import Connection
from pypgstac.load import Loader, Methods

from zarr_stac.common.rejection import Rejection
from zarr_stac.common.stac import MayDelete, delete_nothing
from zarr_stac.common.values import plain

from .. import collection_bounds, search_order
from ..db import open_pgstac
from . import bounds, ledger, partitions, queryables
from .documents import for_pgstac, is_placeholder, placeholder, widen
from .pending import PendingItems
from .workers import Workers

MAX_VALUE_NOTES = 20  # Items whose changed values the report lists


@dataclass
class LoadReport:
    collections: int = 0
    items: int = 0
    kept: int = 0  # items of unchanged stores, in the database already: not loaded again
    deleted: int = 0
    queryables: dict[str, list[str]] = field(default_factory=dict)
    # Where `finish` spent its time (seconds by step): for benchmarks and operators.
    seconds: dict[str, float] = field(default_factory=dict)
    # What the operator should know, though the load succeeded.
    notes: list[str] = field(default_factory=list)
    # Items pgstac or PostgreSQL refused (the others loaded): not in the database.
    rejected: list[Rejection] = field(default_factory=list)


class Ingest:
    """A load in progress: `open` (or `with`), `add` items as they come, then `finish`.

    Items need their collection's row (pgstac partitions by collection), but a
    collection's document is complete only when all its items are known: a
    collection new to the database gets a placeholder row first, replaced by its
    document at `finish` (unless `add_collections` gave it up front).

    Items wait per collection (`PendingItems`) until a collection has `batch_size`
    of them, then load in the background (`Workers`); at `finish`, whatever still
    waits is loaded collection by collection.
    """

    def __init__(self, dsn: str, *, batch_size: int = 5000, memory_items: int = 20_000, connections: int = 4):
        # Nothing is opened here: `open` does it, and `close` undoes it whatever failed.
        self.dsn = dsn
        self.report = LoadReport()
        self.loaded_ids: dict[str, set[str]] = defaultdict(set)
        self.facets: dict[str, dict[str, queryables.FacetStats]] = defaultdict(dict)
        self._pending = PendingItems(batch_size=batch_size, memory_items=memory_items)
        self._workers = Workers(dsn, connections=connections, batch_size=batch_size)
        self._has_row: set[str] = set()  # collections that have a row in the database
        self._present: dict[str, set[str]] = {}  # collection -> ids in the database (asked by `keep`)
        self._resources = ExitStack()
        self._conn: Connection | None = None
        self._loader: Loader | None = None
        self._values_noted = 0  # Items whose values `plain` had to change
        self._bounds: bounds.FacetValues | None = None  # None: this role may not keep bounds
        self._times = partitions.TimeRanges()  # of the items waiting, for their partitions

    # -- lifecycle ------------------------------------------------------------------
    def open(self) -> Self:
        """Connect (one connection for collections and queryables, `connections` for items)
        and make sure of the search-order index. Whatever opened is closed again if this fails."""
        with ExitStack() as stack:
            db = stack.enter_context(open_pgstac(self.dsn))
            self._loader, self._conn = Loader(db=db), db.connect()
            stack.callback(self._pending.close)
            self._workers.open()
            stack.callback(self._workers.close)
            self._ensure_search_order()
            self._ensure_bounds()
            self._resources = stack.pop_all()
        return self

    def close(self) -> None:
        """Stop the workers, remove spilled items and close every pool, whatever raises."""
        self._resources.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_search_order(self) -> None:
        """A database migrated by pypgstac alone lacks the index of the search order:
        made here, before the items arrive, when this role may."""
        try:
            if search_order.ensure(self.conn):
                self.report.notes.append(
                    f"built the index of pgstac's search order ({search_order.NAME}), missing from this database"
                )
        except psycopg.errors.InsufficientPrivilege:
            self.report.notes.append(
                f"this role may not index pgstac.items: searches stay slow where many items share a start time until "
                f"the owner of pgstac runs `zarr-stac db migrate` (it adds {search_order.NAME})"
            )

    def _ensure_bounds(self) -> None:
        """The table of collection bounds the API narrows searches with (`collection_bounds`)."""
        try:
            collection_bounds.ensure(self.conn)
            self._bounds = bounds.FacetValues()
        except psycopg.errors.InsufficientPrivilege:
            self.report.notes.append(
                f"this role may not add {collection_bounds.TABLE} (and its triggers on pgstac.items): searches that "
                f"name no collection are not narrowed until the owner of pgstac runs `zarr-stac db migrate`"
            )

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "Ingest.open() first (or use it in a `with`)"
        return self._conn

    @property
    def loader(self) -> Loader:
        assert self._loader is not None, "Ingest.open() first (or use it in a `with`)"
        return self._loader

    # -- while the items come -------------------------------------------------------
    def add_collections(self, collections: Iterable[pystac.Collection]) -> None:
        """Collections known before their items: their own documents become their rows (no
        placeholders). A collection already in the database keeps its document until `finish`."""
        documents = [for_pgstac(c) for c in collections if c.id not in self._has_row]
        if documents:
            self.loader.load_collections(iter(documents), insert_mode=Methods.ignore)
            self._has_row.update(d["id"] for d in documents)

    def expect(self, placements: Iterable[tuple[str, str]]) -> None:
        """The Items to come: nothing to prepare (pgstac tells ids apart by case, and `add` takes
        any order), so `placements` is not even iterated."""

    def add(self, item: pystac.Item | dict[str, Any]) -> None:
        data = for_pgstac(item) if isinstance(item, pystac.STACObject) else item
        collection_id = data["collection"]
        try:
            line = orjson.dumps(data)
        except TypeError:  # values JSON has but orjson refuses (an Item of a static catalogue)
            notes: list[str] = []
            data = plain(data, notes)
            line = orjson.dumps(data)
            self._note_values(collection_id, data["id"], notes)
        self.loaded_ids[collection_id].add(data["id"])
        queryables.observe(self.facets[collection_id], data.get("properties", {}))
        if self._bounds is not None:
            self._bounds.observe(collection_id, data.get("properties", {}))
        self._times.observe(collection_id, data.get("properties", {}))
        if self._pending.add(collection_id, line):
            self._load_collection(collection_id)

    def _note_values(self, collection_id: str, item_id: str, notes: list[str]) -> None:
        """The values `zarr_stac.common.values.plain` changed in an Item, in the report (the first few)."""
        self._values_noted += 1
        if self._values_noted <= MAX_VALUE_NOTES:
            self.report.notes.append(f"item {item_id} of collection {collection_id}: {'; '.join(notes)}")
        elif self._values_noted == MAX_VALUE_NOTES + 1:
            self.report.notes.append("more items had values dropped or replaced (not listed)")

    def keep(self, item: dict[str, Any]) -> None:
        """An Item the database has from an earlier load (its store did not change): counted as
        this load's (for `may_delete` and the queryables), loaded only if it is missing."""
        collection_id, item_id = item["collection"], item["id"]
        present = self._present.get(collection_id)
        if present is None:
            query = "SELECT id FROM pgstac.items WHERE collection = %s"
            present = self._present[collection_id] = {row[0] for row in self.conn.execute(query, (collection_id,))}
        if item_id not in present:
            self.add(for_pgstac(item))
            return
        self.loaded_ids[collection_id].add(item_id)
        self._has_row.add(collection_id)
        queryables.observe(self.facets[collection_id], item.get("properties", {}))
        if self._bounds is not None:
            self._bounds.observe(collection_id, item.get("properties", {}))
        self.report.kept += 1

    def earlier_ledger(self, sources: str) -> bytes | None:
        """The crawl's ledger the last load of these sources kept (None: every store is read)."""
        try:
            return ledger.read(self.conn, sources)
        except psycopg.errors.InsufficientPrivilege:
            self._no_ledger("read")
            return None

    def keep_ledger(self, sources: str, data: bytes) -> None:
        """This crawl's ledger, for the next load of these sources (after `finish`)."""
        try:
            ledger.save(self.conn, sources, data)
        except psycopg.errors.InsufficientPrivilege:
            self._no_ledger("create or write")

    def _no_ledger(self, what: str) -> None:
        note = (
            f"this role may not {what} {ledger.TABLE}: every load reads every store again (the owner of the "
            f"database can create it, or grant this role its use)"
        )
        if note not in self.report.notes:
            self.report.notes.append(note)

    def _load_collection(self, collection_id: str) -> None:
        """Everything waiting for one collection, into its row (a placeholder if need be)."""
        if collection_id not in self._has_row:
            self.loader.load_collections(iter([placeholder(collection_id)]), insert_mode=Methods.ignore)
            self._has_row.add(collection_id)
        self._workers.load(self._pending.take(collection_id))

    # -- finish, step by step -------------------------------------------------------
    def finish(self, collections: Iterable[pystac.Collection], *, may_delete: MayDelete = delete_nothing) -> LoadReport:
        """The items still waiting, the collection documents, the deletions `may_delete`
        allows, then queryables and summaries (and the indexes they need)."""
        with self._timed("partitions"):
            self._make_partitions()
        with self._timed("items"):
            self._load_waiting_items()
        may_delete = partial_where_refused(may_delete, self.report.rejected)
        with self._timed("collections"):
            documents = [for_pgstac(c) for c in collections]
            self._upsert_collections(documents, may_delete)
            ids = [d["id"] for d in documents]
            self._delete_items_not_loaded(ids, may_delete)
            parallel = queryables.can_build_in_parallel(self.conn)
            defer = queryables.may_defer_trigger(self.conn)
        with self._timed("queryables"):
            observed = {cid: self.facets.get(cid, {}) for cid in ids}
            self.report.queryables = queryables.refresh(
                self.conn, observed, queue_index_builds=parallel, defer_trigger=defer
            )
        if not defer and self.report.queryables:
            self.report.notes.append(
                "this role does not own pgstac.queryables: registering queryables let pgstac's trigger check the "
                "indexes of each collection's partition one by one (about 20 ms each); a role that owns it does "
                "them in one pass"
            )
        if parallel:
            with self._timed("indexes"):
                self._build_queued_indexes()
        if self._bounds is not None:
            with self._timed("bounds"):
                seen = {cid: len(item_ids) for cid, item_ids in self.loaded_ids.items()}
                refused = {r.collection_id for r in self.report.rejected}
                try:
                    bounds.record(self.conn, [*ids, *self.loaded_ids], self._bounds, seen, refused)
                except psycopg.errors.InsufficientPrivilege:
                    self.report.notes.append(
                        f"this role may not write {collection_bounds.TABLE}: searches that name no collection are "
                        f"not narrowed to these collections' bounds (the owner of the database can grant it)"
                    )
                except psycopg.Error as exc:  # the items are in: bounds left unknown, never a failed load
                    self.report.notes.append(
                        f"the bounds of these collections were not recorded ({type(exc).__name__}): searches are "
                        f"not narrowed by them until the next load"
                    )
        return self.report

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.report.seconds[step] = time.perf_counter() - start

    def _make_partitions(self) -> None:
        """The rows and partitions of the collections whose items still wait, in one pass each
        (rather than one by one as they load: see `partitions`)."""
        waiting = self._pending.collection_ids()
        missing = [placeholder(cid) for cid in waiting if cid not in self._has_row]
        if missing:
            self.loader.load_collections(iter(missing), insert_mode=Methods.ignore)
            self._has_row.update(d["id"] for d in missing)
        partitions.create_missing(self.conn, waiting, self._times)

    def _load_waiting_items(self) -> None:
        for collection_id in self._pending.collection_ids():
            self._load_collection(collection_id)
        try:
            self._workers.wait()  # a failed batch fails the load, with its error
        finally:
            self.report.items = self._workers.items_loaded
            self.report.rejected = list(self._workers.rejected)

    def _upsert_collections(self, documents: list[dict[str, Any]], may_delete: MayDelete) -> None:
        """Each document replaces its row; where items are not deleted (a partial load), the
        extents also keep covering what the row had (unless the row is a placeholder)."""
        ids = [d["id"] for d in documents]
        query = "SELECT id, content FROM pgstac.collections WHERE id = ANY(%s)"
        existing = {
            cid: content if isinstance(content, dict) else orjson.loads(content)
            for cid, content in self.conn.execute(query, (ids,))
        }
        changed = []
        for data in documents:
            old = existing.get(data["id"])
            if old is not None and not may_delete(data["id"]) and not is_placeholder(old):
                widen(data, old)
            if old is None or orjson.dumps(old, option=orjson.OPT_SORT_KEYS) != orjson.dumps(
                data, option=orjson.OPT_SORT_KEYS
            ):
                changed.append(data)
        if changed:
            self.loader.load_collections(iter(changed), insert_mode=Methods.upsert)
        self.report.collections = len(documents)

    def _delete_items_not_loaded(self, collection_ids: list[str], may_delete: MayDelete) -> None:
        for collection_id in collection_ids:
            if may_delete(collection_id):
                self.report.deleted += self.conn.execute(
                    "DELETE FROM pgstac.items WHERE collection = %s AND NOT (id = ANY(%s))",
                    (collection_id, sorted(self.loaded_ids.get(collection_id, ()))),
                ).rowcount

    def _build_queued_indexes(self) -> None:
        """The index builds the registration queued, on all worker connections at once."""
        groups = queryables.queued_by_partition(self.conn)
        shares: list[list[str]] = [[] for _ in range(self._workers.connections)]
        for n, group in enumerate(sorted(groups, key=len, reverse=True)):
            shares[n % len(shares)].extend(group)
        self._workers.on_each_connection(queryables.run_queued, shares)
        queryables.run_queue_to_the_end(self.conn)


def partial_where_refused(may_delete: MayDelete, rejected: Iterable[Rejection]) -> MayDelete:
    """`may_delete`, but never for a collection with an Item refused: it is loaded partially."""
    refused = {r.collection_id for r in rejected}
    return lambda collection_id: collection_id not in refused and may_delete(collection_id)


def load(
    dsn: str,
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    *,
    batch_size: int = 5000,
    may_delete: MayDelete = delete_nothing,
) -> LoadReport:
    """Upsert `collections` and `items`; `may_delete(id)` says whether the items of that
    collection that are not among `items` are gone (it was crawled completely)."""
    collections = list(collections)
    with Ingest(dsn, batch_size=batch_size) as ingest:
        ingest.add_collections(collections)  # their documents, not placeholders
        for item in items:
            ingest.add(item)
        return ingest.finish(collections, may_delete=may_delete)
