"""The ledger: what a crawl catalogued, so that the next crawl re-reads only the stores that changed.

One JSON line per catalogued store: its URL, the `Fingerprint` of what its Item was
made from, the Item, and the dataset attributes its collection's defaults come from
(`collections.DEFAULT_ATTRS`). The owner of a catalogue keeps the ledger beside it
(the static catalogue as `.zarr-stac-ledger.jsonl.gz`, pgstac's database in
`zarr_stac.ledger`); this module only makes and reads its bytes.

A fingerprint has two parts:

- the store's consolidated metadata document (`.zmetadata` or `zarr.json`), or the
  kerchunk JSON reference file itself: its name, MD5 and size, taken from the bytes the
  first crawl read anyway (no extra request).
  A rerun asks for the document's ETag (one HEAD per store): S3 and the stores that
  speak its API (Swift, Ceph, MinIO) give the MD5 of a single-part upload, GCS its
  `md5Hash`; a local file is hashed. Anything else (an HTTP server, an ETag that is no
  MD5: multipart or KMS-encrypted uploads) counts as changed, so the store is re-read;
- a digest of everything else its Item depends on: the source's configuration (its
  secrets masked), the catalogue entry (URL, name, properties, collection), and the
  mapping code itself (zarr-stac's version and the source of `loaders` and `common`):
  a change of configuration or an upgrade re-reads what it may affect.

Stores without consolidated metadata, parquet references and stores served over HTTP
have no usable fingerprint: every crawl reads them. Coordinate values rewritten in place,
without any change of the metadata document, go unnoticed until a `--full` crawl.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from zarr_stac import common
from zarr_stac.common.values import dumps

from ..reading.fingerprints import Fingerprint

LEDGER_FORMAT = 1


@cache
def code_digest() -> str:
    """zarr-stac's version and the source of the code that maps a store to its Item."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        digest.update(metadata.version("zarr-stac").encode())
    except metadata.PackageNotFoundError:
        pass
    digest.update(str(LEDGER_FORMAT).encode())
    # The loaders (this file's grandparent folder, every stage) and the shared kernel.
    for package in (Path(__file__).resolve().parents[1], Path(common.__file__).resolve().parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def source_digest(source_json: dict[str, Any]) -> bytes:
    """The digest of one source's configuration (`model_dump(mode="json")`: secrets are masked)."""
    data = dumps(source_json, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(code_digest().encode() + data, digest_size=16).digest()


def entry_digest(source: bytes, ref_json: list[Any]) -> str:
    """The digest of a catalogue entry (a StoreRef's fields) under a source's digest."""
    data = dumps(ref_json, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(source + data, digest_size=16).hexdigest()


@dataclass
class Entry:
    """One line of a ledger, parsed."""

    url: str
    fingerprint: Fingerprint
    item: dict[str, Any]
    attrs: dict[str, Any]
    line: bytes  # as stored: an unchanged store's line is copied as it was


def _fingerprint(data: dict[str, Any]) -> Fingerprint:
    # Interned: a ledger's 100,000 fingerprints share a handful of document names.
    return Fingerprint(sys.intern(data["document"]), data["md5"], int(data["size"]), data["digest"])


class KnownFingerprints:
    """{(store URL, digest): fingerprint}, packed: a crawl holds one for every store of the
    earlier ledger until the store's job is made (~0.3 KB each, half of plain objects)."""

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}

    def add(self, url: str, fingerprint: Fingerprint) -> None:
        packed = bytes.fromhex(fingerprint.md5) + fingerprint.size.to_bytes(8, "big") + fingerprint.document.encode()
        self._packed[f"{url}\n{fingerprint.digest}"] = packed

    def pop(self, url: str, digest: str) -> Fingerprint | None:
        packed = self._packed.pop(f"{url}\n{digest}", None)
        if packed is None:
            return None
        document = sys.intern(packed[24:].decode())
        return Fingerprint(document, packed[:16].hex(), int.from_bytes(packed[16:24], "big"), digest)

    def __len__(self) -> int:
        return len(self._packed)


class LedgerError(ValueError):
    """An earlier ledger that cannot be read (truncated, not gzip, not this format)."""


class Ledger:
    """The ledger of an earlier crawl (gzip-compressed JSON lines), read as a stream."""

    def __init__(self, data: bytes):
        self.data = data

    def _lines(self) -> Iterator[bytes]:
        with gzip.GzipFile(fileobj=io.BytesIO(self.data)) as lines:
            for line in lines:
                if line.strip():
                    yield line.rstrip(b"\n")

    def fingerprints(self) -> KnownFingerprints:
        """The fingerprint of every store it records; LedgerError when it cannot be read to
        the end (its entries then are not used at all)."""
        known = KnownFingerprints()
        try:
            for line in self._lines():
                data = orjson.loads(line)
                fingerprint = _fingerprint(data["fingerprint"])
                if not isinstance(data["item"], dict):
                    raise TypeError("an entry without its Item")
                known.add(data["url"], fingerprint)
        except (OSError, EOFError, ValueError, KeyError, TypeError, OverflowError) as exc:
            raise LedgerError(f"the earlier ledger is unreadable ({type(exc).__name__}: {exc})") from None
        return known

    def entries(self) -> Iterator[Entry]:
        for line in self._lines():
            data = orjson.loads(line)
            yield Entry(data["url"], _fingerprint(data["fingerprint"]), data["item"], data.get("attrs") or {}, line)


class LedgerWriter:
    """The ledger of this crawl, written as it goes to a temporary file (memory stays flat)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="zarr-stac-ledger-")  # noqa: SIM115 - lives as long as the writer
        self._gzip = gzip.GzipFile(fileobj=self._file, mode="wb", mtime=0)
        self.count = 0

    def add(self, url: str, fingerprint: Fingerprint, item: dict[str, Any], attrs: dict[str, Any]) -> None:
        entry = {"url": url, "fingerprint": fingerprint.as_dict(), "attrs": attrs, "item": item}
        self.add_line(dumps(entry))

    def add_line(self, line: bytes) -> None:
        self._gzip.write(line + b"\n")
        self.count += 1

    def data(self, without: Iterable[tuple[str, str]] = ()) -> bytes:
        """The ledger's bytes, without the Items (collection, id) that were refused after
        the crawl took them: their stores are read again next time."""
        if not self._gzip.closed:
            self._gzip.close()
        self._file.seek(0)
        data = self._file.read()
        without = set(without)
        if not without:
            return data
        kept = LedgerWriter()
        try:
            for entry in Ledger(data).entries():
                if (entry.item.get("collection"), entry.item.get("id")) not in without:
                    kept.add_line(entry.line)
            return kept.data()
        finally:
            kept.close()

    def close(self) -> None:
        self._file.close()
