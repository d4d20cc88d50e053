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
did not change come back through `keep` as JSON, are rendered again and, being the same bytes,
not written. `Publication` keeps the publisher contract of `zarr_stac.common.publishing`.

One Item that cannot be published does not stop the others: an Item whose document
cannot be made, or that would land on another's path, is refused by `add`
(`ItemRejected`); one whose object the destination refuses (a name too long, ...) is
in `report.rejected` (writes go in batches). Either way it is not linked, its
collection is treated as not fully crawled (nothing deleted, earlier items kept, its
own earlier version too), and the caller reports it.

Names that differ only in case (`Tas` and `tas`) are one folder where case is not told
apart (macOS, Windows, a bucket synced to them): of two collections, or two items of a
collection, whose folders differ only in case, the smaller name (in code point order) is
published, whichever comes first, so that every rerun agrees; the other is refused as a
`duplicate-id`. When the caller says which Items are to come (`expect`), the other is
refused as it comes; otherwise, if it came first, it is unlinked when the smaller one comes
(and is in `report.rejected`). An object found where one of the
catalogue's own files goes (a folder an earlier version named after a store, say
`catalog.json/`) is removed before that file is written: no link can lead to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
import pystac

from zarr_stac.common.rejection import DUPLICATE_ID, RENDER_ERROR, WRITE_ERROR, ItemRejected, Rejection, one_line
from zarr_stac.common.spatial import union_bboxes
from zarr_stac.common.stac import MayDelete, delete_nothing, item_interval, union_interval

from .catalog import DEFAULT_DELETE_GRACE as DEFAULT_DELETE_GRACE
from .catalog import StaticCatalog
from .geoparquet import GeoparquetRows
from .items import ItemSource, item_collection_id, item_dict, item_id, item_title
from .paths import (
    CATALOG_FILE,
    COLLECTION_FILE,
    ITEM_PATH,
    JSON_TYPE,
    LEDGER_FILE,
    LEDGER_TYPE,
    OWN_SUFFIXES,
    PARQUET_TYPE,
    PENDING_FILE,
    SNAPSHOT_PATH,
    collection_path,
    folded,
    folder_id,
    folder_name,
    geoparquet_path,
    item_path,
    md5,
    snapshot_path,
)

