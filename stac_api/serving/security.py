"""Write access: transaction endpoints require the configured bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from stac_fastapi.api.routes import Scope, add_route_dependencies

from .settings import Settings

# Every route that changes the catalogue (transactions and bulk transactions).
WRITE_SCOPES: list[Scope] = [
    {"path": "/collections", "method": "POST"},
    {"path": "/collections/{collection_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/items", "method": "POST"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/bulk_items", "method": "POST"},
]


def bearer_token_required(settings: Settings) -> Callable[[Request], None]:
    expected = settings.transactions_token.get_secret_value().encode() if settings.transactions_token else b""

    def check(request: Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken does not tell how much of a guess was right.
        if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise HTTPException(
                status_code=401,
                detail="a valid bearer token is required to change the catalogue",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def protect_writes(app: FastAPI, settings: Settings) -> None:
    add_route_dependencies(app.router.routes, WRITE_SCOPES, [Depends(bearer_token_required(settings))])
