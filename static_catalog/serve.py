"""Serve a static catalogue folder over HTTP with CORS, so stac-browser can open it.

Only the catalogue's own documents are served (`is_published`): not the crawl's ledger,
the list of pending deletions, temporary files, anything else that happens to be in the
folder, nor a listing of any folder (404 for each). With `published_only=False`, a
folder is served as it is (the tests serve Zarr stores that way).
"""

from __future__ import annotations

import functools
import os
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .paths import PARQUET_TYPE, is_published


class CORSRequestHandler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".geojson": "application/geo+json",
        ".parquet": PARQUET_TYPE,
    }

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        super().end_headers()

    def do_OPTIONS(self) -> None:  # CORS preflight
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # quiet: the demo prints its own status
        pass


class CatalogueRequestHandler(CORSRequestHandler):
    """Serves the files of the catalogue (see `paths.is_published`), and 404 for anything else."""

    def send_head(self):  # noqa: ANN201 - http.server's own signature (a file object or None)
        if not self._published():
            self.send_error(HTTPStatus.NOT_FOUND, "Not a document of this catalogue")
            return None
        return super().send_head()

    def _published(self) -> bool:
        # translate_path decodes %-escapes and drops `..`; realpath follows links: the file
        # must still be inside the folder, a file, and one the catalogue publishes.
        root = os.path.realpath(self.directory)
        path = os.path.realpath(self.translate_path(self.path))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            return False
        return is_published(Path(path).relative_to(root).as_posix())


def make_server(
    directory: str | Path, host: str = "127.0.0.1", port: int = 8081, *, published_only: bool = True
) -> ThreadingHTTPServer:
    handler_class = CatalogueRequestHandler if published_only else CORSRequestHandler
    handler = functools.partial(handler_class, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(
    directory: str | Path, host: str = "127.0.0.1", port: int = 8081, *, published_only: bool = True
) -> ThreadingHTTPServer:
    server = make_server(directory, host, port, published_only=published_only)
    threading.Thread(target=server.serve_forever, name="static-catalogue", daemon=True).start()
    return server
