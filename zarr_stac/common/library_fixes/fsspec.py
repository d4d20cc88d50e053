"""fsspec: kerchunk parquet references as kerchunk and fsspec write them, read back."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from fsspec.implementations.reference import LazyReferenceMapper

CHECKED_WITH = "2026.9.0"


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

    def setup(self) -> None:
        super().setup()
        read = self.open_refs

        @lru_cache(maxsize=self.cache_size)
        def open_refs(field, record):
            refs = read(field, record)
            for name in ("path", "raw"):
                if refs is not None and name in refs:
                    refs[name] = _none_for_null(refs[name])
            return refs

        self.open_refs: Callable[[str, int], Any] = open_refs


def with_remote_protocol(extra: dict[str, Any], url_protocol: str) -> dict[str, Any]:
    """fsspec 2026.9 guesses the protocol of a parquet reference set from its first
    reference, and fails (split_protocol(nan)) when that one holds inline data: name it.
    Published with the asset, so readers avoid the same failure."""
    return extra if "remote_protocol" in extra else {**extra, "remote_protocol": url_protocol}
