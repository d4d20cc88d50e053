"""Write Collections and Items as a static STAC catalogue (folder or bucket prefix).

Layout (pystac's best-practices layout):

    catalog.json
    <collection>/collection.json
    <collection>/<item>/<item>.json

Links are relative (a self-contained catalogue) unless `base_url` is given, in
which case every link, `self` included, is absolute under `base_url`.

Write order keeps readers safe: items first, then collections, then the root,
and objects that no longer belong are deleted only after the root is written
(and only when the caller says the crawl behind them was complete).
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pystac
from pystac.link import HIERARCHICAL_LINKS

from loaders.layout import safe_id
from loaders.storage import StorageOptions, protocol_of, strip_url


CATALOG_FILE = "catalog.json"
COLLECTION_FILE = "collection.json"
JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"
# Links this writer makes itself; any others on an object are kept.
STRUCTURAL_RELS = {"self", *HIERARCHICAL_LINKS}


@dataclass
class WriteReport:
    written: int = 0
    unchanged: int = 0
    deleted: int = 0


def collection_path(collection_id: str) -> str:
    return f"{safe_id(collection_id)}/{COLLECTION_FILE}"


def item_path(collection_id: str, item_id: str) -> str:
    return f"{safe_id(collection_id)}/{safe_id(item_id)}/{safe_id(item_id)}.json"


def _link(rel: str, from_path: str, to_path: str, base_url: str | None, media_type: str, title: str | None = None) -> dict[str, Any]:
    if base_url:
        href = f"{base_url.rstrip('/')}/{to_path}"
    else:
        href = posixpath.relpath(to_path, posixpath.dirname(from_path) or ".")
        if not href.startswith("."):
            href = "./" + href
    link = {"rel": rel, "href": href, "type": media_type}
    if title:
        link["title"] = title
    return link


def _other_links(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in data.get("links", []) if link.get("rel") not in STRUCTURAL_RELS]


def _dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def render_catalog(
    collections: Sequence[pystac.Collection],
    items: Mapping[str, Sequence[pystac.Item]],
    *,
    catalog_id: str = "zarr-stac",
    title: str = "zarr-stac catalogue",
    description: str = "Zarr datasets in object storage, catalogued with STAC.",
    base_url: str | None = None,
) -> dict[str, bytes]:
    """Every object of the catalogue as {relative path: JSON bytes}, root last."""
    out: dict[str, bytes] = {}
    root_links = [_link("root", CATALOG_FILE, CATALOG_FILE, base_url, JSON_TYPE, title)]
    for collection in collections:
        cpath = collection_path(collection.id)
        cdata = collection.to_dict(include_self_link=False, transform_hrefs=False)
        clinks = [
            _link("root", cpath, CATALOG_FILE, base_url, JSON_TYPE, title),
            _link("parent", cpath, CATALOG_FILE, base_url, JSON_TYPE, title),
        ]
        for item in sorted(items.get(collection.id, ()), key=lambda i: i.id):
            ipath = item_path(collection.id, item.id)
            idata = item.to_dict(include_self_link=False, transform_hrefs=False)
            idata["collection"] = collection.id
            idata["links"] = [
                _link("root", ipath, CATALOG_FILE, base_url, JSON_TYPE, title),
                _link("parent", ipath, cpath, base_url, JSON_TYPE, collection.title),
                _link("collection", ipath, cpath, base_url, JSON_TYPE, collection.title),
                *([_link("self", ipath, ipath, base_url, GEOJSON_TYPE)] if base_url else []),
                *_other_links(idata),
            ]
            out[ipath] = _dumps(idata)
            clinks.append(_link("item", cpath, ipath, base_url, GEOJSON_TYPE, item.properties.get("title")))
        if base_url:
            clinks.append(_link("self", cpath, cpath, base_url, JSON_TYPE))
        cdata["links"] = clinks + _other_links(cdata)
        out[cpath] = _dumps(cdata)
        root_links.append(_link("child", CATALOG_FILE, cpath, base_url, JSON_TYPE, collection.title))
    if base_url:
        root_links.append(_link("self", CATALOG_FILE, CATALOG_FILE, base_url, JSON_TYPE))
    root = pystac.Catalog(id=catalog_id, description=description, title=title).to_dict(include_self_link=False)
    root["links"] = root_links
    out[CATALOG_FILE] = _dumps(root)
    return out


class Destination:
    """A folder or an object-store prefix that catalogue objects are written to."""

    def __init__(self, url: str, storage: StorageOptions | None = None):
        self.url = strip_url(url)
        self.local = protocol_of(url) == "file"
        self.fs = (storage or StorageOptions()).filesystem(self.url)
        self.root = self.fs._strip_protocol(self.url)

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def read(self, path: str) -> bytes | None:
        try:
            return self.fs.cat_file(self._full(path))
        except FileNotFoundError:
            return None

    def write(self, path: str, data: bytes) -> None:
        full = self._full(path)
        if self.local:
            # Write beside, then rename: a reader sees the old file or the new one.
            os.makedirs(os.path.dirname(full), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(full), prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, full)
        else:
            self.fs.pipe_file(full, data, ContentType=JSON_TYPE)

    def list_json(self) -> set[str]:
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return set()
        prefix = self.root.rstrip("/") + "/"
        return {p[len(prefix):] for p in found if p.endswith(".json") and not posixpath.basename(p).startswith(".tmp-")}

    def delete(self, path: str) -> None:
        self.fs.rm_file(self._full(path))


def publish(
    objects: Mapping[str, bytes],
    dest: str,
    *,
    storage: StorageOptions | None = None,
    prune: bool = False,
) -> WriteReport:
    """Write `objects` (root catalogue last) and, if `prune`, delete JSON no longer in it."""
    target = Destination(dest, storage)
    report = WriteReport()
    order = sorted(objects, key=lambda p: (p == CATALOG_FILE, p.endswith(COLLECTION_FILE), p))
    for path in order:
        if target.read(path) == objects[path]:
            report.unchanged += 1
            continue
        target.write(path, objects[path])
        report.written += 1
    if prune:
        for stale in sorted(target.list_json() - set(objects)):
            target.delete(stale)
            report.deleted += 1
    return report


def write_catalog(
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    dest: str,
    *,
    storage: StorageOptions | None = None,
    base_url: str | None = None,
    prune: bool = False,
    **root_fields: Any,
) -> WriteReport:
    collections = list(collections)
    by_collection: dict[str, list[pystac.Item]] = {c.id: [] for c in collections}
    for item in items:
        if item.collection_id not in by_collection:
            raise ValueError(f"item {item.id!r} belongs to collection {item.collection_id!r}, which is not being written")
        by_collection[item.collection_id].append(item)
    objects = render_catalog(collections, by_collection, base_url=base_url, **root_fields)
    return publish(objects, dest, storage=storage, prune=prune)
