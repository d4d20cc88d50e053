"""Open a store's metadata and coordinates, never its data variables.

xarray opens the Zarr group with `chunks=None`: it reads group and array metadata
and loads only the 1-D dimension coordinates (to build indexes); every other
variable stays a lazy backend array that nothing here touches, except the
coordinate arrays that extents are computed from.

Kerchunk references (JSON files and parquet folders) open the same way, through
a reference file system: a virtual Zarr v2 store whose chunks live in other files
(NetCDF, GRIB); reading a coordinate reads only its byte ranges of those files.
"""

from __future__ import annotations

import asyncio
import errno
import json
import warnings
from dataclasses import dataclass, field, replace

import xarray as xr
from xarray.backends.zarr import ZarrStore

from zarr.core.buffer import default_buffer_prototype
from zarr.storage import MemoryStore

from .discover import KERCHUNK_PARQUET, REFERENCE_KINDS, StoreRef
from .failures import ACCESS_DENIED, CORRUPT_METADATA, NOT_FOUND, READ_ERROR, TIMEOUT, UNAVAILABLE, UNDECODABLE_TIME, UNKNOWN_CODEC
from .fetch import Prefetched
from .storage import StorageOptions, is_remote



class StoreReadError(RuntimeError):
    """A store whose metadata could not be read; `reason` is one line for reports."""

    def __init__(self, url: str, kind: str, reason: str):
        super().__init__(f"{url}: {kind}: {reason}")
        self.url = url
        self.kind = kind
        self.reason = reason


@dataclass
class OpenedStore:
    """A store's dataset (lazy) plus what readers need to know to open it."""

    ref: StoreRef
    dataset: xr.Dataset
    zarr_format: int
    consolidated: bool
    # Reference filesystem options a reader needs besides the storage ones (e.g.
    # simple_templates=False for spec v1 `gen`).
    reference_options: dict = field(default_factory=dict)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TimeoutError", "ReadTimeoutError", "ConnectTimeoutError", "ServerTimeoutError", "ConnectTimeout", "ReadTimeout"})


def _is_unavailable(exc: BaseException) -> bool:
    """Throttling, a 5xx or a dropped connection that outlasted the retries."""
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:  # s3fs's translation of 503 SlowDown
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"ConnectionError", "ClientConnectionError", "ServerDisconnectedError", "EndpointConnectionError", "ConnectionClosedError"}:
        return True
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") if names & {"ClientError"} else None
    return isinstance(status, int) and status >= 500


def classify(exc: BaseException) -> str:
    """The failure kind of an exception raised while opening a store."""
    from numcodecs.errors import UnknownCodecError

    seen = set()
    while exc is not None and id(exc) not in seen:  # look through chained causes
        seen.add(id(exc))
        message = str(exc).lower()
        if isinstance(exc, UnknownCodecError) or "codec not available" in message:
            return UNKNOWN_CODEC
        if "unable to decode time" in message or "decode_times" in message:
            return UNDECODABLE_TIME
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) or type(exc).__name__ == "MetadataValidationError":
            return CORRUPT_METADATA
        if isinstance(exc, PermissionError):
            return ACCESS_DENIED
        if _is_timeout(exc) or isinstance(exc, asyncio.TimeoutError):
            return TIMEOUT
        if _is_unavailable(exc):
            return UNAVAILABLE
        if isinstance(exc, FileNotFoundError) or type(exc).__name__ in ("GroupNotFoundError", "NodeNotFoundError"):
            return NOT_FOUND
        exc = exc.__cause__ or exc.__context__
    return READ_ERROR


def _zarr_store_for(ref: StoreRef, storage: StorageOptions):
    """What to hand to zarr: a URL (with options) or, for kerchunk, a reference store."""
    if ref.kind in REFERENCE_KINDS:
        # JSON and parquet references alike: fsspec's reference filesystem tells them
        # apart (a folder is a LazyReferenceMapper) and expands templates and gen.
        from kerchunk.utils import refs_as_store

        from .references import load_references

        options = storage.for_fsspec(ref.url) if is_remote(ref.url) else {}
        refs, extra = load_references(ref, options)
        # The referenced files are assumed to live in the same object store.
        store = refs_as_store(refs, remote_options=dict(options), target_options=dict(options), **extra)
        return store, None, extra
    return ref.url, (storage.for_fsspec(ref.url) if is_remote(ref.url) else None), {}


def open_prefetched(prefetched: Prefetched) -> OpenedStore:
    """Open a store from its prefetched metadata and coordinate chunks (no I/O)."""
    prototype = default_buffer_prototype()
    memory = MemoryStore({key: prototype.buffer.from_bytes(data) for key, data in prefetched.files.items()}, read_only=True)
    return _open(prefetched.ref, memory, None, consolidated=True, zarr_format=prefetched.zarr_format)


def open_store(ref: StoreRef, storage: StorageOptions | None = None) -> OpenedStore:
    """Open a store lazily through its URL (every read is a request)."""
    storage = storage or StorageOptions()
    if ref.kind not in REFERENCE_KINDS and ref.zarr_format != 3 and ref.consolidated is not False:
        # A parquet reference folder given by a name that does not say so (a list entry,
        # `inspect`) has a consolidated .zmetadata that zarr would open, reading its
        # absent chunks as fill values: tell it apart first (one GET, lazy path only).
        if _is_parquet_reference_folder(ref, storage):
            ref = replace(ref, kind=KERCHUNK_PARQUET)
    kerchunk = ref.kind in REFERENCE_KINDS
    try:
        store, storage_options, reference_options = _zarr_store_for(ref, storage)
    except Exception as exc:  # noqa: BLE001
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc
    opened = _open(
        ref,
        store,
        storage_options,
        consolidated=False if kerchunk else ref.consolidated,
        zarr_format=2 if kerchunk else ref.zarr_format,
    )
    opened.reference_options = reference_options
    return opened


def _is_parquet_reference_folder(ref: StoreRef, storage: StorageOptions) -> bool:
    from .references import is_parquet_zmetadata

    try:
        fs = storage.filesystem(ref.url)
        return is_parquet_zmetadata(fs.cat_file(f"{ref.url.rstrip('/')}/.zmetadata"))
    except FileNotFoundError:
        return False  # no consolidated v2 metadata: zarr says what the store is
    except Exception as exc:  # noqa: BLE001 - what zarr would meet too: the store's failure
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc


def _open(ref: StoreRef, store, storage_options, *, consolidated: bool | None, zarr_format: int | None) -> OpenedStore:
    try:
        with warnings.catch_warnings():
            # Non-standard calendars fall back to cftime by design, and stores of
            # unknown layout are probed for consolidated metadata: neither is worth
            # a warning.
            warnings.simplefilter("ignore", category=xr.SerializationWarning)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            zarr_store = ZarrStore.open_group(
                store,
                mode="r",
                consolidated=consolidated,
                zarr_format=zarr_format,
                storage_options=storage_options,
            )
            dataset = xr.open_dataset(
                ref.url,
                engine="zarr",
                store=zarr_store,
                chunks=None,
                decode_times=xr.coders.CFDatetimeCoder(use_cftime=None),
            )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line report
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc
    metadata = zarr_store.zarr_group.metadata
    consolidated = getattr(metadata, "consolidated_metadata", None) is not None
    return OpenedStore(ref=ref, dataset=dataset, zarr_format=metadata.zarr_format, consolidated=consolidated)

