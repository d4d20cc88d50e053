"""Failures answered as what they are (400, 503) rather than "500 Internal Server Error".

stac-fastapi-pgstac translates pgstac's own error classes, but lets these reach the
client as a 500 (found by tests/stac_api/test_robustness.py):

- the database refusing a value a request carried: a NUL byte in an id, a token or a
  sortby (PostgreSQL text cannot hold one), NaN in a bbox: SQLSTATE class 22;
- pgstac refusing a request (`RAISE`), e.g. a negative collection-search offset, or
  failing to translate a filter to SQL (`{"op": "in", "args": [..., []]}`, a
  collection search with `filter=false`);
- a POST /search body that is not a JSON object, or not declared JSON (stac-pydantic
  calls `.get` on whatever it gets);
- the database being unreachable, restarting or out of connections. That is no bug of
  the API and not the client's fault either: 503 with Retry-After, so that clients and
  load balancers retry, and a message that names neither the database host nor any
  credentials. The connection pool reconnects by itself once the database is back;
- a read query stopped by `STATEMENT_TIMEOUT` (PostgreSQL cancels it and the backend is
  free again): 503 saying so, without Retry-After, since the same request would be
  stopped again; the client narrows it instead;
- a search larger than the database can hold: PostgreSQL out of (shared) memory, typically
  the lock table when one query plans thousands of partitions (`max_locks_per_transaction`),
  or past one of its limits (class 54): 503 `SearchTooLarge` saying so, not "unavailable".

(A body larger than `MAX_BODY_SIZE` is a 413 from `limits`.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from stac_fastapi.api.models import JSONResponse
from stac_fastapi.api.routes import add_route_dependencies
from stac_fastapi.pgstac.db import get_connection as pgstac_get_connection

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

# What asyncpg raises when it cannot reach or keep a connection. OSError: refused, reset,
# unreachable (asyncio raises a plain OSError when every address of a host fails).
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,  # connecting took too long
    asyncpg.exceptions.PostgresConnectionError,  # 08xxx: the connection was lost
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections, disk full
    asyncpg.exceptions.InterfaceError,  # "connection is closed", "pool is closing"
)

# The client's mistake, whatever the database or pgstac says about it.
REFUSED_BY_DATABASE: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DataError,  # 22xxx: bad value (NUL byte, NaN, out of range, ...)
    asyncpg.exceptions.RaiseError,  # pgstac's own refusals (P0001)
    # pgstac's SQL for a filter it cannot express (`in` with an empty list, a collection
    # search `filter=false`): no statement of this API is written by hand, each comes
    # from pgstac translating the request.
    asyncpg.exceptions.PostgresSyntaxError,  # 42601
    asyncpg.exceptions.DatatypeMismatchError,  # 42804
)


class DatabaseUnavailable(Exception):
    """The database cannot be reached: its message names no host, port or credential,
    since stac-fastapi's health check returns the message of what it catches."""

    def __init__(self) -> None:
        super().__init__("The catalogue database is unavailable; try again shortly.")


class QueryTimeout(Exception):
    """A query of this request ran longer than `STATEMENT_TIMEOUT` and PostgreSQL stopped it."""


class SearchTooLarge(Exception):
    """A query of this request needed more memory, or more locks, than the database has."""


# What the database cannot do for one query, however often it is asked alone.
TOO_LARGE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.OutOfMemoryError,  # 53200: "out of shared memory" (the lock table) or memory
    asyncpg.exceptions.ProgramLimitExceededError,  # 54xxx: too complex, too many arguments, ...
)


def is_statement_timeout(exc: BaseException) -> bool:
    # 57014 is also an operator's pg_cancel_backend: that one stays "unavailable".
    return isinstance(exc, asyncpg.exceptions.QueryCanceledError) and "statement timeout" in str(exc)


