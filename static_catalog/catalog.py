"""A static catalogue's configuration (where, under which URL, its identity) and its JSON documents.

Links are relative (a self-contained catalogue) unless `base_url` is given, in
which case every link, `self` included, is absolute under `base_url`. Publishing
(what to write and delete, and when) is `publication.Publication`'s job, which uses this one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pystac

from zarr_stac.common.stac import (
    DEFAULT_CATALOG_DESCRIPTION,
    DEFAULT_CATALOG_ID,
    DEFAULT_CATALOG_TITLE,
    own_links,
)
from zarr_stac.common.storage import StorageOptions

from .destination import Destination
from .items import ItemSource, item_dict
from .paths import (
    CATALOG_FILE,
    GEOJSON_TYPE,
    JSON_TYPE,
    PARQUET_TYPE,
    collection_path,
    geoparquet_path,
    item_path,
    relative_href,
)

DEFAULT_DELETE_GRACE = 600.0  # seconds an unlinked object stays, for readers mid-walk (see `publication`)


def dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


@dataclass
class StaticCatalog:
    """A static catalogue at `dest`, published from Collections and Items."""

    dest: str
    storage: StorageOptions | None = None
    base_url: str | None = None
    catalog_id: str = DEFAULT_CATALOG_ID
    title: str = DEFAULT_CATALOG_TITLE
    description: str = DEFAULT_CATALOG_DESCRIPTION
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
        """The item's path and JSON, linked into the tree under `collection_id`."""
        data = dict(item_dict(item), collection=collection_id)
        path = item_path(collection_id, data["id"])
        cpath = collection_path(collection_id)
        data["links"] = [
            self.link("root", path, CATALOG_FILE, JSON_TYPE, self.title),
            self.link("parent", path, cpath, JSON_TYPE),
            self.link("collection", path, cpath, JSON_TYPE),
            *([self.link("self", path, path, GEOJSON_TYPE)] if self.base_url else []),
            *own_links(data.get("links", [])),
        ]
        return path, dumps(data)

    def render_collection(
        self,
        collection: pystac.Collection,
        items: Sequence[tuple[str, str | None]],
        geoparquet: bool,
        path: str | None = None,
    ) -> bytes:
        """The collection's JSON as it sits at `path` (by default its stable path), linking (id, title) `items`."""
        cpath = path or collection_path(collection.id)
        data = collection.to_dict(include_self_link=False, transform_hrefs=False)
        links = [
            self.link("root", cpath, CATALOG_FILE, JSON_TYPE, self.title),
            self.link("parent", cpath, CATALOG_FILE, JSON_TYPE, self.title),
        ]
        for member_id, title in sorted(items):
            links.append(self.link("item", cpath, item_path(collection.id, member_id), GEOJSON_TYPE, title))
        if self.base_url:
            links.append(self.link("self", cpath, cpath, JSON_TYPE))
        data["links"] = links + own_links(data.get("links", []))
        if geoparquet:
            parquet = self.link("stac-items", cpath, geoparquet_path(collection.id), PARQUET_TYPE)
            data.setdefault("assets", {})["geoparquet-items"] = {
                "href": parquet["href"],
                "type": PARQUET_TYPE,
                "title": "All items of this collection (stac-geoparquet)",
                "roles": ["stac-items"],
            }
        return dumps(data)

    def render_root(self, collections: Sequence[pystac.Collection], children: Mapping[str, str] | None = None) -> bytes:
        """The root catalogue, linking each collection at `children[id]` (by default its stable path)."""
        root = pystac.Catalog(id=self.catalog_id, description=self.description, title=self.title)
        data = root.to_dict(include_self_link=False)
        data["links"] = [self.link("root", CATALOG_FILE, CATALOG_FILE, JSON_TYPE, self.title)]
        for collection in sorted(collections, key=lambda c: c.id):
            child = (children or {}).get(collection.id) or collection_path(collection.id)
            data["links"].append(self.link("child", CATALOG_FILE, child, JSON_TYPE, collection.title))
        if self.base_url:
            data["links"].append(self.link("self", CATALOG_FILE, CATALOG_FILE, JSON_TYPE))
        return dumps(data)
