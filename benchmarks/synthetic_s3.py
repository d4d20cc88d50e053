"""A read-only S3-compatible server of many copies of one Zarr store, for scale.

moto keeps every object in a Python dict behind one interpreter and tops out at a
few hundred requests per second; 100,000 stores would take hours to write into
it. This server instead serves `count` virtual stores, `<prefix>store-000000.zarr`
... each a copy of one real template store, and answers the requests a crawl
makes: ListObjectsV2 (prefix, delimiter, pagination), GetObject and HeadObject.
An optional fixed latency per request models a remote object store.

    python -m benchmarks.synthetic_s3 TEMPLATE_DIR --count N [--latency S] [--port P]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

STORE_NAME = re.compile(r"store-(\d{6})\.zarr")
PAGE = 1000


class SyntheticBucket:
    def __init__(
        self, template: Path, count: int, bucket: str = "synthetic", prefix: str = "stores/", latency: float = 0.0
    ):
        self.files = {p.relative_to(template).as_posix(): p.read_bytes() for p in template.rglob("*") if p.is_file()}
        self.count = count
        self.bucket = bucket
        self.prefix = prefix
        self.latency = latency
        self.requests = 0

    def store_names(self) -> list[str]:
        return [f"store-{i:06d}.zarr" for i in range(self.count)]

    def resolve(self, key: str) -> bytes | None:
        if not key.startswith(self.prefix):
            return None
        name, _, inner = key[len(self.prefix) :].partition("/")
        match = STORE_NAME.fullmatch(name)
        if not match or int(match.group(1)) >= self.count:
            return None
        return self.files.get(inner)

    def listing(self, prefix: str, delimiter: str) -> tuple[list[tuple[str, int]], list[str]]:
        """(objects as (key, size), common prefixes) under `prefix`, sorted."""
        if self.prefix.startswith(prefix) and prefix != self.prefix:
            return ([], [self.prefix]) if delimiter == "/" else ([], [])
        if prefix == self.prefix and delimiter == "/":
            return [], [f"{self.prefix}{name}/" for name in self.store_names()]
        if prefix.startswith(self.prefix):
            name, _, inner = prefix[len(self.prefix) :].partition("/")
            if STORE_NAME.fullmatch(name) and int(name[6:12]) < self.count:
                base = f"{self.prefix}{name}/"
                objects, prefixes = [], set()
                for path, data in sorted(self.files.items()):
                    if not path.startswith(inner):
                        continue
                    rest = path[len(inner) :]
                    if delimiter == "/" and "/" in rest:
                        prefixes.add(base + inner + rest.split("/")[0] + "/")
                    else:
                        objects.append((base + path, len(data)))
                return objects, sorted(prefixes)
        return [], []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/_stats":  # for benchmarks: how many requests a crawl made
            return web.json_response({"requests": self.requests})
        self.requests += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        bucket, _, key = request.path.lstrip("/").partition("/")
        if bucket != self.bucket:
            return web.Response(
                status=404, text="<Error><Code>NoSuchBucket</Code></Error>", content_type="application/xml"
            )
        if not key and "list-type" in request.query:
            return self.list_objects(request)
        if not key:
            return web.Response(status=200)
        data = self.resolve(key)
        if data is None:
            return web.Response(
                status=404, text="<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml"
            )
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": "Sun, 22 Nov 2026 00:00:00 GMT",
            "Content-Type": "application/octet-stream",
        }
        if request.method == "HEAD":
            response = web.StreamResponse(status=200, headers=headers)
            response.content_length = len(data)
            await response.prepare(request)
            return response
        return web.Response(status=200, body=data, headers=headers)

    def list_objects(self, request: web.Request) -> web.Response:
        prefix = request.query.get("prefix", "")
        delimiter = request.query.get("delimiter", "")
        token = request.query.get("continuation-token") or request.query.get("start-after") or ""
        max_keys = min(int(request.query.get("max-keys", PAGE)), PAGE)
        objects, prefixes = self.listing(prefix, delimiter)
        entries = sorted([(k, s) for k, s in objects] + [(p, None) for p in prefixes])
        entries = [e for e in entries if e[0] > token]
        page, more = entries[:max_keys], len(entries) > max_keys
        body = [
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f"<Name>{self.bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
            f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{'true' if more else 'false'}</IsTruncated>"
        ]
        if more:
            body.append(f"<NextContinuationToken>{escape(page[-1][0])}</NextContinuationToken>")
        for key, size in page:
            if size is None:
                body.append(f"<CommonPrefixes><Prefix>{escape(key)}</Prefix></CommonPrefixes>")
            else:
                body.append(
                    f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size><LastModified>2026-11-22T00:00:00.000Z</LastModified><ETag>&quot;0&quot;</ETag><StorageClass>STANDARD</StorageClass></Contents>"
                )
        body.append("</ListBucketResult>")
        return web.Response(text="".join(body), content_type="application/xml")


class SyntheticS3Server:
    """Runs the server in its own process (its CPU must not compete with the crawler's GIL)."""

    def __init__(self, template: Path, count: int, *, latency: float = 0.0, port: int | None = None):
        from zarr_stac.services.base import free_port

        self.template, self.count, self.latency = Path(template), count, latency
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> SyntheticS3Server:
        import subprocess
        import sys
        import time

        import httpx

        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.synthetic_s3",
                str(self.template),
                "--count",
                str(self.count),
                "--latency",
                str(self.latency),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,  # benchmarks is a folder of the checkout, not installed
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.endpoint_url}/synthetic", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("synthetic S3 server did not start")

    def requests(self) -> int:
        import httpx

        return httpx.get(f"{self.endpoint_url}/_stats").json()["requests"]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> SyntheticS3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("template", type=Path)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    bucket = SyntheticBucket(args.template, args.count, latency=args.latency)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", bucket.handle)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=lambda *a: print("serving", flush=True))


if __name__ == "__main__":
    main()
