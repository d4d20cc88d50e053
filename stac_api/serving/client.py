"""stac-fastapi-pgstac's client, with a page-size cap, one pgstac bug worked around, and
checks of the request values that stac-fastapi passes on unchecked (a 500 otherwise)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus, urljoin

import asyncpg
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from stac_fastapi.api.models import GeoJSONResponse
from stac_fastapi.pgstac.core import CoreCrudClient
from stac_fastapi.types.errors import InvalidQueryParameter
from stac_fastapi.types.requests import get_base_url

from .collection_queryables import facet_filter
from .filters import get_filter, validate_post_filter
from .narrowing import narrow


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
        return (
            type(bbox)([bbox[0], bbox[1], bbox[3], bbox[4]])
            if not isinstance(bbox, tuple)
            else (bbox[0], bbox[1], bbox[3], bbox[4])
        )
    return bbox


def json_object_parameter(name: str, value: str | None) -> str | None:
    """A GET parameter that must hold a JSON object (`query`, `intersects`): stac-fastapi
    parses it unchecked, so that text that is no JSON object made a 500, not a 400.
    Empty is absent (`query=` made a 500 in collection search)."""
    if not value:
        return None
    try:
        parsed = orjson.loads(unquote_plus(value))
    except orjson.JSONDecodeError as exc:
        raise InvalidQueryParameter(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidQueryParameter(f"{name} must be a JSON object")
    return value


def direct(content: Any, response_class: type[JSONResponse] = GeoJSONResponse) -> Response:
    """pgstac's answer (plain JSON already) as the response itself. A returned dict goes
    through FastAPI's `jsonable_encoder`, which walks every value: 12 ms for a page of ten
    datacube items. Not stac-fastapi's `enable_direct_response`: that answers 200 where
    the transaction routes answer 201."""
    return content if isinstance(content, Response) else response_class(content)


def max_page_size(request: Request) -> int:
    return request.app.state.settings.max_page_size


class ZarrStacClient(CoreCrudClient):
    async def post_search(self, search_request, request: Request, **kwargs: Any) -> Response:
        validate_post_filter(getattr(search_request, "filter_expr", None))
        return direct(await super().post_search(search_request, request=request, **kwargs))

    async def get_search(
        self, request: Request, *args: Any, query: str | None = None, intersects: str | None = None, **kwargs: Any
    ) -> Response:
        query, intersects = json_object_parameter("query", query), json_object_parameter("intersects", intersects)
        return direct(await super().get_search(request, *args, query=query, intersects=intersects, **kwargs))

    async def item_collection(
        self, collection_id: str, request: Request, *args: Any, query: str | None = None, **kwargs: Any
    ) -> Response:
        query = json_object_parameter("query", query)
        return direct(await super().item_collection(collection_id, request, *args, query=query, **kwargs))

    async def get_item(self, item_id: str, collection_id: str, request: Request, **kwargs: Any) -> Response:
        return direct(await super().get_item(item_id, collection_id, request, **kwargs))

    async def get_collection(self, collection_id: str, request: Request, **kwargs: Any) -> Response:
        collection = await super().get_collection(collection_id, request, **kwargs)
        if self.extension_is_enabled("AggregationExtension"):
            # The extension requires them on each collection; stac-fastapi adds only the landing page's.
            base_url = get_base_url(request)
            collection["links"] += [
                {"rel": r, "type": "application/json", "href": urljoin(base_url, f"collections/{collection_id}/{r}")}
                for r in ("aggregate", "aggregations")
            ]
        return direct(collection, JSONResponse)

    def _clean_search_args(
        self,
        base_args: dict[str, Any],
        *args: Any,
        fields: list[str] | None = None,
        filter_query: str | None = None,
        filter_lang: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        # Every GET that takes a filter (search, items, collections) comes through here:
        # the filter is bounded and validated by `filters` (cached) instead of by stac-fastapi.
        if filter_query:
            base_args["filter"], base_args["filter_lang"] = get_filter(filter_query, filter_lang)
        # `fields=a,,b` or `fields=-` carry empty names, which stac-fastapi indexes (a 500).
        fields = [f for f in fields if f.lstrip("+-")] if fields else fields
        return super()._clean_search_args(base_args, *args, fields=fields, **kwargs)

    # Every item-returning endpoint (search GET/POST, items, item) goes through here.
    async def _search_base(self, search_request, request: Request):
        if search_request.limit is not None:
            search_request.limit = min(search_request.limit, max_page_size(request))
        search_request.bbox = flat_bbox(search_request.bbox)
        try:
            # Over many collections, only those that can match (same results: see narrowing).
            item_collection = await super()._search_base(await narrow(search_request, request), request)
        except asyncpg.exceptions.RaiseError as exc:
            # pgstac's own refusals of a search (an invalid paging token, ...) are the
            # client's mistake: a 400 with pgstac's message, not a 500.
            raise InvalidQueryParameter(str(exc)) from exc
        fields = getattr(search_request, "fields", None)
        excluded = set(fields.exclude) if fields and fields.exclude else set()
        for feature in item_collection.get("features", []):
            restore_null_datetime(feature, excluded)
        return item_collection

    async def all_collections(
        self, request: Request, *args: Any, limit: int | None = None, bbox: Any = None, **kwargs: Any
    ) -> Response:
        if limit is not None:
            limit = min(limit, max_page_size(request))
        kwargs["query"] = json_object_parameter("query", kwargs.get("query"))
        # A filter on a facet reads the collections' summaries of it (collection_queryables).
        kwargs["filter_expr"], kwargs["filter_lang"] = await facet_filter(
            request, kwargs.get("filter_expr"), kwargs.get("filter_lang")
        )
        return direct(
            await super().all_collections(request, *args, limit=limit, bbox=flat_bbox(bbox), **kwargs), JSONResponse
        )
