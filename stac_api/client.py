"""stac-fastapi-pgstac's client, with a page-size cap and one pgstac bug worked around."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import Request
from stac_fastapi.types.errors import InvalidQueryParameter
from stac_fastapi.pgstac.core import CoreCrudClient


def restore_null_datetime(feature: dict[str, Any], excluded: set[str]) -> None:
    """pgstac strips `"datetime": null` from item properties when it hydrates items
    (stac-utils/pgstac#158, #425), which makes every Item with only
    `start_datetime`/`end_datetime` invalid STAC: the spec requires `datetime` to be
    present, null. Remove once pgstac ships the fix.
    """
    properties = feature.get("properties")
    if (
        isinstance(properties, dict)
        and "datetime" not in properties
        and "start_datetime" in properties
        and "end_datetime" in properties
        and "properties.datetime" not in excluded
    ):
        properties["datetime"] = None


def flat_bbox(bbox: Any) -> Any:
    """A 3-D bbox (6 numbers, which STAC allows) as 2-D: pgstac fails with a 500
    ("Unknown geometry type: 13 - PolyhedralSurface") on the 3-D envelope. Heights
    are not indexed anyway, so dropping them changes no result."""
    if bbox is not None and len(bbox) == 6:
        return type(bbox)([bbox[0], bbox[1], bbox[3], bbox[4]]) if not isinstance(bbox, tuple) else (bbox[0], bbox[1], bbox[3], bbox[4])
    return bbox


def max_page_size(request: Request) -> int:
    return request.app.state.settings.max_page_size


class ZarrStacClient(CoreCrudClient):
    # Every item-returning endpoint (search GET/POST, items, item) goes through here.
    async def _search_base(self, search_request, request: Request):  # type: ignore[override]
        if search_request.limit is not None:
            search_request.limit = min(search_request.limit, max_page_size(request))
        search_request.bbox = flat_bbox(search_request.bbox)
        try:
            item_collection = await super()._search_base(search_request, request)
        except asyncpg.exceptions.RaiseError as exc:
            # pgstac's own refusals of a search (an invalid paging token, ...) are the
            # client's mistake: a 400 with pgstac's message, not a 500.
            raise InvalidQueryParameter(str(exc)) from exc
        fields = getattr(search_request, "fields", None)
        excluded = set(fields.exclude) if fields and fields.exclude else set()
        for feature in item_collection.get("features", []):
            restore_null_datetime(feature, excluded)
        return item_collection

    async def all_collections(self, request: Request, *args: Any, limit: int | None = None, bbox: Any = None, **kwargs: Any):  # type: ignore[override]
        if limit is not None:
            limit = min(limit, max_page_size(request))
        return await super().all_collections(request, *args, limit=limit, bbox=flat_bbox(bbox), **kwargs)
