"""Fetch what cataloguing a store needs in as few requests as possible, concurrently.

Object stores answer each request in 10-100 ms but serve thousands at once, so a
crawl is fast only when it knows every request up front and issues them together.
For a store with consolidated metadata that is possible: one GET of the metadata
(`.zmetadata` for Zarr v2, `zarr.json` for v3) names every array of every group, and
from it the coordinate arrays' chunk keys follow (dimension coordinates, CF
`coordinates` and `bounds`, group by group). Those chunks are fetched at once, and
the store is then opened from memory: xarray and zarr decode it exactly as they
would remotely, and no data-variable chunk is ever requested.

Anything this fast path does not cover (no consolidated metadata, sharding,
kerchunk references, coordinates in very many chunks) returns None, and the
caller opens the store lazily through its real URL instead.

The metadata document is untrusted: it is read at most `max_metadata_mb` far, must be
a JSON object (of objects), and no coordinate chunk is fetched for a store whose
coordinates declare more than `max_coordinate_mb`, or that holds more than `MAX_GROUPS`
groups (see `limits`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
from fsspec.asyn import AsyncFileSystem
from zarr.core.chunk_key_encodings import ChunkKeyEncoding, V2ChunkKeyEncoding, parse_chunk_key_encoding

from zarr_stac.common.storage import StorageOptions, protocol_of

from ..limits import (
    COORDINATE_SETTING,
    MAX_GROUPS,
    METADATA_SETTING,
    TooLarge,
    cat_bounded,
    coordinate_problem,
    limit_bytes,
)
from ..vocabulary import REFERENCE_KINDS, StoreRef
from .fingerprints import Fingerprint, document_fingerprint, same_document
from .metadata import arrays_by_path, coordinate_paths, groups_of, parse_metadata

if TYPE_CHECKING:  # imported by shared_session, for S3 only
    from aiobotocore.session import AioSession

MAX_COORDINATE_CHUNKS = 256  # per store; beyond this, the lazy path


@dataclass
class Prefetched:
    """A store's metadata and coordinate chunks, keyed as inside the store."""

    ref: StoreRef
    zarr_format: int
    files: dict[str, bytes]
    # The arrays whose every chunk was fetched (or is absent from the store): the coordinates.
    coordinates: frozenset[str] = frozenset()


class NotPrefetchable(Exception):
    """The fast path does not apply; open the store lazily instead."""


class Unchanged:
    """The store's metadata document is the one fingerprinted: nothing to read."""


UNCHANGED = Unchanged()


def async_filesystem(url: str, storage: StorageOptions, connections: int = 64) -> AsyncFileSystem:
    """An fsspec filesystem for `url` that must be used from a running event loop, with up to
    `connections` requests on the wire at once."""
    protocol = protocol_of(url)
    if protocol == "file":
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

        return AsyncFileSystemWrapper(fsspec.filesystem("file"), asynchronous=True)
    options = storage.for_fsspec(url)
    if protocol in ("s3", "s3a"):
        # botocore keeps 10 connections per client: with a batch's stores all in flight, their
        # requests would queue behind 10 sockets, one latency after another.
        options["config_kwargs"] = {**options.get("config_kwargs", {}), "max_pool_connections": connections}
        options["session"] = shared_session(options.pop("profile", None))
    # s3fs's own retry loop is limited once for every filesystem, in zarr_stac.common.storage.
    return fsspec.filesystem(protocol, asynchronous=True, skip_instance_cache=True, **options)


def chunk_keys(name: str, meta: dict[str, Any], zarr_format: int) -> list[str]:
    """Every chunk key of one array, as stored (encoded by zarr's own chunk key encodings)."""
    shape = list(meta["shape"])
    if zarr_format == 2:
        chunks = list(meta["chunks"])
        encoding: ChunkKeyEncoding = V2ChunkKeyEncoding(separator=meta.get("dimension_separator") or ".")
    else:
        codecs = [c.get("name") for c in meta.get("codecs", [])]
        if "sharding_indexed" in codecs:
            raise NotPrefetchable("sharded array")
        grid = meta.get("chunk_grid", {})
        if grid.get("name") != "regular":
            raise NotPrefetchable(f"chunk grid {grid.get('name')!r}")
        chunks = list(grid["configuration"]["chunk_shape"])
        try:  # "default" is c/0/1, or c.0.1 with separator "."; "v2" is 0.1
            encoding = parse_chunk_key_encoding(meta.get("chunk_key_encoding", {"name": "default"}))
        except (ValueError, TypeError) as exc:
            raise NotPrefetchable(f"chunk key encoding: {exc}") from None
    counts = [max(1, math.ceil(s / c)) if c else 1 for s, c in zip(shape, chunks, strict=True)]
    if math.prod(counts) > MAX_COORDINATE_CHUNKS:
        raise NotPrefetchable(f"coordinate {name!r} is stored in {math.prod(counts)} chunks")
    indexes = itertools.product(*(range(n) for n in counts))  # a scalar: one chunk, index ()
    return [f"{name}/{encoding.encode_chunk_key(index)}" for index in indexes]


