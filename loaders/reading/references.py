"""Kerchunk references, as they are read: what fsspec's reference filesystem is given.

Two layouts (see `finding.references`): a JSON document, read here once and whole (up to
the input limit), and a parquet folder, read lazily by fsspec's `LazyReferenceMapper`
(through `ParquetReferences`, which reads an empty cell as empty).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
from fsspec.implementations.reference import LazyReferenceMapper

from ..limits import INPUT_SETTING, read_bounded
from ..vocabulary import KERCHUNK_PARQUET, StoreRef


def _none_for_null(column: np.ndarray) -> np.ndarray:
    """A `path` or `raw` column with None wherever the cell is null."""
    if column.dtype.kind == "f":  # a column of nulls only, read as float NaN
        return np.full(column.shape, None, dtype=object)
    if column.dtype.kind != "O":
        return column
    column = column.copy()
    column[[isinstance(cell, float) and cell != cell for cell in column]] = None
    return column


class ParquetReferences(LazyReferenceMapper):
    """fsspec's lazy parquet references, a null cell read as None (absent).

    fsspec tells an inline chunk from a URL by `raw is not None`, and a missing reference
    by `path is None`. But a reference set written with the pyarrow engine (what
    `LazyReferenceMapper.write` uses where fastparquet is absent) stores a variable that
    has no inline chunk with a `raw` column of nulls only, which pandas reads back as float
    NaN; and pandas 3 reads a null `path` as NaN. fsspec then takes NaN for inline data and
    fails with "object of type 'numpy.float64' has no len()" on every chunk of that
    variable (real WRF aggregations, nextGEMS catalogues). Here each record is read once,
    its nulls made None, and cached as fsspec would."""

    def setup(self):
        super().setup()
        read = self.open_refs

        @lru_cache(maxsize=self.cache_size)
        def open_refs(field, record):
            refs = read(field, record)
            for name in ("path", "raw"):
                if refs is not None and name in refs:
                    refs[name] = _none_for_null(refs[name])
            return refs

        self.open_refs = open_refs


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
