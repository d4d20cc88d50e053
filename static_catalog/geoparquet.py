"""Each collection's items as one stac-geoparquet file, beside the JSON items."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

import orjson


class GeoparquetRows:
    """The items of each collection, kept on disk (one temporary ndjson file each) until written.

    Memory does not grow with the number of items; `close` removes the files.
    """

    def __init__(self) -> None:
        self._files: dict[str, IO[bytes]] = {}
        self._discarded: dict[str, set[str]] = {}  # collection -> ids of items added, then unpublished

    def add(self, collection_id: str, item: dict[str, Any]) -> None:
        if collection_id not in self._files:
            # Open across many `add` calls, closed by `close` (the publication's context exit).
            self._files[collection_id] = tempfile.TemporaryFile()  # noqa: SIM115
        self._files[collection_id].write(orjson.dumps(item) + b"\n")

    def discard(self, collection_id: str, item_id: str) -> None:
        """Leave out an item added before, for good (its row stays in the file, skipped when read)."""
        if collection_id in self._files:
            self._discarded.setdefault(collection_id, set()).add(item_id)

    def __contains__(self, collection_id: str) -> bool:
        return collection_id in self._files

    def collections(self) -> Iterator[str]:
        return iter(list(self._files))

    def parquet(self, collection_id: str) -> bytes:
        handle = self._files[collection_id]
        handle.seek(0)
        discarded = self._discarded.get(collection_id, set())
        rows = (orjson.loads(line) for line in handle)
        return geoparquet_bytes([row for row in rows if row["id"] not in discarded])

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


def _no_empty_objects(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_empty_objects(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [_no_empty_objects(v) for v in value]
    return value


def geoparquet_bytes(items: Sequence[dict[str, Any]]) -> bytes:
    """A collection's items as stac-geoparquet."""
    import pyarrow.parquet as pq
    from stac_geoparquet.arrow import parse_stac_items_to_arrow

    # Parquet cannot hold an empty struct (e.g. `"chunks": {}` in xarray:open_kwargs):
    # in this copy empty objects become null; the JSON items keep them.
    table = parse_stac_items_to_arrow([_no_empty_objects(i) for i in items]).read_all()
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
