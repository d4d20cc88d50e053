"""The largest request body the API reads (`MAX_BODY_SIZE`): 413 beyond it, body unread.

Checked before anything reads the body: at once when its Content-Length says it is too
large (the client, if it sent `Expect: 100-continue`, never sends it), and while it
streams in otherwise (chunked bodies have no Content-Length), so memory and time stay
bounded whatever the client claims. Not FastAPI's `max_body_size`: for a declared
length, Starlette's limiter replaces every answer with a bare-text 413.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """An HTTPException: FastAPI lets it through from a body read, to the handler below
    (inside the CORS middleware)."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


def too_large(max_body_size: int) -> JSONResponse:
    # The rest of the body is never read: the connection cannot carry another request.
    return JSONResponse(
        status_code=413,
        content={
            "code": "ContentTooLarge",
            "description": f"The request body is larger than this API accepts ({max_body_size} bytes).",
        },
        headers={"Connection": "close"},
    )


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_size:
            await too_large(self.max_body_size)(scope, receive, send)
            return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise BodyTooLarge()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except BodyTooLarge:
            # Read outside a route (no handler saw it): answered here.
            if started:
                raise
            await too_large(self.max_body_size)(scope, receive, send)


def limit_body_size(app: FastAPI, max_body_size: int) -> None:
    """The limit as the innermost middleware (inside CORS: a browser can read the 413),
    before the app starts; stac-fastapi adds its own middleware through the same list."""
    app.user_middleware.append(Middleware(BodySizeLimit, max_body_size=max_body_size))

    def body_too_large(request: Request, exc: Exception) -> JSONResponse:
        return too_large(max_body_size)

    app.add_exception_handler(BodyTooLarge, body_too_large)
