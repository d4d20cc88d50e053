"""The STAC API application: stac-fastapi-pgstac, configured by `Settings`.

    uvicorn stac_api.app:create_app --factory --proxy-headers

Everything is stac-fastapi-pgstac's (`instantiate_api`): its extensions (filter,
sort, fields, query, token pagination, collection search with free text), its
CORS and proxy-header middleware (Forwarded, X-Forwarded-Proto/Host/Port), its
health endpoint. Added here: our client (page-size cap, a pgstac fix), the
database from `DATABASE_URL`, a bearer token on write routes, 400/503 answers
where stac-fastapi would answer 500 (`serving.errors`), and bounds on what one
anonymous request may cost: its body (`MAX_BODY_SIZE`: 413, `serving.limits`) and its
queries (`STATEMENT_TIMEOUT` on the read pool's connections: 503).

This module stays `stac_api.app`, outside `serving/`: it is the documented entry
point of deployments (README, docs/deploy.md), which must keep working on upgrade.
"""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI
from stac_fastapi.api.app import StacApi
from stac_fastapi.pgstac.app import instantiate_api
from stac_fastapi.pgstac.db import close_db_connection, connect_to_db
from stac_fastapi.pgstac.models.extensions import Extensions

from .serving.aggregation import aggregation_extension, require_json_bodies
from .serving.client import ZarrStacClient
from .serving.collection_queryables import add_collection_queryables
from .serving.errors import add_error_handlers, get_connection
from .serving.limits import limit_body_size
from .serving.security import protect_writes
from .serving.settings import Settings


def create_api(settings: Settings | None = None) -> StacApi:
    settings = settings or Settings()
    postgres_settings = settings.postgres_settings()
    write_postgres_settings = settings.postgres_settings(writes=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Ours, so that the database comes from our settings rather than PG* variables.
        await connect_to_db(
            app,
            get_conn=get_connection,  # a lost database: 503, not 500 (serving/errors.py)
            postgres_settings=postgres_settings,
            add_write_connection_pool=settings.enable_transactions_extensions,
            write_postgres_settings=write_postgres_settings,
        )
        # What exists now (modules, the app, its routes) lives as long as the process:
        # kept out of the collector, a full collection no longer walks it (~70 ms, once
        # every 40 or so searches, otherwise spent inside one request).
        gc.freeze()
        yield
        await close_db_connection(app)

    extensions = Extensions(settings=settings)
    # Counts of what a search matches (serving/aggregation.py), with the search's own parameters.
    extensions.extra_map["aggregation"] = aggregation_extension(extensions.search)
    api = instantiate_api(client=ZarrStacClient, settings=settings, extensions=extensions, lifespan=lifespan)
    # stac-fastapi injects title and description into the client but not the landing
    # page id, which it reads from the environment at import time.
    api.client.landing_page_id = settings.stac_fastapi_landing_id
    # 413 before a body larger than MAX_BODY_SIZE is read in full (see limits.py).
    limit_body_size(api.app, settings.max_body_size)
    # Bad values, a lost database, a query stopped by the timeout: 400 and 503 rather
    # than 500 (see errors.py).
    add_error_handlers(api.app, prefix=settings.prefix_path)
    require_json_bodies(api.app, prefix=settings.prefix_path)
    add_collection_queryables(api.app, prefix=settings.prefix_path)
    if settings.enable_transactions_extensions:
        protect_writes(api.app, settings)
    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_api(settings).app
