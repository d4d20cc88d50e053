"""pystac reads and writes through fsspec, so catalogues in buckets work like folders."""

from __future__ import annotations

from typing import Any

import pystac
from pystac.stac_io import DefaultStacIO

from zarr_stac.common.storage import StorageOptions, protocol_of


class FsspecStacIO(DefaultStacIO):
    def __init__(self, storage: StorageOptions | None = None):
        super().__init__()
        self.storage = storage or StorageOptions()

    def read_text(self, source: pystac.link.HREF, *args: Any, **kwargs: Any) -> str:
        href = str(source)
        if protocol_of(href) in ("file", "http", "https"):
            return super().read_text(source, *args, **kwargs)
        with self.storage.filesystem(href).open(href, "rt") as handle:
            return handle.read()
