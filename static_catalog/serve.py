"""Serve a static catalogue folder over HTTP with CORS, so stac-browser can open it."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class CORSRequestHandler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".geojson": "application/geo+json",
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


def make_server(directory: str | Path, host: str = "127.0.0.1", port: int = 8081) -> ThreadingHTTPServer:
    handler = functools.partial(CORSRequestHandler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(directory: str | Path, host: str = "127.0.0.1", port: int = 8081) -> ThreadingHTTPServer:
    server = make_server(directory, host, port)
    threading.Thread(target=server.serve_forever, name="static-catalogue", daemon=True).start()
    return server
