"""Where each object of a static catalogue sits (relative to its root), and its media type.

catalog.json
.zarr-stac-ledger.jsonl.gz            (what the crawl read, for the next crawl)
.zarr-stac-pending-deletes.json       (objects unlinked, deleted after a grace period)
<collection>/collection.json
<collection>/collection-<hash>.json   (immutable snapshot the root links to)
<collection>/items.parquet            (with geoparquet)
<collection>/<item>/<item>.json
"""

from __future__ import annotations

import hashlib
import re

from common.layout import safe_id

CATALOG_FILE = "catalog.json"
COLLECTION_FILE = "collection.json"
GEOPARQUET_FILE = "items.parquet"
# Objects that left the catalogue, and since when (see publication.py).
PENDING_FILE = ".zarr-stac-pending-deletes.json"
# What the crawl catalogued, for the next one to re-read only the stores that changed (loaders.ledger).
LEDGER_FILE = ".zarr-stac-ledger.jsonl.gz"
LEDGER_TYPE = "application/gzip"

JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"
PARQUET_TYPE = "application/vnd.apache.parquet"

ITEM_PATH = re.compile(r"(?P<collection>[^/]+)/(?P<item>[^/]+)/(?P=item)\.json")
SNAPSHOT_PATH = re.compile(r"[^/]+/collection-[0-9a-f]{16}\.json")


def md5(data: bytes) -> str:
    """The hash objects are compared by (an object store's ETag) and snapshots named by."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def collection_path(collection_id: str) -> str:
    return f"{safe_id(collection_id)}/{COLLECTION_FILE}"


def snapshot_path(collection_id: str, stable_bytes: bytes) -> str:
    """The immutable copy of a collection document, named by its content."""
    return f"{safe_id(collection_id)}/collection-{md5(stable_bytes)[:16]}.json"


def item_path(collection_id: str, item_id: str) -> str:
    return f"{safe_id(collection_id)}/{safe_id(item_id)}/{safe_id(item_id)}.json"


def geoparquet_path(collection_id: str) -> str:
    return f"{safe_id(collection_id)}/{GEOPARQUET_FILE}"


def relative_href(from_path: str, to_path: str) -> str:
    """`to_path` as seen from the folder of `from_path` (both relative to the root)."""
    source = from_path.split("/")[:-1]
    target = to_path.split("/")
    common = 0
    while common < len(source) and common < len(target) - 1 and source[common] == target[common]:
        common += 1
    ups = len(source) - common
    return ("../" * ups if ups else "./") + "/".join(target[common:])