WRITE_BATCH = 500


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
        # Paths as a filesystem blind to case sees them (`folded`: see the module's docstring):
        self._folders: dict[str, str] = {}  # collection folder -> the collection id that has it
        self._items: dict[str, str] = {}  # item path -> the item id that has it (two ids, one path: refused)
        # Of those the Items to come (`expect`) would share, the name that has each:
        self._expected_folders: dict[str, str] = {}  # collection folder -> collection id
        self._expected_items: dict[str, str] = {}  # item path -> item id (only where two ids share one)
        self._blocking_folders: set[str] | None = None  # folders of `existing` named like our files
        self._batch: dict[str, bytes] = {}
        self._batch_items: dict[str, tuple[str, str, dict[str, Any] | None]] = {}  # path -> (collection, id, row)
        self._incomplete: set[str] = set()  # collections (ids and folders) with an Item refused
        self._geoparquet = GeoparquetRows()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._geoparquet.close()

    def add(self, item: ItemSource) -> None:
        """Publish `item`; `ItemRejected` when this one cannot be (the publication goes on)."""
        self._take(item, item_collection_id(item))

    def keep(self, item: dict[str, Any]) -> None:
        """An Item published before, of a store that did not change: rendered again and compared,
        so it is written only when its object went missing (or its rendering changed)."""
        self._take(item, item_collection_id(item))

    def _take(self, item: ItemSource, collection_id: str | None, *, kept: bool = False) -> None:
        """`item` into `collection_id`'s folder. `kept`: an item of an earlier publication, kept
        because this one did not see its store: it gives way to any current item whose folder
        differs from its own only in case."""
        if not collection_id:
            raise ValueError(f"item {item_id(item)!r} has no collection")
        try:
            path, data = self.catalog.render_item(item, collection_id)
        except Exception as exc:  # noqa: BLE001 - a value JSON cannot hold, an id no path can: this item only
            self._mark_incomplete(collection_id)
            raise ItemRejected(RENDER_ERROR, one_line(exc)) from exc
        try:
            self._claim(collection_id, item_id(item), path, kept)
        except ItemRejected:
            self._mark_incomplete(collection_id)
            raise
        self.members.setdefault(collection_id, {})[item_id(item)] = item_title(item)
        self._batch[path] = data
        self._batch_items[path] = (collection_id, item_id(item), item_dict(item) if self.catalog.geoparquet else None)
        self.published.add(path)
        if len(self._batch) >= WRITE_BATCH:
            self._flush()

    def expect(self, placements: Iterable[tuple[str, str]]) -> None:
        """The (collection id, item id) of Items to come, before they do: of those whose folders
        differ only in case, the larger names are refused as they come (not once they have come,
        by the smaller one: see the module's docstring)."""
        collections: dict[str, str] = {}
        items: dict[str, str] = {}
        clashes: set[str] = set()
        for collection_id, member_id in placements:
            try:
                path = folded(item_path(collection_id, member_id))
            except ValueError:  # no id at all: refused by `add`
                continue
            folder = path.split("/", 1)[0]
            collections[folder] = min(collections.get(folder, collection_id), collection_id)
            if items.setdefault(path, member_id) != member_id:
                clashes.add(path)
                items[path] = min(items[path], member_id)
        self._expected_folders = collections
        self._expected_items = {path: items[path] for path in clashes}

    def finish(
        self, collections: Iterable[pystac.Collection], *, may_delete: MayDelete = delete_nothing
    ) -> WriteReport:
        """Collections (given now: their extents are known only at the end), root, deletions."""
        by_id = {c.id: c for c in collections}
        for cid in self.members:
            if cid not in by_id:
                raise ValueError(f"items were published in collection {cid!r}, which is not being published")
        self._flush()  # first: an item refused now keeps its collection from being pruned

        def complete(folder: str) -> bool:  # a collection's folder (see paths.folder_name)
            return folder not in self._incomplete and may_delete(folder_id(folder))

        self._keep_earlier(by_id, complete)
        self._flush()
        for cid in self._geoparquet.collections():
            path = geoparquet_path(cid)
            self.published.add(path)
            self._write_changed({path: self._geoparquet.parquet(cid)}, PARQUET_TYPE)
        snapshots = self._write_collections(by_id)
        linked = [c for cid, c in by_id.items() if cid in snapshots]
        self._write_changed({CATALOG_FILE: self.catalog.render_root(linked, snapshots)})
        self._retire(complete)
        return self.report

    # -- the crawl's ledger (see loaders.running.ledger) ---------------------------------------------
    # A catalogue is the publication of one set of sources: it keeps one ledger, whatever
    # `sources` says (a ledger of other sources matches none of their stores: all are read).
    def earlier_ledger(self, sources: str) -> bytes | None:
        """The ledger the last publication kept, if any."""
        return self.destination.read(LEDGER_FILE) if LEDGER_FILE in self.existing else None

    def keep_ledger(self, sources: str, data: bytes) -> None:
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
        self._unlink(path, collection_id, member_id, Rejection(collection_id, member_id, WRITE_ERROR, one_line(error)))

    def _unlink(self, path: str, collection_id: str, member_id: str, rejection: Rejection) -> None:
        """An item `add` took is not published after all, and is reported."""
        self.published.discard(path)
        if self._items.get(item_key(path)) == member_id:
            del self._items[item_key(path)]
        self._batch.pop(path, None)
        self._batch_items.pop(path, None)
        self._geoparquet.discard(collection_id, member_id)
        self.members.get(collection_id, {}).pop(member_id, None)
        self._mark_incomplete(collection_id)
        self._report(rejection)

    def _report(self, rejection: Rejection) -> None:
        if not any(
            r.collection_id == rejection.collection_id and r.item_id == rejection.item_id for r in self.report.rejected
        ):
            self.report.rejected.append(rejection)

    def _mark_incomplete(self, collection_id: str) -> None:
        self._incomplete.add(collection_id)
        try:
            self._incomplete.add(folder_name(collection_id))  # deletions are decided by folder
        except ValueError:
            pass

    # -- names that differ only in case ------------------------------------------------------
    def _claim(self, collection_id: str, member_id: str, path: str, kept: bool) -> None:
        """Take the item's path, and its collection's folder, as a filesystem blind to case sees
        them, or raise `ItemRejected`: one path, one id (the first); names that differ only in
        case: the smaller (see the module's docstring). An item `add` took before, whose folder
        a smaller name takes now, is unlinked."""
        folder = path.split("/", 1)[0]
        expected = self._expected_folders.get(folded(folder), collection_id)
        if expected < collection_id:
            raise ItemRejected(DUPLICATE_ID, case_conflict("collections", expected, collection_id, folder))
        holder = self._folders.setdefault(folded(folder), collection_id)
        if holder != collection_id:
            if kept or holder < collection_id:
                raise ItemRejected(DUPLICATE_ID, case_conflict("collections", holder, collection_id, folder))
            reason = case_conflict("collections", collection_id, holder, folder)
            for other in list(self.members.get(holder, {})):
                self._unlink_displaced(item_path(holder, other), holder, other, reason)
            self._folders[folded(folder)] = collection_id
        key = item_key(path)
        expected = self._expected_items.get(key, member_id)
        where = path.rsplit("/", 1)[0]
        if expected < member_id:
            raise ItemRejected(DUPLICATE_ID, case_conflict("items", expected, member_id, where, collection_id))
        other = self._items.setdefault(key, member_id)
        if other == member_id:
            return
        other_path = item_path(collection_id, other)
        if other_path == path:
            raise ItemRejected(
                DUPLICATE_ID,
                f"items {other!r} and {member_id!r} of collection {collection_id!r} would both be written to {path}",
            )
        if kept or other < member_id:
            raise ItemRejected(DUPLICATE_ID, case_conflict("items", other, member_id, where, collection_id))
        if self._unlink_displaced(
            other_path, collection_id, other, case_conflict("items", member_id, other, where, collection_id)
        ):
            self.existing[path] = None  # where case is not told apart, `other_path` is `path`: write it again
        self._items[key] = member_id

    def _unlink_displaced(self, path: str, collection_id: str, member_id: str, reason: str) -> bool:
        """Unlink an item whose folder a smaller name takes; whether its object was written already
        (it is then one to retire, see `_retire`)."""
        written = path not in self._batch
        self._unlink(path, collection_id, member_id, Rejection(collection_id, member_id, DUPLICATE_ID, reason))
        if written:
            self.existing.setdefault(path, None)
        return written

    def _write_changed(
        self, objects: Mapping[str, bytes], content_type: str = JSON_TYPE, *, refusable: bool = False
    ) -> dict[str, OSError]:
        """Write the objects whose bytes differ from what is published; count the others as unchanged.

        {path: error} of the objects the destination refused for a reason of their own; unless
        `refusable` (items), such a refusal is raised: the publication cannot go on without them."""
        changed = {p: data for p, data in objects.items() if p not in self.existing or self.existing[p] != md5(data)}
        self.report.unchanged += len(objects) - len(changed)
        self._clear_the_way(objects)
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
        for cid in sorted(collections):  # a folder no item claimed: the smallest name has it
            self._folders.setdefault(folded(folder_name(cid)), cid)
        for cid, collection in collections.items():
            if self._folders.setdefault(folded(folder_name(cid)), cid) != cid:
                continue  # its folder is another collection's, which differs only in case: its items were refused
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

    def _clear_the_way(self, paths: Iterable[str]) -> None:
        """Delete, at once, what an earlier version left in a folder named as one of `paths`
        (a store's folder, `catalog.json/`, where the root goes): a file cannot be written
        there, and nothing links to it, as the one object that could is the one blocked."""
        if self._blocking_folders is None:  # (only folders named like our files can be in the way)
            folders = {folded(head) for p in self.existing for head in heads(p)[1:]}
            self._blocking_folders = {f for f in folders if f.endswith(OWN_SUFFIXES)}
        for path in paths:
            if folded(path) not in self._blocking_folders:
                continue
            inside = folded(path) + "/"
            blocking = sorted(p for p in self.existing if folded(p).startswith(inside))
            self.destination.delete_many(blocking)
            for p in blocking:
                self.existing.pop(p)
                self.pending.pop(p, None)
            self._blocking_folders.discard(folded(path))

    # -- what earlier publications left ----------------------------------------------------
    def _keep_earlier(self, collections: dict[str, pystac.Collection], may_delete: MayDelete) -> None:
        """Items published before, whose collection this crawl did not fully see, stay (at
        their folders of today, should an earlier version have named them otherwise)."""
        current = [p for p in self.existing if p not in self.pending]
        by_collection: dict[str, list[str]] = {}
        for path in current:
            match = ITEM_PATH.fullmatch(path)
            if match and path not in self.published:
                by_collection.setdefault(match["collection"], []).append(path)
        for collection_dir, missing in by_collection.items():
            if may_delete(collection_dir):
                continue
            cid = next((c for c in collections if folder_name(c) == collection_dir), None)
            if cid is None:  # a whole collection this crawl did not produce: keep it as it was
                document_path = f"{collection_dir}/{COLLECTION_FILE}"
                if document_path not in self.existing:
                    continue  # no document to link them (a store's folder had taken its place): left as they are
                old = pystac.Collection.from_dict(orjson.loads(self.destination.read(document_path)), migrate=False)
                cid = old.id
                collections.setdefault(cid, old)
            kept = []
            for data in (orjson.loads(self.destination.read(p)) for p in missing):
                try:
                    self._take(data, cid, kept=True)
                except ItemRejected as refused:  # this one cannot stay linked: reported, left where it is
                    self._report(Rejection(cid, item_id(data), refused.kind, refused.reason))
                    continue
                kept.append(data)
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

        def twin(path: str) -> str | None:
            """Where `path` is, if case is not told apart, when that is (in) another name published."""
            folder = path.split("/", 1)[0]
            holder = self._folders.get(folded(folder)) if "/" in path else None
            if holder is not None and folder_name(holder) != folder:
                return folder_name(holder) + path[len(folder) :]
            if holder is None or not ITEM_PATH.fullmatch(path):
                return None
            other = self._items.get(item_key(path))
            return None if other is None or item_path(holder, other) == path else item_path(holder, other)

        def stale(path: str) -> bool:
            if path in self.published or path == PENDING_FILE:
                return False
            other = twin(path)  # the same name but for case: it cannot stay beside what is published
            if other in self.published and self.destination.same_object(path, other):
                return False  # a filesystem blind to case listed the published object under its old case
            return path in self.pending or deletable(path, may_delete) or other is not None

        leaving = [p for p in self.existing if stale(p)]
        now = time.time()
        waiting = {p: self.pending.get(p, now) for p in leaving}  # an object published again leaves the list
        due = sorted(p for p, since in waiting.items() if now - since >= self.catalog.delete_grace)
        self.destination.delete_many(due)
        self.report.deleted = len(due)
        remaining = {p: t for p, t in waiting.items() if p not in due}
        self.report.pending = len(remaining)
        if remaining or PENDING_FILE in self.existing:
            self._write_changed({PENDING_FILE: orjson.dumps(remaining, option=orjson.OPT_SORT_KEYS)})


