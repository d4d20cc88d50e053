"""The STAC API aggregation extension (v0.3.0) over pgstac: counts of what a search matches.

stac-fastapi ships the extension's routes and request models but no pgstac client, and
pgstac has no aggregation of its own (stac-fastapi-pgstac#422, pgstac#257). This client
turns the request into pgstac's own WHERE clause (`pgstac.stac_search_to_where`, the
function `/search` uses: bbox, intersects, datetime, ids, collections, filter, query, q
mean exactly what they mean there) and counts with GROUP BY. No SQL is made from the
request's text except by pgstac's functions; the facet's expression is pgstac's own
(`pgstac.queryable`) and only for a name registered in `pgstac.queryables`; values go as
bound parameters. Each query runs on the read pool, under `STATEMENT_TIMEOUT`.

Aggregations (names as the extension recommends):

- `total_count`, `datetime_min` (earliest start), `datetime_max` (latest end);
- `collection_frequency`: items per collection;
- `<facet>_frequency` for each facet zarr-stac registers at load (`experiment_id_frequency`):
  items per value; an Item whose facet is a list (`variables`) counts once under each value,
  an Item without it under none;
- `datetime_frequency`: items per hour, day, month or year of their start, whichever is the
  finest that keeps the matched period within about `DATETIME_BUCKETS` buckets (`interval`
  says which).

A frequency returns at most `MAX_BUCKETS` buckets, the most frequent first; `overflow`
counts what the others held. With no `aggregations` parameter, `total_count` is returned; one
request may ask for at most `MAX_AGGREGATIONS` (20), each a pass over the matched items.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, cast
from urllib.parse import urljoin

import attr
import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from stac_fastapi.api.models import CollectionUri, EmptyRequest, create_request_model
from stac_fastapi.api.routes import add_route_dependencies, create_async_endpoint
from stac_fastapi.extensions.aggregation import AggregationConformanceClasses
from stac_fastapi.extensions.aggregation import AggregationExtension as StacFastapiAggregationExtension
from stac_fastapi.extensions.aggregation.client import AsyncBaseAggregationClient
from stac_fastapi.extensions.aggregation.request import (
    AggregationExtensionGetRequest,
    AggregationExtensionPostRequest,
)
from stac_fastapi.pgstac.types.search import PgstacSearch
from stac_fastapi.types.extension import ApiExtension
from stac_fastapi.types.requests import get_base_url

from .client import ZarrStacClient, flat_bbox, json_object_parameter
from .errors import json_object_body
from .filters import validate_post_filter

MAX_BUCKETS = 1000  # buckets of one frequency; the rest is counted in `overflow`
MAX_AGGREGATIONS = 20  # aggregations one request may ask for
DATETIME_BUCKETS = 100  # about as many as `datetime_frequency` aims for
# Coarser and coarser intervals, each with its length in seconds (a month or year at its longest).
INTERVALS = (("hour", 3600), ("day", 86400), ("month", 31 * 86400), ("year", 366 * 86400))

# Queryables every pgstac has, which are no facet (the Item's own fields).
NOT_FACETS = {"id", "collection", "geometry", "datetime", "start_datetime", "end_datetime"}

ALWAYS = {
    "total_count": "integer",
    "datetime_min": "datetime",
    "datetime_max": "datetime",
    "collection_frequency": "string",
    "datetime_frequency": "datetime",
}
FACET_SUFFIX = "_frequency"
AGGREGATION = AggregationConformanceClasses.AGGREGATION.value

# The search fields that narrow the matched items; others (limit, token, sortby, fields, conf) do not.
SEARCH_FIELDS = ("ids", "collections", "bbox", "intersects", "datetime", "filter", "filter-lang", "query", "q")


class AggregationPostRequest(PgstacSearch, AggregationExtensionPostRequest):
    """A search as POST /search takes it (pgstac's model), with `aggregations` and `q`."""

    q: str | list[str] | None = None


def aggregation_extension(search_extensions: list[ApiExtension]) -> "AggregationExtension":
    """The extension, taking the search parameters of the enabled search extensions
    (filter, query, free text) beside the core ones."""
    narrowing = [e for e in search_extensions if type(e).__name__ in {"SearchFilterExtension", "QueryExtension"}]
    client = PgstacAggregationClient()
    extension = AggregationExtension(
        client=client,
        conformance_classes=[f"{AGGREGATION}", *(f"{AGGREGATION}#{e}" for e in ("filter", "query"))],
    )
    # attrs (GET) and pydantic (POST) classes made at run time, which stac-fastapi types as one kind.
    extension.GET = create_request_model(  # type: ignore[assignment]
        "AggregationGetRequest", base_model=AggregationGetRequest, extensions=narrowing, request_type="GET"
    )
    extension.POST = create_request_model(  # type: ignore[assignment]
        "AggregationPostRequest", base_model=AggregationPostRequest, extensions=narrowing, request_type="POST"
    )
    # GET parameters become this model as well, so both methods mean the same search.
    client.search_model = extension.POST
    return extension


@attr.s
class AggregationExtension(StacFastapiAggregationExtension):
    """stac-fastapi's extension, whose per-collection routes declare `collection_id`
    (stac-fastapi 7.0 leaves it out of their OpenAPI document, which is then invalid).
    The same class name: stac-fastapi finds its extensions by it (`extension_is_enabled`)."""

    def register(self, app: FastAPI) -> None:
        self.router.prefix = app.state.router_prefix
        in_collection = attr.make_class("CollectionAggregationGetRequest", attrs={}, bases=(CollectionUri, self.GET))
        post_model = self.POST

        async def aggregate_in_collection(
            request: Request,
            collection_id: Annotated[str, Path(description="Collection ID")],
            body: post_model,  # type: ignore[valid-type]  # a model made at run time, which FastAPI reads
        ) -> Any:
            return await client.aggregate(body, request=request)

        client = cast(PgstacAggregationClient, self.client)
        aggregations, aggregate = client.get_aggregations, client.aggregate
        routes = [
            ("/aggregations", "GET", aggregations, EmptyRequest),
            ("/aggregations", "POST", aggregations, EmptyRequest),
            ("/collections/{collection_id}/aggregations", "GET", aggregations, CollectionUri),
            ("/collections/{collection_id}/aggregations", "POST", aggregations, CollectionUri),
            ("/aggregate", "GET", aggregate, self.GET),
            ("/aggregate", "POST", aggregate, self.POST),
            ("/collections/{collection_id}/aggregate", "GET", aggregate, in_collection),
        ]
        # One route per method: one route of two methods gives both the same operation id.
        for path, method, function, model in routes:
            name = ("Collection " if "{" in path else "") + path.rsplit("/", 1)[1].capitalize()
            self.router.add_api_route(
                name=name, path=path, methods=[method], endpoint=create_async_endpoint(function, model)
            )
        self.router.add_api_route(
            name="Collection Aggregate",
            path="/collections/{collection_id}/aggregate",
            methods=["POST"],
            endpoint=aggregate_in_collection,
        )
        app.include_router(self.router, tags=["Aggregation Extension"])


@attr.s
class AggregationGetRequest(AggregationExtensionGetRequest):
    """GET /aggregate: the search's parameters and `q` (pgstac reads it in items' title,
    description and keywords, as in collection search)."""

    q: str | None = attr.ib(default=None)


def require_json_bodies(app: FastAPI, prefix: str = "") -> None:
    """POST bodies that are not JSON objects: 400/415, as for POST /search (errors.json_object_body)."""
    add_route_dependencies(
        app.router.routes,
        [
            {"path": f"{prefix}/aggregate", "method": "POST"},
            {"path": f"{prefix}/collections/{{collection_id}}/aggregate", "method": "POST"},
        ],
        [Depends(json_object_body)],
    )


@attr.s
class PgstacAggregationClient(AsyncBaseAggregationClient):
    # Its request checks (filter bounds, bad JSON parameters) and pgstac search model, not a copy.
    search_client: ZarrStacClient = attr.ib(factory=lambda: ZarrStacClient(pgstac_search_model=PgstacSearch))
    search_model: type[PgstacSearch] = attr.ib(default=AggregationPostRequest)

    async def get_aggregations(  # type: ignore[override]  # the JSON as served, not stac-fastapi's TypedDict
        self, collection_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        request: Request = kwargs["request"]
        available = await self._available(request, collection_id)
        return {
            "type": "AggregationCollection",
            "aggregations": [{"name": name, "data_type": data_type} for name, data_type in available.items()],
            "links": self._links(request, "aggregations", collection_id),
        }

    async def aggregate(self, search_request: Any = None, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        request: Request = kwargs.pop("request")
        collection_id = request.path_params.get("collection_id")
        if isinstance(search_request, AggregationExtensionPostRequest):
            names = search_request.aggregations
            search = self._post_search(search_request)
        else:
            names = kwargs.pop("aggregations", None)
            search = self._get_search(**kwargs)
        if collection_id is not None:
            search["collections"] = [collection_id]
        names = list(dict.fromkeys(names or ["total_count"]))
        if len(names) > MAX_AGGREGATIONS:
            # Each is a pass over the matched items: a bound on what one request may cost.
            raise HTTPException(400, f"At most {MAX_AGGREGATIONS} aggregations per request ({len(names)} asked)")
        async with request.app.state.get_connection(request, "r") as conn:
            available = await self._available(request, collection_id, conn)
            unknown = [n for n in names if n not in available]
            if unknown:
                scope = f"collection {collection_id}" if collection_id else "this API"
                listed = ", ".join(repr(n[:100]) for n in unknown[:5])
                raise HTTPException(
                    400,
                    f"Aggregation {listed} is not offered for {scope}: "
                    f"see {'collections/' + collection_id + '/' if collection_id else ''}aggregations",
                )
            where = await conn.fetchval(
                "SELECT pgstac.stac_search_to_where($1::text::jsonb)", orjson.dumps(search).decode()
            )
            collections = search.get("collections")
            results = [await self._aggregate(conn, name, where, collections) for name in names]
        return {
            "type": "AggregationCollection",
            "aggregations": results,
            "links": self._links(request, "aggregate", collection_id),
        }

    # -- the search ---------------------------------------------------------------------
    def _get_search(
        self,
        collections: list[str] | None = None,
        ids: list[str] | None = None,
        bbox: Any = None,
        intersects: str | None = None,
        datetime: str | None = None,
        query: str | None = None,
        filter_expr: str | None = None,
        filter_lang: str | None = None,
        q: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        """What GET /search would send pgstac for these parameters (the same checks)."""
        query = json_object_parameter("query", query)
        intersects = json_object_parameter("intersects", intersects)
        base_args = {
            "collections": collections,
            "ids": ids,
            "bbox": flat_bbox(bbox),
            "query": orjson.loads(query) if query else None,
        }
        clean = self.search_client._clean_search_args(  # noqa: SLF001 - the search's own, so both mean the same
            base_args,
            intersects=intersects,
            datetime=datetime,
            filter_query=filter_expr,
            filter_lang=filter_lang,
            q=q,
        )
        try:
            model = self.search_model(**clean)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"Invalid parameters provided {exc}") from None
        return self._narrowing(model)

    def _post_search(self, search_request: PgstacSearch) -> dict[str, Any]:
        validate_post_filter(getattr(search_request, "filter_expr", None))
        search_request.bbox = flat_bbox(search_request.bbox)
        return self._narrowing(search_request)

    @staticmethod
    def _narrowing(model: PgstacSearch) -> dict[str, Any]:
        dumped = orjson.loads(model.model_dump_json(exclude_none=True, by_alias=True))
        return {key: dumped[key] for key in SEARCH_FIELDS if key in dumped}

    # -- what may be asked --------------------------------------------------------------
    async def _available(self, request: Request, collection_id: str | None, conn: Any = None) -> dict[str, str]:
        """The aggregations offered (name: data type), for one collection or all."""
        if conn is None:
            async with request.app.state.get_connection(request, "r") as conn:
                return await self._available(request, collection_id, conn)
        if collection_id is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM pgstac.collections WHERE id = $1)", collection_id
        ):
            raise HTTPException(404, f"Collection {collection_id} does not exist.")
        rows = await conn.fetch(
            "SELECT name, definition FROM pgstac.queryables WHERE NOT (name = ANY($1::text[])) "
            "AND ($2::text IS NULL OR collection_ids IS NULL OR $2 = ANY(collection_ids)) ORDER BY name",
            sorted(NOT_FACETS),
            collection_id,
        )
        facets = {}
        for row in rows:
            definition = orjson.loads(row["definition"]) if isinstance(row["definition"], str) else row["definition"]
            kind = (definition or {}).get("type")
            if kind == "array":
                kind = ((definition.get("items") or {}).get("type")) or "string"
            if kind in ("string", "integer", "number", "boolean"):
                facets[row["name"] + FACET_SUFFIX] = "numeric" if kind in ("integer", "number") else "string"
        return {**ALWAYS, **facets}

    # -- counting -----------------------------------------------------------------------
    async def _aggregate(self, conn: Any, name: str, where: str, collections: list[str] | None) -> dict[str, Any]:
        # `where` is pgstac's own translation of the search (values quoted by it, as its
        # search() runs it); nothing else of the request is spliced into SQL text.
        if name == "total_count":
            value = await conn.fetchval(f"SELECT count(*) FROM pgstac.items WHERE {where}")
            return {"name": name, "data_type": "integer", "value": value}
        if name in ("datetime_min", "datetime_max"):
            column = "min(datetime)" if name == "datetime_min" else "max(end_datetime)"
            value = await conn.fetchval(f"SELECT {column} FROM pgstac.items WHERE {where}")
            return {"name": name, "data_type": "datetime", "value": rfc3339(value) if value else None}
        if name == "collection_frequency":
            return await self._frequency(conn, name, "string", "collection", "", where)
        if name == "datetime_frequency":
            return await self._datetime_frequency(conn, where)
        facet = name[: -len(FACET_SUFFIX)]
        row = await conn.fetchrow("SELECT path, definition FROM pgstac.queryable($1, $2::text[])", facet, collections)
        if row is None or row["path"] is None:  # unregistered since the list was read
            raise HTTPException(400, f"Aggregation {name!r} is not offered")
        path, definition = row["path"], row["definition"]
        definition = orjson.loads(definition) if isinstance(definition, str) else definition or {}
        kind = definition.get("type")
        if kind == "array":
            # A list counts under each of its values (a single value as a list of one).
            values = (
                f" CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof({path}) WHEN 'array' THEN {path} "
                f"ELSE jsonb_build_array({path}) END) AS v(value)"
            )
            kind = (definition.get("items") or {}).get("type")
            key = "v.value #>> '{}'"
        else:
            values, key = "", f"({path}) #>> '{{}}'"
        # The extension's data types: numbers are `numeric`, anything else (booleans too) `string`.
        data_type = "numeric" if kind in ("integer", "number") else "string"
        return await self._frequency(conn, name, data_type, key, values, where)

    @staticmethod
    async def _frequency(conn: Any, name: str, data_type: str, key: str, join: str, where: str) -> dict[str, Any]:
        rows = await conn.fetch(
            f"""SELECT key, n, sum(n) OVER () AS total FROM (
                SELECT {key} AS key, count(*) AS n FROM pgstac.items{join} WHERE {where} GROUP BY 1
            ) g WHERE key IS NOT NULL ORDER BY n DESC, key LIMIT $1""",
            MAX_BUCKETS,
        )
        buckets = [{"key": row["key"], "data_type": data_type, "frequency": row["n"]} for row in rows]
        total = rows[0]["total"] if rows else 0
        return {
            "name": name,
            "data_type": data_type,
            "buckets": buckets,
            "overflow": int(total - sum(b["frequency"] for b in buckets)),
        }

    @staticmethod
    async def _datetime_frequency(conn: Any, where: str) -> dict[str, Any]:
        low, high = await conn.fetchrow(f"SELECT min(datetime), max(datetime) FROM pgstac.items WHERE {where}")
        interval = datetime_interval(low, high)
        rows = await conn.fetch(
            f"""SELECT key, n, sum(n) OVER () AS total FROM (
                SELECT date_trunc($2, datetime, 'UTC') AS key, count(*) AS n FROM pgstac.items
                WHERE {where} GROUP BY 1
            ) g ORDER BY key LIMIT $1""",
            MAX_BUCKETS,
            interval,
        )
        buckets = [{"key": rfc3339(row["key"]), "data_type": "datetime", "frequency": row["n"]} for row in rows]
        total = rows[0]["total"] if rows else 0
        return {
            "name": "datetime_frequency",
            "data_type": f"interval_{interval}",
            "interval": interval,
            "buckets": buckets,
            "overflow": int(total - sum(b["frequency"] for b in buckets)),
        }

    @staticmethod
    def _links(request: Request, rel: str, collection_id: str | None) -> list[dict[str, Any]]:
        base_url = get_base_url(request)
        path = f"collections/{collection_id}/{rel}" if collection_id else rel
        links = [
            {"rel": "root", "type": "application/json", "href": base_url},
            {"rel": "self", "type": "application/json", "href": urljoin(base_url, path)},
        ]
        if collection_id:
            href = urljoin(base_url, f"collections/{collection_id}")
            links.append({"rel": "collection", "type": "application/json", "href": href})
        return links


def datetime_interval(low: datetime | None, high: datetime | None) -> str:
    """The finest of hour, day, month, year that spans low..high in about DATETIME_BUCKETS buckets."""
    if low is None or high is None:
        return "year"
    span = (high - low).total_seconds()
    for interval, seconds in INTERVALS:
        if span / seconds < DATETIME_BUCKETS:
            return interval
    return "year"


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
