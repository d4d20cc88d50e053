"""A folder or an object-store prefix the catalogue is published to: what is there, writes, deletions."""

from __future__ import annotations

import base64
import errno
import os
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from fsspec.asyn import _run_coros_in_chunks, sync

from zarr_stac.common.storage import StorageOptions, protocol_of, strip_url

from .paths import JSON_TYPE, md5

DELETE_CONCURRENCY = 32

# Errors that concern one object, not the destination: its name is too long (a file name
# past the filesystem's 255 bytes, an S3 key past 1024: s3fs's KeyTooLongError), not valid
# there, or it is too big, or a folder already has its name. Anything else (a full disk,
# a read-only mount, no permission, a bucket gone, a connection lost) stops the publication.
PER_OBJECT_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EISDIR, errno.EFBIG, errno.EMSGSIZE})


def is_per_object(exc: BaseException) -> TypeGuard[OSError]:
    """Whether writing one object failed for a reason of its own (see PER_OBJECT_ERRNOS)."""
    return isinstance(exc, OSError) and exc.errno in PER_OBJECT_ERRNOS


class DestinationError(RuntimeError):
    """The catalogue cannot be published where asked; the message says why."""


class Destination:
    """A folder or an object-store prefix; knows what is there by path and MD5."""

    def __init__(self, url: str, storage: StorageOptions | None = None):
        self.url = strip_url(url)
        self.local = protocol_of(url) == "file"
        self.fs = (storage or StorageOptions()).filesystem(self.url)
        self.root = self.fs._strip_protocol(self.url).rstrip("/")
        self._made: set[str] = set()

    def full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def inventory(self) -> dict[str, str | None]:
        """{relative path: MD5 or None when unknown} of what is published now."""
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        prefix = self.root + "/"
        inventory: dict[str, str | None] = {}
        for path, info in found.items():
            relative = path[len(prefix) :] if path.startswith(prefix) else None
            if not relative or posixpath.basename(relative).startswith(".tmp-"):
                continue
            etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
            if self.local:
                with open(path, "rb") as handle:
                    inventory[relative] = md5(handle.read())
            elif info.get("md5Hash"):  # GCS lists the MD5 itself, base64 (its ETag is no MD5)
                inventory[relative] = base64.b64decode(info["md5Hash"]).hex()
            else:
                # Single-part uploads (all of ours) have the MD5 as ETag; others are unknown.
                inventory[relative] = etag if etag and "-" not in etag else None
        return inventory

    def same_object(self, path: str, other: str) -> bool:
        """Whether two paths name one object (they may, on a filesystem blind to case)."""
        if path == other:
            return True
        if not self.local:
            return False  # object stores tell case apart
        try:
            return os.path.samefile(self.full(path), self.full(other))
        except OSError:
            return False

    def read(self, path: str) -> bytes:
        return self.fs.cat_file(self.full(path))

    def write_many(
        self, objects: Mapping[str, bytes], existing: Mapping[str, Any], content_type: str = JSON_TYPE
    ) -> dict[str, OSError]:
        """Each object replaced whole; `existing` (the inventory) says which ones replace an object.

        Returns {path: error} of the objects refused for a reason of their own (`is_per_object`):
        the others are written. Any other error stops the writes and is raised."""
        if not objects:
            return {}
        refused: dict[str, OSError] = {}
        if self.local:
            # Sequential: measured faster than threads, whose mkdir/open calls contend.
            for path, data in objects.items():
                try:
                    self._write_file(path, data, replace=path in existing)
                except OSError as exc:
                    if not is_per_object(exc):
                        raise
                    refused[path] = exc
            return refused
        # The media type has each filesystem's own name: s3fs passes botocore's, gcsfs its own.
        gcs = protocol_of(self.url) in ("gs", "gcs")
        media_type = {"content_type": content_type} if gcs else {"ContentType": content_type}
        # fsspec's `pipe`, each object's outcome kept: one refused key must not hide which one it was.
        paths = list(objects)
        coroutines = [self.fs._pipe_file(self.full(p), objects[p], **media_type) for p in paths]
        outcomes = sync(
            self.fs.loop,
            _run_coros_in_chunks,
            coroutines,
            batch_size=self.fs.batch_size,
            nofiles=True,
            return_exceptions=True,
        )
        for path, outcome in zip(paths, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not is_per_object(outcome):
                    raise outcome
                refused[path] = outcome
        return refused

    def _write_file(self, path: str, data: bytes, replace: bool) -> None:
        full = self.full(path)
        directory = os.path.dirname(full)
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)
        if not replace:
            # Nothing links to a new object yet (links are written after it): write in place.
            try:
                with open(full, "wb") as handle:
                    handle.write(data)
            except OSError:
                _remove(full)  # no half-written object behind
                raise
            return
        # Write beside, then rename: a reader sees the old file or the new one.
        # Named by a hash: a name near the filesystem's limit would not fit with a prefix added.
        tmp = f"{directory}/.tmp-{md5(os.path.basename(full).encode())[:16]}-{os.getpid()}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, full)
        except OSError:
            _remove(tmp)
            raise

    def check(self) -> None:
        """Fail in one line, before any crawl, when the output bucket does not exist."""
        if self.local:
            return
        bucket = self.root.split("/", 1)[0]
        try:
            found = self.fs.exists(bucket)
        except OSError as exc:
            raise DestinationError(f"cannot reach the output bucket {self.url}: {exc}") from None
        if not found:
            raise DestinationError(f"the output bucket {bucket!r} of {self.url} does not exist: create it first")

    def delete_many(self, paths: Iterable[str]) -> None:
        """Every deletion of a publication goes through here."""
        paths = [self.full(p) for p in paths]
        if paths and protocol_of(self.url) in ("s3", "s3a"):
            # One DeleteObject per object, not s3fs's DeleteObjects batches (fs.rm): Swift's
            # s3api (like some Ceph releases) requires Content-MD5 on DeleteObjects, which
            # botocore >= 1.36 no longer sends (a CRC32 checksum instead): "Missing required
            # header for this request: Content-MD5". Single deletes need no checksum and every
            # S3 implementation has them; they are issued DELETE_CONCURRENCY at a time.
            coroutines = [self.fs._rm_file(path) for path in paths]
            outcomes = sync(
                self.fs.loop, _run_coros_in_chunks, coroutines, batch_size=DELETE_CONCURRENCY, return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception) and not isinstance(outcome, FileNotFoundError):
                    raise outcome
            self.fs.invalidate_cache(self.root)
        elif paths:
            self.fs.rm(paths)
        if self.local:  # drop the folders left empty (an item's, a collection's...), never the root
            for path in paths:
                folder = os.path.dirname(path)
                while folder.startswith(self.root + "/"):
                    try:
                        os.rmdir(folder)
                    except OSError:
                        break
                    folder = os.path.dirname(folder)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
