"""Read a static catalogue back into Collections and Items (e.g. to load it into pgstac)."""

from __future__ import annotations

import pystac


def read_catalog(href: str) -> tuple[list[pystac.Collection], list[pystac.Item]]:
    root = pystac.Catalog.from_file(href)
    collections = list(root.get_all_collections())
    items = []
    for collection in collections:
        for item in collection.get_items():
            # Asset hrefs as published (absolute URLs stay absolute; local paths resolve).
            item.make_asset_hrefs_absolute()
            items.append(item)
    return collections, items
