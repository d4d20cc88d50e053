"""Collections that hold a group of Items, with extents that cover them."""

from __future__ import annotations

from collections.abc import Sequence

import pystac

from . import spatial

DEFAULT_LICENSE = "other"


def build_collection(
    collection_id: str,
    items: Sequence[pystac.Item],
    *,
    title: str | None = None,
    description: str | None = None,
    license: str = DEFAULT_LICENSE,
    keywords: list[str] | None = None,
) -> pystac.Collection:
    if not items:
        raise ValueError(f"collection {collection_id!r} has no items")
    bbox = spatial.union_bboxes([item.bbox for item in items if item.bbox])
    starts = [item.common_metadata.start_datetime or item.datetime for item in items]
    ends = [item.common_metadata.end_datetime or item.datetime for item in items]
    collection = pystac.Collection(
        id=collection_id,
        title=title or collection_id,
        description=description or f"{len(items)} Zarr datasets under `{collection_id}/`.",
        extent=pystac.Extent(
            spatial=pystac.SpatialExtent([bbox]),
            temporal=pystac.TemporalExtent([[min(starts), max(ends)]]),
        ),
        license=license,
        keywords=keywords,
    )
    return collection
