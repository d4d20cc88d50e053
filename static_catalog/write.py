"""Publish Collections and Items as a static STAC catalogue (folder or bucket prefix).

Layout (pystac's best-practices layout):

    catalog.json
    <collection>/collection.json
    <collection>/items.parquet            (with --geoparquet)
    <collection>/<item>/<item>.json

Links are relative (a self-contained catalogue) unless `base_url` is given, in
which case every link, `self` included, is absolute under `base_url`.

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
  caller says may be pruned (the crawl saw all of their stores). The items of
  other collections that this publication lacks are kept, and stay linked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
import pystac
from fsspec.asyn import _run_coros_in_chunks, sync
from pystac.link import HIERARCHICAL_LINKS

from common.layout import safe_id
from common.spatial import union_bboxes
from common.storage import StorageOptions, protocol_of, strip_url

CATALOG_FILE = "catalog.json"
COLLECTION_FILE = "collection.json"
GEOPARQUET_FILE = "items.parquet"
JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"
PARQUET_TYPE = "application/vnd.apache.parquet"
# Links this writer makes itself; any others on an object are kept.
STRUCTURAL_RELS = {"self", *HIERARCHICAL_LINKS}
ITEM_PATH = re.compile(r"(?P<collection>[^/]+)/(?P<item>[^/]+)/(?P=item)\.json")
SNAPSHOT_PATH = re.compile(r"[^/]+/collection-[0-9a-f]{16}\.json")
WRITE_BATCH = 500
DELETE_CONCURRENCY = 32
# Objects that left the catalogue, and since when: deleted once the grace period
# is over, so that a reader still holding an old collection document finds them.
PENDING_FILE = ".zarr-stac-pending-deletes.json"
DEFAULT_DELETE_GRACE = 600.0  # seconds


def never(collection_id: str) -> bool:
    return False


ItemSource = pystac.Item | dict  # an Item to publish, or the JSON of one kept from before


def _id(item: ItemSource) -> str:
    return item.id if isinstance(item, pystac.Item) else item["id"]


def _title(item: ItemSource) -> str | None:
    properties = item.properties if isinstance(item, pystac.Item) else item.get("properties", {})
    return properties.get("title")


def _as_dict(item: ItemSource) -> dict[str, Any]:
    return item.to_dict(include_self_link=False, transform_hrefs=False) if isinstance(item, pystac.Item) else item


@dataclass
class WriteReport:
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    kept: int = 0  # earlier items kept because their collection was not fully crawled
    pending: int = 0  # unlinked objects waiting for their grace period before deletion


def collection_path(collection_id: str) -> str:
    return f"{safe_id(collection_id)}/{COLLECTION_FILE}"


def relative_href(from_path: str, to_path: str) -> str:
    """`to_path` as seen from the folder of `from_path` (both relative to the root)."""
    source = from_path.split("/")[:-1]
    target = to_path.split("/")
    common = 0
    while common < len(source) and common < len(target) - 1 and source[common] == target[common]:
        common += 1
    ups = len(source) - common
    return ("../" * ups if ups else "./") + "/".join(target[common:])


def snapshot_path(collection_id: str, stable_bytes: bytes) -> str:
    """The immutable copy of a collection document, named by its content."""
    return f"{safe_id(collection_id)}/collection-{md5(stable_bytes)[:16]}.json"


def item_path(collection_id: str, item_id: str) -> str:
    return f"{safe_id(collection_id)}/{safe_id(item_id)}/{safe_id(item_id)}.json"


def _dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class DestinationError(RuntimeError):
    """The catalogue cannot be published where asked; the message says why."""


class Destination:
    """A folder or an object-store prefix; knows what is there by path and MD5."""

    def __init__(self, url: str, storage: StorageOptions | None = None):
        self.url = strip_url(url)
        self.local = protocol_of(url) == "file"
        self.fs = (storage or StorageOptions()).filesystem(self.url)
        self.root = self.fs._strip_protocol(self.url).rstrip("/")
        self._made: set[str] = set()

    def full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def inventory(self) -> dict[str, str | None]:
        """{relative path: MD5 or None when unknown} of what is published now."""
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        prefix = self.root + "/"
        inventory: dict[str, str | None] = {}
        for path, info in found.items():
            relative = path[len(prefix):] if path.startswith(prefix) else None
            if not relative or posixpath.basename(relative).startswith(".tmp-"):
                continue
            etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
            if self.local:
                with open(path, "rb") as handle:
                    inventory[relative] = md5(handle.read())
            elif info.get("md5Hash"):  # GCS lists the MD5 itself, base64 (its ETag is no MD5)
                inventory[relative] = base64.b64decode(info["md5Hash"]).hex()
            else:
                # Single-part uploads (all of ours) have the MD5 as ETag; others are unknown.
                inventory[relative] = etag if etag and "-" not in etag else None
        return inventory

    def read(self, path: str) -> bytes:
        return self.fs.cat_file(self.full(path))

    def write_many(self, objects: Mapping[str, bytes], existing: Mapping[str, Any], content_type: str = JSON_TYPE) -> None:
        if not objects:
            return
        if self.local:
            # Sequential: measured faster than threads, whose mkdir/open calls contend.
            for path, data in objects.items():
                self._write_file(path, data, replace=path in existing)
        else:
            # The media type has each filesystem's own name: s3fs passes botocore's, gcsfs its own.
            gcs = protocol_of(self.url) in ("gs", "gcs")
            media_type = {"content_type": content_type} if gcs else {"ContentType": content_type}
            self.fs.pipe({self.full(p): data for p, data in objects.items()}, **media_type)

    def _write_file(self, path: str, data: bytes, replace: bool) -> None:
        full = self.full(path)
        directory = os.path.dirname(full)
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)
        if not replace:
            # Nothing links to a new object yet (links are written after it): write in place.
            with open(full, "wb") as handle:
                handle.write(data)
            return
        # Write beside, then rename: a reader sees the old file or the new one.
        tmp = f"{directory}/.tmp-{os.path.basename(full)}-{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, full)

    def check(self) -> None:
        """Fail in one line, before any crawl, when the output bucket does not exist."""
        if self.local:
            return
        bucket = self.root.split("/", 1)[0]
        try:
            found = self.fs.exists(bucket)
        except OSError as exc:
            raise DestinationError(f"cannot reach the output bucket {self.url}: {exc}") from None
        if not found:
            raise DestinationError(f"the output bucket {bucket!r} of {self.url} does not exist: create it first")

    def delete_many(self, paths: Iterable[str]) -> None:
        """Every deletion of a publication goes through here."""
        paths = [self.full(p) for p in paths]
        if paths and protocol_of(self.url) in ("s3", "s3a"):
            # One DeleteObject per object, not s3fs's DeleteObjects batches (fs.rm): Swift's
            # s3api (like some Ceph releases) requires Content-MD5 on DeleteObjects, which
            # botocore >= 1.36 no longer sends (a CRC32 checksum instead): "Missing required
            # header for this request: Content-MD5". Single deletes need no checksum and every
            # S3 implementation has them; they are issued DELETE_CONCURRENCY at a time.
            coroutines = [self.fs._rm_file(path) for path in paths]
            outcomes = sync(
                self.fs.loop, _run_coros_in_chunks, coroutines, batch_size=DELETE_CONCURRENCY, return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception) and not isinstance(outcome, FileNotFoundError):
                    raise outcome
            self.fs.invalidate_cache(self.root)
        elif paths:
            self.fs.rm(paths)
        if self.local:  # drop the item folders left empty
            for path in paths:
                try:
                    os.rmdir(os.path.dirname(path))
                except OSError:
                    pass


@dataclass
class StaticCatalog:
    """A static catalogue at `dest`, published from Collections and Items."""

    dest: str
    storage: StorageOptions | None = None
    base_url: str | None = None
    catalog_id: str = "zarr-stac"
    title: str = "zarr-stac catalogue"
    description: str = "Zarr datasets in object storage, catalogued with STAC."
    geoparquet: bool = False
    delete_grace: float = DEFAULT_DELETE_GRACE
    destination: Destination = field(init=False)

    def __post_init__(self) -> None:
        self.destination = Destination(self.dest, self.storage)

    # -- links ---------------------------------------------------------------------------
    def link(self, rel: str, from_path: str, to_path: str, media_type: str, title: str | None = None) -> dict[str, Any]:
        href = f"{self.base_url.rstrip('/')}/{to_path}" if self.base_url else relative_href(from_path, to_path)
        link = {"rel": rel, "href": href, "type": media_type}
        if title:
            link["title"] = title
        return link

    # -- rendering -----------------------------------------------------------------------
    def render_item(self, item: ItemSource, collection_id: str) -> tuple[str, bytes]:
        data = dict(_as_dict(item), collection=collection_id)
        path = item_path(collection_id, data["id"])
        cpath = collection_path(collection_id)
        data["links"] = [
            self.link("root", path, CATALOG_FILE, JSON_TYPE, self.title),
            self.link("parent", path, cpath, JSON_TYPE),
            self.link("collection", path, cpath, JSON_TYPE),
            *([self.link("self", path, path, GEOJSON_TYPE)] if self.base_url else []),
            *[link for link in data.get("links", []) if link.get("rel") not in STRUCTURAL_RELS],
        ]
        return path, _dumps(data)

    def render_collection(self, collection: pystac.Collection, items: Sequence[tuple[str, str | None]], geoparquet: bool, path: str | None = None) -> bytes:
        cpath = path or collection_path(collection.id)
        data = collection.to_dict(include_self_link=False, transform_hrefs=False)
        links = [
            self.link("root", cpath, CATALOG_FILE, JSON_TYPE, self.title),
            self.link("parent", cpath, CATALOG_FILE, JSON_TYPE, self.title),
        ]
        for item_id, title in sorted(items):
            links.append(self.link("item", cpath, item_path(collection.id, item_id), GEOJSON_TYPE, title))
        if self.base_url:
            links.append(self.link("self", cpath, cpath, JSON_TYPE))
        data["links"] = links + [link for link in data.get("links", []) if link.get("rel") not in STRUCTURAL_RELS]
        if geoparquet:
            parquet = self.link("stac-items", cpath, f"{safe_id(collection.id)}/{GEOPARQUET_FILE}", PARQUET_TYPE)
            data.setdefault("assets", {})["geoparquet-items"] = {
                "href": parquet["href"],
                "type": PARQUET_TYPE,
                "title": "All items of this collection (stac-geoparquet)",
                "roles": ["stac-items"],
            }
        return _dumps(data)

    def render_root(self, collections: Sequence[pystac.Collection], children: Mapping[str, str] | None = None) -> bytes:
        data = pystac.Catalog(id=self.catalog_id, description=self.description, title=self.title).to_dict(include_self_link=False)
        data["links"] = [self.link("root", CATALOG_FILE, CATALOG_FILE, JSON_TYPE, self.title)]
        for collection in sorted(collections, key=lambda c: c.id):
            child = (children or {}).get(collection.id) or collection_path(collection.id)
            data["links"].append(self.link("child", CATALOG_FILE, child, JSON_TYPE, collection.title))
        if self.base_url:
            data["links"].append(self.link("self", CATALOG_FILE, CATALOG_FILE, JSON_TYPE))
        return _dumps(data)

    # -- publishing ----------------------------------------------------------------------
    def publish(
        self,
        collections: Iterable[pystac.Collection],
        items: Iterable[pystac.Item],
        *,
        may_delete: Callable[[str], bool] = never,
    ) -> WriteReport:
        """Write what changed; delete what is gone from collections `may_delete` allows."""
        with self.publication() as publication:
            for item in items:
                publication.add(item)
            return publication.finish(collections, may_delete=may_delete)

    def publication(self) -> Publication:
        """A publication in progress: `add` items as they come, then `finish`."""
        return Publication(self)

    def _pending(self, existing: Mapping[str, str | None]) -> dict[str, float]:
        if PENDING_FILE not in existing:
            return {}
        return {p: float(t) for p, t in orjson.loads(self.destination.read(PENDING_FILE)).items() if p in existing}

    def _delete_after_grace(self, stale: list[str], pending: dict[str, float], existing: Mapping[str, str | None], report: WriteReport) -> None:
        now = time.time()
        waiting = {p: pending.get(p, now) for p in stale}  # an object published again leaves the list
        due = sorted(p for p, since in waiting.items() if now - since >= self.delete_grace)
        self.destination.delete_many(due)
        report.deleted = len(due)
        remaining = {p: t for p, t in waiting.items() if p not in due}
        report.pending = len(remaining)
        if remaining or PENDING_FILE in existing:
            self._write_changed({PENDING_FILE: orjson.dumps(remaining, option=orjson.OPT_SORT_KEYS)}, existing, report)

    def _deletable(self, path: str, may_delete: Callable[[str], bool]) -> bool:
        """Old collection snapshots, and our objects in collections that may be pruned."""
        if SNAPSHOT_PATH.fullmatch(path):
            return True
        collection_dir = path.split("/", 1)[0]
        ours = path.endswith((".json", ".parquet"))
        return ours and "/" in path and may_delete(collection_dir)

    def _write_changed(self, objects: Mapping[str, bytes], existing: Mapping[str, str | None], report: WriteReport, content_type: str = JSON_TYPE) -> None:
        changed = {p: data for p, data in objects.items() if p not in existing or existing[p] != md5(data)}
        report.unchanged += len(objects) - len(changed)
        report.written += len(changed)
        self.destination.write_many(changed, existing, content_type)


class Publication:
    """Items written as they come (in batches), collections and root at `finish`.

    Memory holds one batch of JSON, and per collection the ids and titles of its
    items (for the collection's links), whatever the number of items.
    """

    def __init__(self, catalog: StaticCatalog):
        self.catalog = catalog
        self.destination = catalog.destination
        self.report = WriteReport()
        self.existing = self.destination.inventory()
        self.pending = catalog._pending(self.existing)
        self.published: set[str] = {CATALOG_FILE}
        self.members: dict[str, dict[str, str | None]] = {}  # collection -> {item id: title}
        self._paths: dict[str, str] = {}  # item path -> item id (two ids, one path: refused)
        self._batch: dict[str, bytes] = {}
        self._parquet_rows: dict[str, Any] = {}  # collection -> temporary ndjson file

    def __enter__(self) -> Publication:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._parquet_rows.values():
            handle.close()

    def add(self, item: ItemSource, collection_id: str | None = None) -> None:
        collection_id = collection_id or (item.collection_id if isinstance(item, pystac.Item) else item.get("collection"))
        if not collection_id:
            raise ValueError(f"item {_id(item)!r} has no collection")
        path, data = self.catalog.render_item(item, collection_id)
        if self._paths.get(path, _id(item)) != _id(item):
            raise ValueError(f"items {self._paths[path]!r} and {_id(item)!r} of collection {collection_id!r} would both be written to {path}")
        self._paths[path] = _id(item)
        self.members.setdefault(collection_id, {})[_id(item)] = _title(item)
        self._batch[path] = data
        self.published.add(path)
        if self.catalog.geoparquet:
            if collection_id not in self._parquet_rows:
                self._parquet_rows[collection_id] = tempfile.TemporaryFile()
            self._parquet_rows[collection_id].write(orjson.dumps(_as_dict(item)) + b"\n")
        if len(self._batch) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        self.catalog._write_changed(self._batch, self.existing, self.report)
        self._batch = {}

    def finish(self, collections: Iterable[pystac.Collection], *, may_delete: Callable[[str], bool] = never) -> WriteReport:
        """Collections (given now: their extents are known only at the end), root, deletions."""
        collections = {c.id: c for c in collections}
        for cid in self.members:
            if cid not in collections:
                raise ValueError(f"items were published in collection {cid!r}, which is not being published")
        self._keep_earlier(collections, may_delete)
        self._flush()
        catalog, existing, report = self.catalog, self.existing, self.report
        if catalog.geoparquet:
            for cid, handle in self._parquet_rows.items():
                path = f"{safe_id(cid)}/{GEOPARQUET_FILE}"
                self.published.add(path)
                handle.seek(0)
                catalog._write_changed({path: geoparquet_bytes([orjson.loads(line) for line in handle])}, existing, report, PARQUET_TYPE)
        # Collections once their items are all in place, each twice: at its stable
        # URL and at an immutable, content-addressed one that the root links to.
        # Switching the root is then the one atomic step between two snapshots: a
        # reader that started from the old root keeps walking the old collections
        # (kept, like every unlinked object, for the grace period).
        snapshot_paths = {}
        for cid, collection in collections.items():
            members = sorted(self.members.get(cid, {}).items())
            data = catalog.render_collection(collection, members, catalog.geoparquet and cid in self._parquet_rows)
            snapshot = snapshot_path(cid, data)
            snapshot_paths[cid] = snapshot
            objects = {collection_path(cid): data, snapshot: catalog.render_collection(collection, members, catalog.geoparquet and cid in self._parquet_rows, path=snapshot)}
            self.published.update(objects)
            catalog._write_changed(objects, existing, report)
        catalog._write_changed({CATALOG_FILE: catalog.render_root(list(collections.values()), snapshot_paths)}, existing, report)

        stale = [p for p in existing if p not in self.published and p != PENDING_FILE and (p in self.pending or catalog._deletable(p, may_delete))]
        catalog._delete_after_grace(stale, self.pending, existing, report)
        return report

    def _keep_earlier(self, collections: dict[str, pystac.Collection], may_delete: Callable[[str], bool]) -> None:
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
                old = pystac.Collection.from_dict(orjson.loads(self.destination.read(collection_path(collection_dir))), migrate=False)
                collections[old.id] = old
                cid = old.id
            kept = [orjson.loads(self.destination.read(p)) for p in missing]
            for data in kept:
                self.add(data, cid)
            self.report.kept += len(kept)
            collections[cid] = _widened(collections[cid], kept)


def _batches(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch


def _widened(collection: pystac.Collection, items: Sequence[dict[str, Any]]) -> pystac.Collection:
    """`collection` with extents that also cover `items` (kept from before)."""
    collection = collection.clone()
    bboxes = [i["bbox"] for i in items if i.get("bbox")] + collection.extent.spatial.bboxes[:1]
    collection.extent.spatial.bboxes = [union_bboxes(bboxes)]
    starts, ends = [], []
    for i in items:
        props = i.get("properties", {})
        starts.append(props.get("start_datetime") or props.get("datetime"))
        ends.append(props.get("end_datetime") or props.get("datetime"))
    interval = collection.extent.temporal.intervals[0]
    parsed = [pystac.utils.str_to_datetime(v) for v in starts + ends if v]
    if parsed:
        low = min([*parsed, *(t for t in interval[:1] if t)])
        high = max([*parsed, *(t for t in interval[1:] if t)])
        collection.extent.temporal.intervals = [[low, high]]
    return collection


def _no_empty_objects(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_empty_objects(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [_no_empty_objects(v) for v in value]
    return value


def geoparquet_bytes(items: Sequence[dict[str, Any]]) -> bytes:
    """A collection's items as stac-geoparquet."""
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import parse_stac_items_to_arrow

    # Parquet cannot hold an empty struct (e.g. `"chunks": {}` in xarray:open_kwargs):
    # in this copy empty objects become null; the JSON items keep them.
    table = parse_stac_items_to_arrow([_no_empty_objects(i) for i in items]).read_all()
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_catalog(
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    dest: str,
    *,
    storage: StorageOptions | None = None,
    base_url: str | None = None,
    may_delete: Callable[[str], bool] = never,
    geoparquet: bool = False,
    **root_fields: Any,
) -> WriteReport:
    catalog = StaticCatalog(dest, storage=storage, base_url=base_url, geoparquet=geoparquet, **root_fields)
    return catalog.publish(collections, items, may_delete=may_delete)
