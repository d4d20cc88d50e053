"""An HTTP server that serves a folder only to requests carrying a credential, and records them.

The credential is basic auth (a URL's `USER:PASSWORD@`) or query parameters (a URL's
`?token=...`, a signed URL's `X-Amz-Signature=...`, an Azure SAS `sv=...&sig=...`): a
request is answered when it carries all the parameters of one accepted query, or one
accepted user and password; else 401 (or 403 for a wrong query, as object stores do). Each
request is recorded with its path, query and headers, so a test can tell what reached it.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


@dataclass
class GuardedHTTP:
    root: Path
    logins: set[tuple[str, str]] = field(default_factory=set)  # (user, password)
    queries: list[dict[str, str]] = field(default_factory=list)  # each: parameters that must all be present
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        guard = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(guard.root), **kwargs)

            def _status(self) -> int:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                auth = self.headers.get("Authorization", "")
                login = None
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    login = (user, password)
                if login in guard.logins or any(q.items() <= query.items() for q in guard.queries):
                    status = 200
                else:
                    status = 403 if query else 401
                guard.seen.append(Seen(self.command, parts.path, query, dict(self.headers.items()), status))
                return status

            def _answer(self, body: bool) -> None:
                status = self._status()
                if status != 200:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    if status == 401:
                        self.send_header("WWW-Authenticate", 'Basic realm="data"')
                    self.end_headers()
                    return
                self.path = urlsplit(self.path).path
                super().do_GET() if body else super().do_HEAD()

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def requests_for(self, path_prefix: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.startswith(path_prefix)]

    def __enter__(self) -> GuardedHTTP:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
