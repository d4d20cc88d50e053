"""Kerchunk references: virtual Zarr v2 stores whose chunks live in other files.

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

import json
import re
from typing import Any

from .discover import KERCHUNK, KERCHUNK_PARQUET, StoreRef
from .limits import INPUT_SETTING, read_bounded

PARQUET_SUFFIXES = (".parq", ".parquet")
JSON_SUFFIXES = (".json",)
PARQUET_REFS = re.compile(r"^refs\.\d+\.parq$")
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


def is_parquet_zmetadata(raw: bytes) -> bool:
    """Whether a `.zmetadata` is that of a parquet reference folder (it has `record_size`)."""
    try:
        metadata = json.loads(raw)
    except ValueError:
        return False
    return isinstance(metadata, dict) and "record_size" in metadata


def has_parquet_refs(names: set[str]) -> bool:
    """Whether a variable folder's listing holds `refs.N.parq` files."""
    return any(PARQUET_REFS.match(name) for name in names)


def load_references(
    ref: StoreRef, options: dict[str, Any], limit: int | None = None
) -> tuple[Any, dict[str, Any], bytes | None]:
    """(what fsspec's reference filesystem takes as `fo`, the extra options it needs, the
    JSON reference's bytes: its fingerprint, see `ledger`). A JSON reference is read at
    most `limit` bytes far (`limits.TooLarge` beyond: kerchunk's parquet layout is the
    form for references too large to hold in memory).

    A JSON reference is read here once, to see whether it uses spec v1 `gen`: fsspec
    expands `gen` only with `simple_templates=False` (jinja2), slower for plain
    references, so it is asked for only where needed. A parquet folder is passed as
    its URL: fsspec reads each variable's records when they are first used.
    """
    if ref.kind == KERCHUNK_PARQUET:
        return ref.url, {}, None
    import fsspec

    with fsspec.open(ref.url, "rb", **options) as handle:
        raw = handle.read() if limit is None else read_bounded(handle, limit, "the reference", INPUT_SETTING)
    refs = json.loads(raw)
    if not isinstance(refs, dict):
        raise ValueError(f"not a kerchunk reference: a JSON {type(refs).__name__}, not an object")
    return refs, ({"simple_templates": False} if refs.get("gen") else {}), raw


def reference_asset(kind: str) -> tuple[dict[str, Any], str, list[str]]:
    """(xarray open_kwargs, media type, roles) for the asset of a reference store.

    Both layouts open with kerchunk's xarray engine, given the reference filesystem's
    options as `storage_options` (remote_protocol, remote_options, target_options).
    """
    open_kwargs: dict[str, Any] = {"engine": "kerchunk", "chunks": {}}
    if kind == KERCHUNK_PARQUET:
        # A folder of parquet files: no registered media type names it; fsspec's
        # documentation calls it a parquet reference set.
        return open_kwargs, "application/vnd.apache.parquet", ["data", "references"]
    return open_kwargs, "application/json", ["data", "references"]