_sessions = threading.local()


def shared_session(profile: str | None) -> AioSession:
    """One aiobotocore session per event loop and profile, for every batch's client: a session
    of its own loads botocore's S3 model again (~115 ms of CPU per client, ~0.5 ms per store of a
    256-store batch; 11 ms with a shared one). Call it inside the loop its clients will run in:
    refreshable credentials hold an asyncio lock, which must not meet another loop
    (`jobs.run_batch` keeps one loop per thread). Made anew when the AWS_* environment
    changes, since a session keeps the credentials it found there."""
    from aiobotocore.session import AioSession

    environment = (
        id(asyncio.get_running_loop()),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))),
    )
    if getattr(_sessions, "environment", None) != environment:
        _sessions.environment, _sessions.by_profile = environment, {}
    if profile not in _sessions.by_profile:
        _sessions.by_profile[profile] = AioSession(profile=profile) if profile else AioSession()
    return _sessions.by_profile[profile]


async def _cat(fs: AsyncFileSystem, path: str, limit: int, what: str, setting: str) -> bytes | None:
    """The object at `path` (None when absent), read at most `limit` bytes far."""
    try:
        return await cat_bounded(fs, path, limit, what, setting)
    except FileNotFoundError:
        return None


def _dtype(meta: dict[str, Any], zarr_format: int) -> tuple[int, str]:
    """(item size, name) of an array's data type, from its metadata; 8 bytes when numpy
    does not know it (variable-length strings, extension types: their values are pointers)."""
    raw = meta.get("dtype") if zarr_format == 2 else meta.get("data_type")
    try:
        dtype = np.dtype(raw)
    except (TypeError, ValueError):
        return 8, str(raw)
    return (dtype.itemsize or 8), dtype.name


def check_coordinate_sizes(
    arrays: dict[str, tuple[dict, dict]], names: Iterable[str], limit: int, zarr_format: int
) -> None:
    """TooLarge for the first coordinate whose declared size (shape x item size) is beyond `limit`."""
    for name in names:
        meta = arrays[name][0]
        shape = meta.get("shape")
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            continue  # zarr says what is wrong with it
        itemsize, dtype = _dtype(meta, zarr_format)
        if (problem := coordinate_problem(name, tuple(shape), itemsize, dtype, limit)) is not None:
            raise TooLarge(problem)


