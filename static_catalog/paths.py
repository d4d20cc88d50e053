"""Where each object of a static catalogue sits (relative to its root), and its media type.

catalog.json
.zarr-stac-ledger.jsonl.gz            (what the crawl read, for the next crawl)
.zarr-stac-pending-deletes.json       (objects unlinked, deleted after a grace period)
<collection>/collection.json
<collection>/collection-<hash>.json   (immutable snapshot the root links to)
<collection>/items.parquet            (with geoparquet)
<collection>/<item>/<item>.json

Folders are named after ids (`folder_name`) and can never take the place of one of the
catalogue's own files, whatever a store is called: every file the catalogue writes ends
with one of OWN_SUFFIXES (or is hidden, a name no id has), and a folder whose id ends that
way gets FOLDER_MARK appended (`catalog.json-/`, `<collection>/collection.json-/`).
"""

from __future__ import annotations

import hashlib
import re

from zarr_stac.common.layout import safe_id

CATALOG_FILE = "catalog.json"
COLLECTION_FILE = "collection.json"
GEOPARQUET_FILE = "items.parquet"
# Objects that left the catalogue, and since when (see publication.py).
PENDING_FILE = ".zarr-stac-pending-deletes.json"
# What the crawl catalogued, for the next one to re-read only the stores that changed (loaders.running.ledger).
LEDGER_FILE = ".zarr-stac-ledger.jsonl.gz"
LEDGER_TYPE = "application/gzip"

JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"
PARQUET_TYPE = "application/vnd.apache.parquet"

# Every file the catalogue writes has one of these suffixes (compared without case: `Catalog.JSON`
# is `catalog.json` where case is not told apart), or a name starting with "." (the ledger,
# pending deletes, temporary files), which no id has (`safe_id`).
OWN_SUFFIXES = (".json", ".parquet", ".gz")
# Appended to the folder of an id that ends like one of our files: no id ends with it (safe_id
# strips it), so the folder is no other id's either.
FOLDER_MARK = "-"

ITEM_PATH = re.compile(r"(?P<collection>[^/]+)/(?P<item>[^/]+)/(?P=item)\.json")
SNAPSHOT_PATH = re.compile(r"[^/]+/collection-[0-9a-f]{16}\.json")
# What a reader may fetch: the catalogue's documents, not its ledger, pending deletions or temporary files.
PUBLISHED_PATH = re.compile(
    "|".join(
        [
            re.escape(CATALOG_FILE),
            rf"[^/]+/(?:{re.escape(COLLECTION_FILE)}|{re.escape(GEOPARQUET_FILE)})",
            SNAPSHOT_PATH.pattern,
            ITEM_PATH.pattern,
        ]
    )
)


def is_published(path: str) -> bool:
    """Whether `path` (relative to the root) is where the catalogue puts one of its documents."""
    return not any(part.startswith(".") for part in path.split("/")) and bool(PUBLISHED_PATH.fullmatch(path))


def md5(data: bytes) -> str:
    """The hash objects are compared by (an object store's ETag) and snapshots named by."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def folder_name(id_: str) -> str:
    """The folder of a collection or an item: its id (`safe_id`), with FOLDER_MARK appended
    when the id ends like one of the catalogue's own files (`collection.json`, `items.parquet`,
    a snapshot...). Idempotent: the folder name of a folder name is itself."""
    name = safe_id(id_)
    return name + FOLDER_MARK if name.casefold().endswith(OWN_SUFFIXES) else name


def folder_id(folder: str) -> str:
    """The collection id a folder of `folder_name` was named after (ids are `safe_id`s)."""
    unmarked = folder.removesuffix(FOLDER_MARK)
    return unmarked if unmarked != folder and folder_name(unmarked) == folder else folder


def folded(path: str) -> str:
    """`path` as a filesystem that does not tell case apart sees it (macOS, Windows by default)."""
    return path.casefold()


def collection_path(collection_id: str) -> str:
    return f"{folder_name(collection_id)}/{COLLECTION_FILE}"


def snapshot_path(collection_id: str, stable_bytes: bytes) -> str:
    """The immutable copy of a collection document, named by its content."""
    return f"{folder_name(collection_id)}/collection-{md5(stable_bytes)[:16]}.json"


def item_path(collection_id: str, item_id: str) -> str:
    item = folder_name(item_id)
    return f"{folder_name(collection_id)}/{item}/{item}.json"


def geoparquet_path(collection_id: str) -> str:
    return f"{folder_name(collection_id)}/{GEOPARQUET_FILE}"


def relative_href(from_path: str, to_path: str) -> str:
    """`to_path` as seen from the folder of `from_path` (both relative to the root)."""
    source = from_path.split("/")[:-1]
    target = to_path.split("/")
    common = 0
    while common < len(source) and common < len(target) - 1 and source[common] == target[common]:
        common += 1
    ups = len(source) - common
    return ("../" * ups if ups else "./") + "/".join(target[common:])
