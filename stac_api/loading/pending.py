"""Items waiting for their collection's batch: in memory up to a bound, then on disk.

pypgstac loads a batch one partition (collection) at a time, so items are loaded
collection by collection; until a collection has a batch, its items wait here. Past
`memory_items` waiting in all, they go to disk (one file per collection), so memory
stays bounded whatever the load.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import defaultdict


class PendingItems:
    """Serialised items (one JSON document each) per collection, until they are taken."""

    def __init__(self, *, batch_size: int, memory_items: int):
        self.batch_size = batch_size
        self.memory_items = memory_items
        self._in_memory: dict[str, list[bytes]] = defaultdict(list)
        self._in_memory_count = 0
        self._on_disk: dict[str, int] = defaultdict(int)  # items spilled, per collection
        self._spill_dir: tempfile.TemporaryDirectory | None = None  # made at the first spill

    def add(self, collection_id: str, row: bytes) -> bool:
        """Keep `row`; True when its collection has a whole batch waiting, to be taken now."""
        waiting = self._in_memory[collection_id]
        waiting.append(row)
        self._in_memory_count += 1
        if len(waiting) + self._on_disk.get(collection_id, 0) >= self.batch_size:
            return True
        if self._in_memory_count >= self.memory_items:
            self._spill()
        return False

    def take(self, collection_id: str) -> list[bytes]:
        """Every item waiting for this collection (from disk first, in the order they came)."""
        rows: list[bytes] = []
        if self._on_disk.pop(collection_id, 0):
            path = self._path(collection_id)
            with open(path, "rb") as handle:
                rows.extend(line.rstrip(b"\n") for line in handle if line.strip())
            os.remove(path)
        waiting = self._in_memory.pop(collection_id, [])
        self._in_memory_count -= len(waiting)
        rows.extend(waiting)
        return rows

    def collection_ids(self) -> list[str]:
        """The collections with items waiting, sorted."""
        return sorted({cid for cid, rows in self._in_memory.items() if rows} | set(self._on_disk))

    def close(self) -> None:
        """Forget what waits and remove the spill files."""
        self._in_memory.clear()
        self._in_memory_count = 0
        self._on_disk.clear()
        if self._spill_dir is not None:
            self._spill_dir.cleanup()
            self._spill_dir = None

    def _path(self, collection_id: str) -> str:
        if self._spill_dir is None:
            self._spill_dir = tempfile.TemporaryDirectory(prefix="zarr-stac-ingest-")
        name = hashlib.md5(collection_id.encode(), usedforsecurity=False).hexdigest()
        return os.path.join(self._spill_dir.name, name + ".ndjson")

    def _spill(self) -> None:
        for collection_id, waiting in self._in_memory.items():
            if waiting:
                with open(self._path(collection_id), "ab") as handle:
                    handle.write(b"\n".join(waiting) + b"\n")
                self._on_disk[collection_id] += len(waiting)
        self._in_memory.clear()
        self._in_memory_count = 0
