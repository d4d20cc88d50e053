"""One publication of a static catalogue: what changed is written, what left is deleted after a grace period.

Publishing is incremental and safe for readers:

- an object is written only when its bytes differ from what is there (compared
  by MD5: the ETag an object store lists, or the file's own hash), so a rerun
  with nothing changed writes nothing;
- items are written first, then collections, then the root; every object is
  replaced whole (a rename for files, one PUT for objects). The root links to an
  immutable, content-addressed copy of each collection document
  (`<collection>/collection-<hash>.json`, beside the stable `collection.json`),
  so replacing the root switches atomically from one snapshot to the next: a
  reader that started from the old root walks the old catalogue to the end;
- objects that no longer belong are unlinked first and deleted only after a grace
  period (`delete_grace`, 10 minutes by default, tracked in
  `.zarr-stac-pending-deletes.json`), so that a reader still holding an old
  collection document finds every item it links; and only from collections the
  caller says may be pruned (`may_delete`: the crawl saw all of their stores). The
  items of other collections that this publication lacks are kept, and stay linked.

A crawl's ledger (`earlier_ledger`, `keep_ledger`) sits at the root; the Items of stores that
did not change come back through `add` as JSON, are rendered again and, being the same bytes,
not written.

One Item that cannot be published does not stop the others: an Item whose document
cannot be made, or that would land on another's path, is refused by `add`
(`ItemRejected`); one whose object the destination refuses (a name too long, ...) is
in `report.rejected` (writes go in batches). Either way it is not linked, its
collection is treated as not fully crawled (nothing deleted, earlier items kept, its
own earlier version too), and the caller reports it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import orjson
import pystac

from common.layout import safe_id
from common.rejection import DUPLICATE_ID, RENDER_ERROR, WRITE_ERROR, ItemRejected, Rejection, one_line
from common.spatial import union_bboxes
from common.stac import MayDelete, delete_nothing, item_interval, union_interval

from .geoparquet import GeoparquetRows
from .items import ItemSource, item_collection_id, item_dict, item_id, item_title
from .paths import (
    CATALOG_FILE,
    ITEM_PATH,
    JSON_TYPE,
    LEDGER_FILE,
    LEDGER_TYPE,
    PARQUET_TYPE,
    PENDING_FILE,
    SNAPSHOT_PATH,
    collection_path,
    geoparquet_path,
    md5,
    snapshot_path,
)

if TYPE_CHECKING:
    from .catalog import StaticCatalog

WRITE_BATCH = 500
DEFAULT_DELETE_GRACE = 600.0  # seconds


@dataclass
class WriteReport:
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    kept: int = 0  # earlier items kept because their collection was not fully crawled
    pending: int = 0  # unlinked objects waiting for their grace period before deletion
    # Items the destination refused after `add` took them (see Publication): not published.
    rejected: list[Rejection] = field(default_factory=list)


class Publication:
    """Items written as they come (in batches), collections and root at `finish`.

    Memory holds one batch of JSON, and per collection the ids and titles of its
    items (for the collection's links), whatever the number of items.
    """

    def __init__(self, catalog: StaticCatalog):
        self.catalog = catalog
        self.destination = catalog.destination
        self.report = WriteReport()
        self.existing = self.destination.inventory()  # {path: MD5 or None} published before
        self.pending = self._read_pending()  # {path: unlinked since} of earlier publications
        self.published: set[str] = {CATALOG_FILE}
        self.members: dict[str, dict[str, str | None]] = {}  # collection -> {item id: title}
        self._paths: dict[str, str] = {}  # item path -> item id (two ids, one path: refused)
        self._batch: dict[str, bytes] = {}
        self._batch_items: dict[str, tuple[str, str, dict[str, Any] | None]] = {}  # path -> (collection, id, row)
        self._incomplete: set[str] = set()  # collections (ids and folders) with an Item refused
        self._geoparquet = GeoparquetRows()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._geoparquet.close()

    def add(self, item: ItemSource, collection_id: str | None = None) -> None:
        """Publish `item`; `ItemRejected` when this one cannot be (the publication goes on)."""
        collection_id = collection_id or item_collection_id(item)
        if not collection_id:
            raise ValueError(f"item {item_id(item)!r} has no collection")
        try:
            path, data = self.catalog.render_item(item, collection_id)
        except Exception as exc:  # noqa: BLE001 - a value JSON cannot hold, an id no path can: this item only
            self._mark_incomplete(collection_id)
            raise ItemRejected(RENDER_ERROR, one_line(exc)) from exc
        if self._paths.get(path, item_id(item)) != item_id(item):
            self._mark_incomplete(collection_id)
            raise ItemRejected(
                DUPLICATE_ID,
                f"items {self._paths[path]!r} and {item_id(item)!r} of collection {collection_id!r}"
                f" would both be written to {path}",
            )
        self._paths[path] = item_id(item)
        self.members.setdefault(collection_id, {})[item_id(item)] = item_title(item)
        self._batch[path] = data
        self._batch_items[path] = (collection_id, item_id(item), item_dict(item) if self.catalog.geoparquet else None)
        self.published.add(path)
        if len(self._batch) >= WRITE_BATCH:
            self._flush()

    def finish(
        self, collections: Iterable[pystac.Collection], *, may_delete: MayDelete = delete_nothing
    ) -> WriteReport:
        """Collections (given now: their extents are known only at the end), root, deletions."""
        collections = {c.id: c for c in collections}
        for cid in self.members:
            if cid not in collections:
                raise ValueError(f"items were published in collection {cid!r}, which is not being published")
        self._flush()  # first: an item refused now keeps its collection from being pruned

        def complete(collection_id: str) -> bool:
            return collection_id not in self._incomplete and may_delete(collection_id)

        self._keep_earlier(collections, complete)
        self._flush()
        for cid in self._geoparquet.collections():
            path = geoparquet_path(cid)
            self.published.add(path)
            self._write_changed({path: self._geoparquet.parquet(cid)}, PARQUET_TYPE)
        snapshots = self._write_collections(collections)
        linked = [c for cid, c in collections.items() if cid in snapshots]
        self._write_changed({CATALOG_FILE: self.catalog.render_root(linked, snapshots)})
        self._retire(complete)
        return self.report

    # -- the crawl's ledger (see loaders.ledger) ---------------------------------------------
    def earlier_ledger(self) -> bytes | None:
        """The ledger the last publication kept, if any."""
        return self.destination.read(LEDGER_FILE) if LEDGER_FILE in self.existing else None

    def keep_ledger(self, data: bytes) -> None:
        """Keep this crawl's ledger beside the catalogue (after `finish`: it vouches for what is
        published); written only when it changed."""
        self.published.add(LEDGER_FILE)
        self._write_changed({LEDGER_FILE: data}, LEDGER_TYPE)

    # -- writing -------------------------------------------------------------------------
    def _flush(self) -> None:
        """The batch of items; those the destination refuses are unlinked and reported."""
        batch, items = self._batch, self._batch_items
        self._batch, self._batch_items = {}, {}
        refused = self._write_changed(batch, refusable=True)
        for path, (collection_id, member_id, row) in items.items():
            if path in refused:
                self._refuse(path, collection_id, member_id, refused[path])
            elif row is not None:
                self._geoparquet.add(collection_id, row)

    def _refuse(self, path: str, collection_id: str, member_id: str, error: OSError) -> None:
        """An item whose object was refused: not linked, and whatever was at its path stays
        (its collection is no longer complete, so `_keep_earlier` keeps its earlier version)."""
        self.published.discard(path)
        self._paths.pop(path, None)
        self.members.get(collection_id, {}).pop(member_id, None)
        self._mark_incomplete(collection_id)
        if not any(r.collection_id == collection_id and r.item_id == member_id for r in self.report.rejected):
            self.report.rejected.append(Rejection(collection_id, member_id, WRITE_ERROR, one_line(error)))

    def _mark_incomplete(self, collection_id: str) -> None:
        self._incomplete.add(collection_id)
        try:
            self._incomplete.add(safe_id(collection_id))  # deletions are decided by folder
        except ValueError:
            pass

    def _write_changed(
        self, objects: Mapping[str, bytes], content_type: str = JSON_TYPE, *, refusable: bool = False
    ) -> dict[str, OSError]:
        """Write the objects whose bytes differ from what is published; count the others as unchanged.

        {path: error} of the objects the destination refused for a reason of their own; unless
        `refusable` (items), such a refusal is raised: the publication cannot go on without them."""
        changed = {p: data for p, data in objects.items() if p not in self.existing or self.existing[p] != md5(data)}
        self.report.unchanged += len(objects) - len(changed)
        refused = self.destination.write_many(changed, self.existing, content_type)
        self.report.written += len(changed) - len(refused)
        if refused and not refusable:
            raise next(iter(refused.values()))
        return refused

    def _write_collections(self, collections: Mapping[str, pystac.Collection]) -> dict[str, str]:
        """Each collection twice, once its items are all in place; {collection id: snapshot path}.

        At its stable URL and at an immutable, content-addressed one that the root links to.
        Switching the root is then the one atomic step between two snapshots: a reader that
        started from the old root keeps walking the old collections (kept, like every
        unlinked object, for the grace period).
        """
        snapshots = {}
        for cid, collection in collections.items():
            members = sorted(self.members.get(cid, {}).items())
            geoparquet = self.catalog.geoparquet and cid in self._geoparquet
            data = self.catalog.render_collection(collection, members, geoparquet)
            snapshot = snapshot_path(cid, data)
            snapshots[cid] = snapshot
            objects = {
                collection_path(cid): data,
                snapshot: self.catalog.render_collection(collection, members, geoparquet, path=snapshot),
            }
            refused = self._write_changed(objects, refusable=True)
            if refused:  # its folder's name is too long: every item of it was refused already
                snapshots.pop(cid)
                continue
            self.published.update(objects)
        return snapshots

    # -- what earlier publications left ----------------------------------------------------
    def _keep_earlier(self, collections: dict[str, pystac.Collection], may_delete: MayDelete) -> None:
        """Items published before, whose collection this crawl did not fully see, stay."""
        current = [p for p in self.existing if p not in self.pending]
        by_collection: dict[str, list[str]] = {}
        for path in current:
            match = ITEM_PATH.fullmatch(path)
            if match and path not in self.published:
                by_collection.setdefault(match["collection"], []).append(path)
        for collection_dir, missing in by_collection.items():
            if may_delete(collection_dir):
                continue
            cid = next((c for c in collections if safe_id(c) == collection_dir), None)
            if cid is None:  # a whole collection this crawl did not produce: keep it as it was
                document = orjson.loads(self.destination.read(collection_path(collection_dir)))
                old = pystac.Collection.from_dict(document, migrate=False)
                collections[old.id] = old
                cid = old.id
            kept = [orjson.loads(self.destination.read(p)) for p in missing]
            for data in kept:
                self.add(data, cid)
            self.report.kept += len(kept)
            collections[cid] = widened(collections[cid], kept)

    def _read_pending(self) -> dict[str, float]:
        """{path: since when} of the objects earlier publications unlinked and that are still there."""
        if PENDING_FILE not in self.existing:
            return {}
        pending = orjson.loads(self.destination.read(PENDING_FILE))
        return {p: float(t) for p, t in pending.items() if p in self.existing}

    def _retire(self, may_delete: MayDelete) -> None:
        """Objects no longer published: deleted once their grace period is over, listed as pending till then."""
        stale = [
            p
            for p in self.existing
            if p not in self.published and p != PENDING_FILE and (p in self.pending or deletable(p, may_delete))
        ]
        now = time.time()
        waiting = {p: self.pending.get(p, now) for p in stale}  # an object published again leaves the list
        due = sorted(p for p, since in waiting.items() if now - since >= self.catalog.delete_grace)
        self.destination.delete_many(due)
        self.report.deleted = len(due)
        remaining = {p: t for p, t in waiting.items() if p not in due}
        self.report.pending = len(remaining)
        if remaining or PENDING_FILE in self.existing:
            self._write_changed({PENDING_FILE: orjson.dumps(remaining, option=orjson.OPT_SORT_KEYS)})


def deletable(path: str, may_delete: MayDelete) -> bool:
    """Old collection snapshots, and our objects in collections that may be pruned."""
    if SNAPSHOT_PATH.fullmatch(path):
        return True
    collection_dir = path.split("/", 1)[0]
    ours = path.endswith((".json", ".parquet"))
    return ours and "/" in path and may_delete(collection_dir)


def widened(collection: pystac.Collection, items: Sequence[dict[str, Any]]) -> pystac.Collection:
    """`collection` with extents that also cover `items` (kept from before)."""
    collection = collection.clone()
    bboxes = [i["bbox"] for i in items if i.get("bbox")] + collection.extent.spatial.bboxes[:1]
    collection.extent.spatial.bboxes = [union_bboxes(bboxes)]

    intervals = [item_interval(i.get("properties", {})) for i in items]
    if any(start or end for start, end in intervals):
        # The collection's own interval counts too (its open bounds do not).
        interval = collection.extent.temporal.intervals[0]
        collection.extent.temporal.intervals = [union_interval([*intervals, interval])]
    return collection
