"""Kerchunk references, as they are read: what fsspec's reference filesystem is given.

Two layouts (see `finding.references`): a JSON document, read here once and whole (up to
the input limit), and a parquet folder, read lazily by fsspec's `LazyReferenceMapper`
(through `ParquetReferences`, which reads an empty cell as empty).
"""

from __future__ import annotations

import json
from typing import Any

from zarr_stac.common.library_fixes.fsspec import ParquetReferences

from ..limits import INPUT_SETTING, read_bounded
from ..vocabulary import KERCHUNK_PARQUET, StoreRef


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
    a `ParquetReferences` mapper: fsspec reads each variable's records when they are first
    used.
    """
    import fsspec

    if ref.kind == KERCHUNK_PARQUET:
        fs, root = fsspec.core.url_to_fs(ref.url, **options)
        return ParquetReferences(root.rstrip("/"), fs=fs), {}, None

    with fsspec.open(ref.url, "rb", **options) as handle:
        raw = handle.read() if limit is None else read_bounded(handle, limit, "the reference", INPUT_SETTING)
    refs = json.loads(raw)
    if not isinstance(refs, dict):
        raise ValueError(f"not a kerchunk reference: a JSON {type(refs).__name__}, not an object")
    return refs, ({"simple_templates": False} if refs.get("gen") else {}), raw
