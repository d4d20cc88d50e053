"""The JSON pgstac stores for Collections and Items, and how a collection's document
meets the one already in the database."""

from __future__ import annotations

from typing import Any

import pystac

from zarr_stac.common.stac import own_links, union_extent

# The description of a placeholder row: a document nobody wrote, replaced at the end of a load.
PLACEHOLDER_DESCRIPTION = "Being loaded."


def for_pgstac(obj: pystac.STACObject | dict[str, Any]) -> dict[str, Any]:
    """The JSON pgstac stores: no tree links (the API makes its own), absolute asset hrefs."""
    data = (
        obj.to_dict(include_self_link=False, transform_hrefs=False) if isinstance(obj, pystac.STACObject) else dict(obj)
    )
    data["links"] = own_links(data.get("links", []))
    return data


def placeholder(collection_id: str) -> dict[str, Any]:
    """A collection row for items to be loaded into before its document is known."""
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "description": PLACEHOLDER_DESCRIPTION,
        "license": "other",
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }


def is_placeholder(data: dict[str, Any]) -> bool:
    return data.get("description") == PLACEHOLDER_DESCRIPTION


def widen(data: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
    """`data` with extents that also cover what the database already had (the first bbox
    and interval of each: the overall ones); as it is when either lacks an extent."""
    try:
        bboxes = data["extent"]["spatial"]["bbox"][:1] + existing["extent"]["spatial"]["bbox"][:1]
        intervals = [data["extent"]["temporal"]["interval"][0], existing["extent"]["temporal"]["interval"][0]]
    except (KeyError, IndexError, TypeError):
        return data
    bbox, interval = union_extent(bboxes, intervals)
    if bbox is not None:
        data["extent"]["spatial"]["bbox"] = [bbox]
    data["extent"]["temporal"]["interval"] = [interval]
    return data
