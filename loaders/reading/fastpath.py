"""The fast path of opening a prefetched store: coordinates decoded once, in numpy.

`CachedCoordinate` serves xarray a coordinate whose chunks are in memory already, decoded
once (Zarr v2 chunks by `decode_v2`, without a trip through zarr's event loop; anything
else by zarr). `FAST_OPEN` and `FAST_DECODE` turn it off: the reference path, which the
fast one must equal (tests/loaders/test_mapping_paths.py).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import xarray as xr
from numcodecs.compat import ensure_ndarray_like
from xarray.backends.zarr import ZarrArrayWrapper, ZarrStore
from xarray.core import indexing

# False: a prefetched store is read exactly as a lazy one, every read of a coordinate going
# through zarr again (the reference the fast path is tested against, tests/loaders/test_mapping_paths.py).
FAST_OPEN = True


FAST_DECODE = True  # False: CachedCoordinate reads through zarr (the reference for `decode_v2`)


class CachedCoordinate(ZarrArrayWrapper):
    """A coordinate array that is in memory already: read whole once (`decode_v2`, else zarr), then indexed in numpy.

    xarray reads a time coordinate up to three times (its first and last values to
    check it decodes, then all of it for the index), and the mapping once more raw
    (`mapping.is_all_fill`); each zarr read costs a round trip to zarr's event-loop
    thread (~0.3 ms of CPU), far more than decoding the chunk.
    """

    __slots__ = ("_files", "_name", "_values")

    def __init__(self, zarr_array, name: str, files: dict[str, bytes]):
        super().__init__(zarr_array)
        self._name, self._files = name, files
        self._values: np.ndarray | None = None

    @property
    def array(self) -> Any:
        """The zarr array itself."""
        return self._array

    def values(self) -> np.ndarray:
        """The raw (undecoded) values, as `zarr_array[...]` gives them."""
        if self._values is None:
            decoded = decode_v2(self._array, self._name, self._files) if FAST_DECODE else None
            self._values = self._array[...] if decoded is None else decoded
        return self._values

    def _getitem(self, key):
        return self.values()[key]


def decode_v2(array: Any, name: str, files: dict[str, bytes]) -> np.ndarray | None:
    """`array[...]` of a Zarr v2 array of numbers or dates whose chunks are all in `files`,
    decoded as zarr's V2Codec does (compressor, then filters in reverse, viewed as the dtype,
    reshaped in the array's order) without a trip through zarr's event loop; None when
    anything is unusual (a chunk absent, i.e. fill; object or string data; a decoding error):
    zarr then reads it itself."""
    meta = array.metadata
    if meta.zarr_format != 2 or meta.order not in ("C", "F"):
        return None
    dtype = array.dtype
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufcmM" or dtype.hasobject:
        return None
    shape, chunks = tuple(meta.shape), tuple(meta.chunks)
    if 0 in shape or 0 in chunks or len(chunks) != len(shape):
        return None
    separator = meta.dimension_separator or "."
    out = np.empty(shape, dtype=dtype)
    counts = [math.ceil(size / chunk) for size, chunk in zip(shape, chunks, strict=True)]
    try:
        for index in itertools.product(*(range(n) for n in counts)):
            data = files.get(f"{name}/" + (separator.join(map(str, index)) if shape else "0"))
            if data is None:
                return None
            chunk = np.frombuffer(data, dtype="u1")
            if meta.compressor:
                chunk = meta.compressor.decode(chunk)
            for codec in reversed(meta.filters or ()):
                chunk = codec.decode(chunk)
            chunk = ensure_ndarray_like(chunk).view(dtype).reshape(-1, order="A").reshape(chunks, order=meta.order)
            region = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunks, shape, strict=True))
            out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    except Exception:  # noqa: BLE001 - zarr reads it, and reports what is wrong
        return None
    return out if shape else out[()]


class PrefetchedZarrStore(ZarrStore):
    """xarray's ZarrStore, whose coordinate arrays are read once (`CachedCoordinate`)."""

    __slots__ = ("cached",)
    cached: dict[str, Any]

    def open_store_variable(self, name: str) -> xr.Variable:
        variable = super().open_store_variable(name)
        if name in self.cached:
            data = indexing.LazilyIndexedArray(self.cached[name])
            variable = xr.Variable(variable.dims, data, variable.attrs, variable.encoding)
        return variable
