"""pystac reads and writes through fsspec, so catalogues in buckets work like folders."""

from __future__ import annotations

from typing import Any

import pystac
from pystac.stac_io import DefaultStacIO

from common.storage import StorageOptions, protocol_of


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

    def write_text(self, dest: pystac.link.HREF, txt: str, *args: Any, **kwargs: Any) -> None:
        href = str(dest)
        if protocol_of(href) in ("file",):
            return super().write_text(dest, txt, *args, **kwargs)
        with self.storage.filesystem(href).open(href, "wt") as handle:
            handle.write(txt)
