"""What a publication takes as an item: a pystac Item from the crawl, or the JSON of one kept from before."""

from __future__ import annotations

from typing import Any

import pystac

ItemSource = pystac.Item | dict


def item_id(item: ItemSource) -> str:
    return item.id if isinstance(item, pystac.Item) else item["id"]


def item_title(item: ItemSource) -> str | None:
    properties = item.properties if isinstance(item, pystac.Item) else item.get("properties", {})
    return properties.get("title")


def item_collection_id(item: ItemSource) -> str | None:
    return item.collection_id if isinstance(item, pystac.Item) else item.get("collection")


def item_dict(item: ItemSource) -> dict[str, Any]:
    """The item's JSON as it came (links and hrefs untouched)."""
    return item.to_dict(include_self_link=False, transform_hrefs=False) if isinstance(item, pystac.Item) else item