def item_key(path: str) -> str:
    """An item's path as a filesystem blind to case sees it (the path itself when that is the same:
    no second copy of it in memory)."""
    key = folded(path)
    return path if key == path else key


def heads(path: str) -> list[str]:
    """`path`, then each folder it is in: `a/b/c.json`, `a/b`, `a`."""
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def case_conflict(what: str, kept: str, refused: str, folder: str, collection_id: str | None = None) -> str:
    """Why `refused` is not published: `kept` has its folder where case is not told apart."""
    of = f" of collection {collection_id!r}" if collection_id else ""
    return (
        f"{what} {kept!r} and {refused!r}{of} differ only in case: one folder {folder} where case is not"
        f" told apart (macOS, Windows, a bucket synced to them); {kept!r} has it"
    )


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


def publish(
    catalog: StaticCatalog,
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    *,
    may_delete: MayDelete = delete_nothing,
) -> WriteReport:
    """Write what changed; delete what is gone from collections `may_delete` allows.
    Items that cannot be published are in the report's `rejected`."""
    rejected = []
    with Publication(catalog) as publication:
        for item in items:
            try:
                publication.add(item)
            except ItemRejected as exc:
                rejected.append(Rejection(item.collection_id or "", item.id, exc.kind, exc.reason))
        report = publication.finish(collections, may_delete=may_delete)
    report.rejected[:0] = rejected
    return report
