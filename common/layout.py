"""Where each store goes in the catalogue: its collection, its item id.

The default layout makes one collection per top-level prefix below the crawl root
and names each item after the rest of its path, so
`s3://bucket/cmip6/ModelA/historical/r1i1p1f1/tas/gn.zarr` crawled from
`s3://bucket` becomes item `ModelA.historical.r1i1p1f1.tas.gn` of collection
`cmip6`. Stores directly below the root go to a collection named after the root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .storage import basename, relative_key

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@lru_cache(maxsize=65536)
def safe_id(text: str) -> str:
    """An id usable in URLs and file names (stac-fastapi rejects `/`, `:` and others)."""
    cleaned = _UNSAFE.sub("-", text).strip("-.")
    if not cleaned:
        raise ValueError(f"cannot make an id from {text!r}")
    return cleaned


# Suffixes that name a store's format, not the dataset: dropped from ids.
STORE_SUFFIXES = (".zarr", ".json", ".parq", ".parquet")  # stores and kerchunk references


def strip_store_suffix(name: str) -> str:
    for suffix in STORE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Placement:
    collection_id: str
    item_id: str


def path_item_id(root: str, store_url: str) -> str:
    """An item id from the store's whole path below `root`."""
    parts = [p for p in relative_key(root, store_url).split("/") if p] or [basename(store_url)]
    parts[-1] = strip_store_suffix(parts[-1])
    return safe_id(".".join(parts))


def default_placement(root: str, store_url: str) -> Placement:
    parts = [p for p in relative_key(root, store_url).split("/") if p]
    if len(parts) >= 2:
        collection, rest = parts[0], parts[1:]
    else:
        collection = strip_store_suffix(basename(root)) or "zarr"
        rest = parts or [basename(store_url)]
    rest[-1] = strip_store_suffix(rest[-1])
    return Placement(collection_id=safe_id(collection), item_id=safe_id(".".join(rest)))
