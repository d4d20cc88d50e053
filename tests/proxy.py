"""An HTTP proxy on loopback that records requests and injects faults.

Put it in front of the S3 server to count what a crawl reads (requests, paths,
bytes), to add latency, or to make chosen paths hang, fail or reset. It is a
real HTTP hop: the client under test talks to it exactly as to an object store.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, web

from zarr_stac.services.base import free_port

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class RecordedRequest:
    method: str
    path: str  # path and query, as sent
    status: int
    response_bytes: int


@dataclass
class FaultRules:
    latency: float = 0.0  # seconds added to every request
    hang: re.Pattern | None = None  # requests whose path matches never get an answer
    fail: re.Pattern | None = None  # requests whose path matches are always answered 503
    error_rate: float = 0.0  # share of requests answered 503 SlowDown
    reset_rate: float = 0.0  # share of connections dropped before answering
    slow_rate: float = 0.0  # share of requests answered only after `slow_seconds`
    slow_seconds: float = 0.0
    seed: int = 0

    @property
    def fault_rate(self) -> float:
        return self.error_rate + self.reset_rate + self.slow_rate


@dataclass
class FaultProxy:
    upstream: str
    rules: FaultRules = field(default_factory=FaultRules)
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    requests: list[RecordedRequest] = field(default_factory=list)
    slowed: int = 0  # requests delayed by `slow_rate`

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._random = random.Random(self.rules.seed)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rules = self.rules
        path = request.path_qs
        if rules.latency:
            await asyncio.sleep(rules.latency)
        if rules.hang is not None and rules.hang.search(path):
            await self._stopping.wait()  # never answered; released when the proxy stops
            return web.Response(status=503)
        with self._lock:
            draw = self._random.random()
        if draw < rules.reset_rate:
            if request.transport is not None:
                request.transport.close()
            self._record(request.method, path, 0, 0)
            raise ConnectionResetError("reset by fault proxy")
        if draw < rules.reset_rate + rules.error_rate or (rules.fail is not None and rules.fail.search(path)):
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self._record(request.method, path, 503, len(body))
            return web.Response(status=503, body=body, content_type="application/xml")
        if draw < rules.fault_rate:
            self.slowed += 1
            await asyncio.sleep(rules.slow_seconds)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = request.headers.get("Host", "")
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + path, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            payload = await upstream.read()
            response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            self._record(request.method, path, upstream.status, len(payload))
            if request.method == "HEAD":
                # No body, but the object's size: clients read it from Content-Length.
                response = web.StreamResponse(status=upstream.status, headers=response_headers)
                response.content_length = int(upstream.headers.get("Content-Length", 0))
                await response.prepare(request)
                return response
            return web.Response(status=upstream.status, body=payload, headers=response_headers)

    def _record(self, method: str, path: str, status: int, size: int) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, status, size))

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        self._session = ClientSession(timeout=ClientTimeout(total=None), auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _stop(self) -> None:
        self._stopping.set()
        if self._runner:
            await self._runner.cleanup()
        await self._session.close()

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