@asynccontextmanager
async def get_connection(request: Request, readwrite: Literal["r", "w"] = "r") -> AsyncIterator[asyncpg.Connection]:
    """stac-fastapi-pgstac's connection getter (every query goes through it), with
    connection failures, while connecting or during a query, as `DatabaseUnavailable`,
    and a query stopped by `STATEMENT_TIMEOUT` as `QueryTimeout`."""
    try:
        async with pgstac_get_connection(request, readwrite) as conn:
            yield conn
    except asyncpg.exceptions.QueryCanceledError as exc:
        if not is_statement_timeout(exc):
            logger.warning("query cancelled for %s %s: %s", request.method, request.url.path, exc)
            raise DatabaseUnavailable() from exc
        logger.warning("statement timeout for %s %s", request.method, request.url.path)
        raise QueryTimeout() from exc
    except TOO_LARGE as exc:
        logger.warning(
            "too large for the database: %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc
        )
        raise SearchTooLarge() from exc
    except CONNECTION_FAILURES as exc:
        # The original text may name the database host and port: logged, not returned.
        logger.warning(
            "database unavailable for %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc
        )
        raise DatabaseUnavailable() from exc


def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"code": "ServiceUnavailable", "description": str(exc)},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def query_timeout(request: Request, exc: Exception) -> JSONResponse:
    seconds = request.app.state.settings.statement_timeout
    return JSONResponse(
        status_code=503,
        content={
            "code": "QueryTimeout",
            "description": f"The query took longer than this API allows ({seconds:g} s) and was stopped: "
            "narrow it (fewer or simpler filter clauses, a smaller area or period, named collections) "
            "and send it again.",
        },
    )


def search_too_large(request: Request, exc: Exception) -> JSONResponse:
    # No Retry-After: the same request would most likely fail again (it may pass when fewer
    # searches run at once, since the lock table is shared).
    return JSONResponse(
        status_code=503,
        content={
            "code": "SearchTooLarge",
            "description": "The search needs more of the database than it can give one query (it spans too "
            "many collections' partitions for its lock table, max_locks_per_transaction): name the collections "
            "to search, or narrow it with a bbox, a datetime or a filter on a facet (=, in), and send it again.",
        },
    )


def refused_by_database(request: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL's and pgstac's messages name the offending value, never a credential.
    message = getattr(exc, "message", None) or str(exc)
    logger.info("refused by the database: %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, message)
    return JSONResponse(status_code=400, content={"code": "InvalidQueryParameter", "description": message})


async def json_object_body(request: Request) -> None:
    """Refuse a body that is not a JSON object before stac-pydantic's validators see it.

    FastAPI hands a body of any other Content-Type (or none) over as bytes, and stac-pydantic's
    validators call `.get` on whatever they get: both made a 500."""
    body = await request.body()  # cached: FastAPI reads the same body afterwards
    if not body:
        return  # FastAPI answers 400, "Field required"
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (
        media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        raise HTTPException(
            status_code=415, detail="The request body must be JSON, sent with Content-Type: application/json"
        )
    try:
        parsed: Any = json.loads(body)  # as FastAPI parses it (NaN, integers of any size)
    except (ValueError, RecursionError):
        return  # malformed JSON: FastAPI answers 400, "JSON decode error"
    if not isinstance(parsed, dict):
        # Without the input: echoed, a huge integer in it would fail the JSON response.
        raise RequestValidationError(
            [{"type": "dict_type", "loc": ("body",), "msg": "The request body must be a JSON object"}]
        )


def add_error_handlers(app: FastAPI, prefix: str = "") -> None:
    """The handlers, and the body check of POST /search (pass `get_connection` to
    `connect_to_db` for the 503s)."""
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    app.add_exception_handler(QueryTimeout, query_timeout)
    app.add_exception_handler(SearchTooLarge, search_too_large)
    for exc in REFUSED_BY_DATABASE:
        app.add_exception_handler(exc, refused_by_database)
    add_route_dependencies(
        app.router.routes, [{"path": f"{prefix}/search", "method": "POST"}], [Depends(json_object_body)]
    )
