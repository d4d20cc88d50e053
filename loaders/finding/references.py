"""Kerchunk references, as a crawl tells them apart: virtual Zarr v2 stores whose chunks live in other files.

Two layouts, both read through fsspec's reference filesystem (which expands
spec v1 `templates` and `gen` too):

- JSON (`*.json`): one document, `{"version": 1, "refs": {...}}` or a bare
  version-0 mapping of keys (`.zgroup`, `x/.zarray`, ...) to data or byte ranges;
- parquet (fsspec's `LazyReferenceMapper` layout, as kerchunk writes large
  aggregations): a folder holding `.zmetadata` (with a `record_size` key) and, per
  variable, `<var>/refs.<N>.parq` files of (path, offset, size, raw) rows.

Crawls recognise both beside Zarr stores; only the JSON files that look like
references are taken (a bucket holds many other JSON files: STAC, intake-esm,
configuration), by their first bytes, without reading them whole.
"""

from __future__ import annotations

import re

from ..vocabulary import KERCHUNK, KERCHUNK_PARQUET

PARQUET_SUFFIXES = (".parq", ".parquet")
JSON_SUFFIXES = (".json",)
HEAD_BYTES = 64 * 1024  # of a JSON file, enough to tell a reference from other JSON

# A reference's first bytes: spec v1 names "version" and "refs"/"templates"/"gen" at the
# top; version 0 starts with Zarr keys (".zgroup", ".zattrs", "<var>/.zarray").
_V1_VERSION = re.compile(r'"version"\s*:\s*1\b')
_V1_KEYS = re.compile(r'"(refs|templates|gen)"\s*:\s*[\[{]')
_V1_FIRST = re.compile(r'^\{\s*"(refs|templates|gen)"\s*:\s*[\[{]')  # "version" written last
_V0_KEYS = re.compile(r'^\s*\{\s*"(\.zgroup|\.zattrs|\.zmetadata|[^"/]+/\.z(array|attrs|group))"\s*:')


def reference_kind(url: str) -> str | None:
    """KERCHUNK or KERCHUNK_PARQUET when the URL's name says so, else None."""
    name = url.rstrip("/").lower()
    if name.endswith(PARQUET_SUFFIXES):
        return KERCHUNK_PARQUET
    if name.endswith(JSON_SUFFIXES):
        return KERCHUNK
    return None


def looks_like_json_reference(head: bytes) -> bool:
    """Whether the first bytes of a JSON document are those of a kerchunk reference."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text.startswith("{"):
        return False  # a list (of references, say) is not one store
    if (_V1_VERSION.search(text) and _V1_KEYS.search(text)) or _V1_FIRST.match(text):
        return True
    return bool(_V0_KEYS.match(text))