async def prefetch(fs: AsyncFileSystem, ref: StoreRef, storage: StorageOptions | None = None) -> Prefetched:
    """Metadata plus every coordinate chunk of `ref`; raises NotPrefetchable or the read error
    (TooLarge beyond the limits of `storage`, CorruptMetadata for JSON that is no object)."""
    storage = storage or StorageOptions()
    if ref.kind in REFERENCE_KINDS:
        raise NotPrefetchable("kerchunk reference")
    root = fs._strip_protocol(ref.url).rstrip("/")
    if ref.zarr_format == 2 and ref.consolidated is False:
        raise NotPrefetchable("no consolidated metadata")
    # Unknown format: v2 first, still what most climate holdings are.
    candidates = [(2, ".zmetadata"), (3, "zarr.json")] if ref.zarr_format != 2 else [(2, ".zmetadata")]
    if ref.zarr_format == 3:
        candidates = [(3, "zarr.json")]
    metadata: dict[str, Any] | None = None
    zarr_format = 2  # the format of the document found, with `metadata`
    files: dict[str, bytes] = {}
    for fmt, key in candidates:
        raw = await _cat(fs, f"{root}/{key}", limit_bytes(storage.max_metadata_mb), key, METADATA_SETTING)
        if raw is not None:
            metadata, zarr_format = parse_metadata(key, raw), fmt
            files[key] = raw
            break
    if metadata is None:
        raise NotPrefetchable("no consolidated metadata found")
    if "record_size" in metadata:
        raise NotPrefetchable("kerchunk parquet references")  # see read.open_store
    if zarr_format == 3 and metadata.get("consolidated_metadata") is None:
        raise NotPrefetchable("Zarr v3 without consolidated metadata")
    if zarr_format == 2:
        # zarr reads the root's .zgroup and .zattrs besides .zmetadata: both are inside it.
        root_group = metadata.get("metadata", {}).get(".zgroup")
        if root_group is None:
            raise NotPrefetchable("consolidated metadata without a root group")
        files[".zgroup"] = json.dumps(root_group).encode()
        files[".zattrs"] = json.dumps(metadata["metadata"].get(".zattrs", {})).encode()
    # Every group's arrays, by their paths in the store: a hierarchy costs the same one
    # document, then the coordinate chunks of every group that has coordinates.
    groups = groups_of(metadata, zarr_format)
    if len(groups) > MAX_GROUPS:
        raise TooLarge(f"it holds {len(groups):,} groups, more than the {MAX_GROUPS:,} groups one store may have")
    arrays = arrays_by_path(groups)
    coordinates = sorted(coordinate_paths(groups, zarr_format))
    limit = limit_bytes(storage.max_coordinate_mb)
    check_coordinate_sizes(arrays, coordinates, limit, zarr_format)
    keys = [key for name in coordinates for key in chunk_keys(name, arrays[name][0], zarr_format)]
    # A chunk stored larger than a whole coordinate may be is no coordinate's chunk.
    reads = (_cat(fs, f"{root}/{key}", limit, f"chunk {key!r}", COORDINATE_SETTING) for key in keys)
    contents = await asyncio.gather(*reads)
    files.update({key: data for key, data in zip(keys, contents, strict=True) if data is not None})
    return Prefetched(ref=ref, zarr_format=zarr_format, files=files, coordinates=frozenset(coordinates))


async def is_unchanged(fs: AsyncFileSystem, ref: StoreRef, known: Fingerprint) -> bool:
    """Whether the store's metadata document is still the fingerprinted one: one HEAD on an
    object store (its ETag or md5Hash), the file's own hash locally; False where no
    validator says so (HTTP) or the question fails (the store is then read, and any
    error reported from there)."""
    path = fs._strip_protocol(ref.url).rstrip("/")
    if known.document:
        path = f"{path}/{known.document}"
    protocol = protocol_of(ref.url)
    try:
        if protocol in ("s3", "s3a", "gs", "gcs"):
            return same_document(known, await fs._info(path))
        if protocol == "file":
            # Read no further than the fingerprinted size: a longer document has changed.
            data = await cat_bounded(fs, path, known.size, known.document or path, METADATA_SETTING)
            return document_fingerprint(known.document, data, known.digest) == known
    except Exception:  # noqa: BLE001 - unknown: read it
        return False
    return False


async def prefetch_many(
    refs: Iterable[StoreRef],
    storage: StorageOptions,
    concurrency: int = 64,
    known: Iterable[Fingerprint | None] | None = None,
) -> list[Prefetched | Unchanged | BaseException]:
    """`prefetch` for many stores of one object store, `concurrency` stores at a time; a store
    with a `known` fingerprint that still holds is `UNCHANGED`, and not read."""
    refs = list(refs)
    known = list(known) if known is not None else [None] * len(refs)
    if not refs:
        return []
    fs = async_filesystem(refs[0].url, storage, connections=concurrency)
    if hasattr(fs, "set_session"):
        await fs.set_session()
    gate = asyncio.Semaphore(concurrency)

    async def one(ref: StoreRef, fingerprint: Fingerprint | None) -> Prefetched | Unchanged | BaseException:
        async with gate:
            if fingerprint is not None and await is_unchanged(fs, ref, fingerprint):
                return UNCHANGED
            try:
                return await prefetch(fs, ref, storage)
            except Exception as exc:  # noqa: BLE001 - returned, classified by the caller
                return exc

    try:
        return await asyncio.gather(*(one(ref, fingerprint) for ref, fingerprint in zip(refs, known, strict=True)))
    finally:  # the batch's connections closed here: the thread's event loop outlives it
        client = getattr(fs, "_s3", None)  # s3fs: an aiobotocore client
        if client is not None:
            await client.close()
        session = getattr(fs, "_session", None)  # HTTP, GCS: an aiohttp session
        if session is not None and not session.closed:
            await session.close()
