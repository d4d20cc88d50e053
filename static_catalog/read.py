"""Read a static catalogue back into Collections and Items (e.g. to load it into pgstac)."""

from __future__ import annotations

import pystac

from zarr_stac.common.storage import StorageOptions

from .stac_io import FsspecStacIO


def read_catalog(href: str, storage: StorageOptions | None = None) -> tuple[list[pystac.Collection], list[pystac.Item]]:
    """Every Collection and Item of a static catalogue (a folder, a bucket or a URL)."""
    root = pystac.Catalog.from_file(href, stac_io=FsspecStacIO(storage))
    collections = list(root.get_all_collections())
    items = []
    for collection in collections:
        for item in collection.get_items():
            # Asset hrefs as published (absolute URLs stay absolute; local paths resolve).
            item.make_asset_hrefs_absolute()
            items.append(item)
    return collections, items
