"""Fingerprints of what a store's Item is made from: its metadata document's MD5 and size, and
a digest of everything else (see `running.ledger`), compared with what an object store says of
the document (one HEAD) to tell whether a store changed since the last crawl.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

CONSOLIDATED_DOCUMENTS = {2: ".zmetadata", 3: "zarr.json"}
REFERENCE_DOCUMENT = ""  # a kerchunk JSON reference is its own document


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What one store's Item was made from (see the module's docstring)."""

    document: str  # the metadata document, relative to the store ("": the store is that file)
    md5: str  # hex
    size: int
    digest: str  # configuration, catalogue entry and mapping code

    def as_dict(self) -> dict[str, Any]:
        return {"document": self.document, "md5": self.md5, "size": self.size, "digest": self.digest}


def document_fingerprint(document: str, data: bytes, digest: str) -> Fingerprint:
    return Fingerprint(document, hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data), digest)


def same_document(fingerprint: Fingerprint, info: dict[str, Any]) -> bool:
    """Whether an object store's `info` of the document says it is the one fingerprinted:
    the same size and an MD5 (S3's ETag, GCS's md5Hash) equal to the recorded one."""
    if info.get("size") != fingerprint.size:
        return False
    if md5_hash := info.get("md5Hash"):  # GCS: base64 of the MD5
        try:
            return base64.b64decode(md5_hash).hex() == fingerprint.md5
        except ValueError:
            return False
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"').lower()
    return etag == fingerprint.md5
