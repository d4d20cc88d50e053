"""STAC pieces every publisher (static catalogue, pgstac) shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import pystac
from pystac.link import HIERARCHICAL_LINKS

from .spatial import Bbox, union_bboxes

# The catalogue's own identity when the mapping configuration names none.
DEFAULT_CATALOG_ID = "zarr-stac"
DEFAULT_CATALOG_TITLE = "zarr-stac catalogue"
DEFAULT_CATALOG_DESCRIPTION = "Zarr datasets in object storage, catalogued with STAC."

# Links a publisher makes itself (where an object sits in the tree); every other link is the object's own.
STRUCTURAL_RELS = frozenset({"self", *HIERARCHICAL_LINKS})

# Item fields STAC and pgstac own: a property of one of these names would contradict the Item
# (pgstac reads id, collection, geometry and the times as columns, not from properties).
RESERVED_PROPERTIES = frozenset({
    "id", "type", "stac_version", "stac_extensions", "collection", "bbox", "geometry", "links", "assets",
    "properties", "datetime", "start_datetime", "end_datetime", "created", "updated",
})  # fmt: skip

# Which collections a run may delete items from: those whose stores it saw in whole.
MayDelete = Callable[[str], bool]


def delete_nothing(collection_id: str) -> bool:
    """The safe default: delete nothing from any collection."""
    return False


def own_links(links: Iterable[dict]) -> list[dict]:
    """The links of a STAC dict that are not structural (see STRUCTURAL_RELS)."""
    return [link for link in links if link.get("rel") not in STRUCTURAL_RELS]


Instant = dt.datetime | str | None
# A bound's type: datetimes in, datetimes out (the catalogues), strings likewise (pgstac rows).
Bound = TypeVar("Bound", dt.datetime, str, dt.datetime | str)


def union_interval(intervals: Iterable[Sequence[Bound | None]]) -> list[Bound | None]:
    """The [start, end] covering every interval (datetimes or RFC 3339 strings; None is open).

    Each bound keeps the type it came in; an interval's missing bound is ignored, as pgstac
    and the static catalogue did before this function served both.
    """
    starts: list[Bound] = []
    ends: list[Bound] = []
    for start, end in intervals:
        if start:
            starts.append(start)
        if end:
            ends.append(end)

    def key(value: Bound) -> dt.datetime:
        return pystac.utils.str_to_datetime(value) if isinstance(value, str) else value

    return [min(starts, key=key) if starts else None, max(ends, key=key) if ends else None]


def item_interval(properties: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The (start, end) an Item's JSON properties cover: start/end_datetime, else its datetime."""

    def instant(value: str | None) -> dt.datetime | None:
        return pystac.utils.str_to_datetime(value) if value else None

    start = properties.get("start_datetime") or properties.get("datetime")
    end = properties.get("end_datetime") or properties.get("datetime")
    return instant(start), instant(end)


def union_extent(bboxes: Sequence[Sequence[float]], intervals: Iterable[Sequence[Instant]]) -> tuple[Bbox | None, list]:
    """The bbox and interval covering all of them (bbox None when there are no bboxes)."""
    return (union_bboxes(bboxes) if bboxes else None), union_interval(intervals)
