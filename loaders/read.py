"""Open a store's metadata and coordinates, never its data variables.

xarray opens the Zarr group with `chunks=None`: it reads group and array metadata
and loads only the 1-D dimension coordinates (to build indexes); every other
variable stays a lazy backend array that nothing here touches, except the
coordinate arrays that extents are computed from.

Kerchunk references (JSON files and parquet folders) open the same way, through
a reference file system: a virtual Zarr v2 store whose chunks live in other files
(NetCDF, GRIB); reading a coordinate reads only its byte ranges of those files.

What a store holds is untrusted (see `limits`): every metadata document zarr reads is
checked first (`CheckedMetadataStore`: at most `max_metadata_mb`, a JSON object), a JSON
reference is read at most `max_input_mb` far, and a store with a coordinate declared
larger than `max_coordinate_mb` is refused before xarray reads any coordinate.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import math
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr
from numcodecs.compat import ensure_ndarray_like
from xarray.backends.zarr import ZarrArrayWrapper, ZarrStore
from xarray.core import indexing
from zarr.abc.store import RangeByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, MemoryStore, WrapperStore
from zarr.storage._common import make_store

from common.storage import (
    CREDENTIALS_HINT,
    StorageOptions,
    is_missing_credentials,
    is_remote,
    protocol_of,
    redacted,
)

from .discover import KERCHUNK_PARQUET, REFERENCE_KINDS, StoreRef
from .failures import (
    ACCESS_DENIED,
    CORRUPT_METADATA,
    NOT_FOUND,
    READ_ERROR,
    TIMEOUT,
    TOO_LARGE,
    UNAVAILABLE,
    UNDECODABLE_TIME,
    UNKNOWN_CODEC,
)
from .fetch import CorruptMetadata, Prefetched, metadata_problem
from .limits import (
    METADATA_SETTING,
    TooLarge,
    cat_bounded,
    cat_bounded_sync,
    coordinate_problem,
    limit_bytes,
    size_text,
)


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
    # Data variables whose codecs are not installed here: {variable: [codec ids]}.
    # Their metadata is catalogued; reading their chunks needs those codecs.
    unavailable_codecs: dict[str, list[str]] = field(default_factory=dict)
    # The zarr group itself, to read a coordinate's raw (undecoded) values.
    group: Any = None
    # Coordinate arrays read once, by name (prefetched stores; see `CachedCoordinate`).
    cached: dict[str, Any] = field(default_factory=dict)
    # Reference filesystem options a reader needs besides the storage ones (e.g.
    # simple_templates=False for spec v1 `gen`).
    reference_options: dict = field(default_factory=dict)
    # A JSON reference's own bytes (its fingerprint: see `ledger`).
    reference_bytes: bytes | None = None


def one_line(exc: BaseException) -> str:
    """An exception as one line for reports, the credentials of any URL it quotes hidden."""
    if isinstance(exc, TooLarge | CorruptMetadata):
        return redacted(str(exc))  # its own words are the whole reason
    if is_missing_credentials(exc):
        return f"no credentials to read it: {CREDENTIALS_HINT}"
    text = str(exc).strip().splitlines()
    return redacted(f"{type(exc).__name__}: {text[0]}") if text else type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "TimeoutError",
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "ServerTimeoutError",
            "ConnectTimeout",
            "ReadTimeout",
        }
    )


def _is_unavailable(exc: BaseException) -> bool:
    """Throttling, a 5xx or a dropped connection that outlasted the retries."""
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:  # s3fs's translation of 503 SlowDown
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {
        "ConnectionError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "EndpointConnectionError",
        "ConnectionClosedError",
    }:
        return True
    status = (
        getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if names & {"ClientError"}
        else None
    )
    return isinstance(status, int) and status >= 500


def classify(exc: BaseException) -> str:
    """The failure kind of an exception raised while opening a store."""
    from numcodecs.errors import UnknownCodecError

    seen = set()
    while exc is not None and id(exc) not in seen:  # look through chained causes
        seen.add(id(exc))
        if isinstance(exc, TooLarge):
            return TOO_LARGE
        if isinstance(exc, CorruptMetadata):
            return CORRUPT_METADATA
        message = str(exc).lower()
        unknown = "codec not available" in message or "unknown codec" in message
        if isinstance(exc, UnknownCodecError | CodecUnavailable) or unknown:
            return UNKNOWN_CODEC
        if "unable to decode time" in message or "decode_times" in message:
            return UNDECODABLE_TIME
        if (
            isinstance(exc, json.JSONDecodeError | UnicodeDecodeError)
            or type(exc).__name__ == "MetadataValidationError"
        ):
            return CORRUPT_METADATA
        if isinstance(exc, PermissionError) or is_missing_credentials(exc):
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
        refs, extra, raw = load_references(ref, options, limit_bytes(storage.max_input_mb))
        if ref.kind == KERCHUNK_PARQUET and "remote_protocol" not in extra:
            # fsspec 2026.9 guesses the protocol of a parquet reference set from its first
            # reference, and fails (split_protocol(nan)) when that one holds inline data:
            # name it. Published with the asset, so readers avoid the same failure.
            extra = {**extra, "remote_protocol": protocol_of(ref.url)}
        # The referenced files are assumed to live in the same object store; they may be on any
        # host, which gets none of the reference URL's own HTTP credentials.
        remote = storage.model_copy(update={"http_origin": None}).for_fsspec(ref.url) if is_remote(ref.url) else {}
        store = refs_as_store(refs, remote_options=remote, target_options=dict(options), **extra)
        return CheckedMetadataStore(store, limit_bytes(storage.max_metadata_mb)), None, extra, raw
    # The store zarr would make of the URL, its metadata documents checked as they are read.
    options = storage.for_fsspec(ref.url) if is_remote(ref.url) else None
    store = sync(make_store(ref.url, mode="r", storage_options=options))
    return CheckedMetadataStore(store, limit_bytes(storage.max_metadata_mb)), None, {}, None


METADATA_DOCUMENTS = (".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json")


class CheckedMetadataStore(WrapperStore):
    """A zarr store whose metadata documents are checked before zarr parses them: each is
    read at most `limit` bytes far (TooLarge beyond) and must be a JSON object of objects
    (CorruptMetadata: zarr would fail on it with some TypeError or AttributeError)."""

    def __init__(self, store, limit: int):
        super().__init__(store)
        self._limit = limit

    def _with_store(self, store):
        return type(self)(store, self._limit)

    @property
    def fs(self):
        """The fsspec filesystem beneath (a reference filesystem's references: `assets`)."""
        return self._store.fs

    async def get(self, key, prototype, byte_range=None):
        if byte_range is not None or key.rsplit("/", 1)[-1] not in METADATA_DOCUMENTS:
            return await self._store.get(key, prototype, byte_range)
        raw = await self._read(key, prototype)
        if raw is None:
            return None
        if len(raw) > self._limit:
            raise TooLarge(f"{key} is larger than {size_text(self._limit)}, the limit ({METADATA_SETTING})")
        try:
            document = json.loads(raw)
        except ValueError:
            return prototype.buffer.from_bytes(raw)  # zarr says what is wrong with it
        if (problem := metadata_problem(key, document)) is not None:
            raise CorruptMetadata(problem)
        return prototype.buffer.from_bytes(raw)

    async def _read(self, key, prototype) -> bytes | None:
        """At most limit + 1 bytes of `key` (None: absent). Through fsspec with `cat_bounded`
        (TooLarge itself): an HTTP server may ignore the range zarr would ask for."""
        store = self._store
        if not isinstance(store, FsspecStore):
            found = await store.get(key, prototype, RangeByteRequest(0, self._limit + 1))
            return None if found is None else found.to_bytes()
        root = store.path.rstrip("/")
        try:
            return await cat_bounded(store.fs, f"{root}/{key}" if root else key, self._limit, key, METADATA_SETTING)
        except store.allowed_exceptions:
            return None


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
        self._values = None

    @property
    def array(self):
        """The zarr array itself."""
        return self._array

    def values(self):
        """The raw (undecoded) values, as `zarr_array[...]` gives them."""
        if self._values is None:
            decoded = decode_v2(self._array, self._name, self._files) if FAST_DECODE else None
            self._values = self._array[...] if decoded is None else decoded
        return self._values

    def _getitem(self, key):
        return self.values()[key]


def decode_v2(array, name: str, files: dict[str, bytes]):
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
    counts = [math.ceil(size / chunk) for size, chunk in zip(shape, chunks)]
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
            region = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunks, shape))
            out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    except Exception:  # noqa: BLE001 - zarr reads it, and reports what is wrong
        return None
    return out if shape else out[()]


class _PrefetchedZarrStore(ZarrStore):
    """xarray's ZarrStore, whose coordinate arrays are read once (`CachedCoordinate`)."""

    __slots__ = ("cached",)

    def open_store_variable(self, name):
        variable = super().open_store_variable(name)
        if name in self.cached:
            data = indexing.LazilyIndexedArray(self.cached[name])
            variable = xr.Variable(variable.dims, data, variable.attrs, variable.encoding)
        return variable


def open_prefetched(prefetched: Prefetched, storage: StorageOptions | None = None) -> OpenedStore:
    """Open a store from its prefetched metadata and coordinate chunks (no I/O); `storage`
    for its limits."""
    prototype = default_buffer_prototype()
    memory = MemoryStore(
        {key: prototype.buffer.from_bytes(data) for key, data in prefetched.files.items()}, read_only=True
    )
    cached = (prefetched.coordinates, prefetched.files) if FAST_OPEN else None
    limit = limit_bytes((storage or StorageOptions()).max_coordinate_mb)
    return _open(
        prefetched.ref, memory, None, consolidated=True, zarr_format=prefetched.zarr_format, cached=cached, limit=limit
    )


def open_store(ref: StoreRef, storage: StorageOptions | None = None) -> OpenedStore:
    """Open a store lazily through its URL (every read is a request)."""
    storage = storage or StorageOptions()
    if ref.kind not in REFERENCE_KINDS and ref.zarr_format != 3 and ref.consolidated is not False:
        # A parquet reference folder given by a name that does not say so (a list entry,
        # `inspect`) has a consolidated .zmetadata that zarr would open, reading its
        # absent chunks as fill values: tell it apart first (one GET, lazy path only).
        if _is_parquet_reference_folder(ref, storage, limit_bytes(storage.max_metadata_mb)):
            ref = replace(ref, kind=KERCHUNK_PARQUET)
    kerchunk = ref.kind in REFERENCE_KINDS
    try:
        store, storage_options, reference_options, reference_bytes = _zarr_store_for(ref, storage)
    except Exception as exc:  # noqa: BLE001
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc
    opened = _open(
        ref,
        store,
        storage_options,
        consolidated=False if kerchunk else ref.consolidated,
        zarr_format=2 if kerchunk else ref.zarr_format,
        limit=limit_bytes(storage.max_coordinate_mb),
    )
    opened.reference_options = reference_options
    opened.reference_bytes = reference_bytes
    return opened


def _is_parquet_reference_folder(ref: StoreRef, storage: StorageOptions, limit: int) -> bool:
    from .references import is_parquet_zmetadata

    try:
        fs = storage.filesystem(ref.url)
        raw = cat_bounded_sync(fs, f"{ref.url.rstrip('/')}/.zmetadata", limit, ".zmetadata", METADATA_SETTING)
        return is_parquet_zmetadata(raw)
    except FileNotFoundError:
        return False  # no consolidated v2 metadata: zarr says what the store is
    except Exception as exc:  # noqa: BLE001 - what zarr would meet too: the store's failure
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc


MAX_STAND_INS = 8  # distinct unknown codecs tolerated in one store


class CodecUnavailable(RuntimeError):
    """A chunk needed a codec that is not installed (raised by a stand-in's decode)."""


class _StandIn:
    """Marks a codec that is not installed: metadata parses, decoding fails."""

    codec_id = "?"

    def __init__(self, **configuration):
        self.configuration = configuration

    def decode(self, *args, **kwargs):
        raise CodecUnavailable(f"codec not available: {self.codec_id!r}")

    encode = decode


_stand_in_lock = threading.Lock()


def _missing_codec(exc: BaseException | None) -> str | None:
    """The id of the uninstalled codec an open failed on, looking through chained causes."""
    from numcodecs.errors import UnknownCodecError as NumcodecsUnknown
    from zarr.errors import UnknownCodecError as ZarrUnknown

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NumcodecsUnknown):
            return str(exc.codec_id).strip("'\"")  # numcodecs passes it quoted
        if isinstance(exc, ZarrUnknown):
            found = re.search(r"Unknown codec: '([^']+)'", str(exc))
            return found.group(1) if found else None
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def _stand_ins(codec_ids: list[str]) -> Iterator[None]:
    """Register stand-ins for `codec_ids` (numcodecs for v2, zarr for v3) while a store is opened.

    zarr instantiates every array's codecs when it parses metadata, so one data
    variable compressed with a plugin this machine lacks (e.g. `blosc2`) would
    hide the whole store; its chunks are never read here, its metadata is enough.
    """
    if not codec_ids:
        yield
        return
    import numcodecs.abc
    import numcodecs.registry
    import zarr.registry
    from zarr.abc.codec import BytesBytesCodec

    registries = getattr(zarr.registry, "__codec_registries")
    with _stand_in_lock:
        added_v2, added_v3 = [], []
        for codec_id in codec_ids:
            if codec_id not in numcodecs.registry.codec_registry:
                v2 = type(f"StandIn_{codec_id}", (_StandIn, numcodecs.abc.Codec), {"codec_id": codec_id})
                numcodecs.registry.codec_registry[codec_id] = v2
                added_v2.append(codec_id)
            if not registries.get(codec_id):
                attributes = {"codec_id": codec_id, "is_fixed_size": False}
                v3 = type(f"StandInV3_{codec_id}", (_StandIn, BytesBytesCodec), attributes)
                v3.to_dict = lambda self: {"name": self.codec_id, "configuration": self.configuration}
                v3._decode_single = v3.decode
                zarr.registry.register_codec(codec_id, v3)
                added_v3.append(codec_id)
        try:
            yield
        finally:
            for codec_id in added_v2:
                numcodecs.registry.codec_registry.pop(codec_id, None)
            for codec_id in added_v3:
                registries.pop(codec_id, None)


def codec_names(codecs) -> list[str]:
    """The ids (v2) or names (v3) of codec objects, looking inside sharding."""
    names = []
    for codec in codecs or ():
        if codec is None:
            continue
        inner = getattr(codec, "codecs", None)  # sharding: the codecs inside the shards
        if inner:
            names += codec_names(inner)
        elif isinstance(codec, _StandIn):
            names.append(codec.codec_id)
        elif getattr(codec, "codec_id", None):
            names.append(str(codec.codec_id))
        else:
            names.append(str(codec.to_dict().get("name")))
    return names


def array_codecs(array) -> list[str]:
    """Codec ids a zarr array's chunks need (filters, serializer, compressors)."""
    meta = array.metadata
    if meta.zarr_format == 2:
        return codec_names([*(meta.filters or ()), meta.compressor])
    return codec_names(meta.codecs)


def _dims_and_attrs(array) -> tuple[list[str], dict]:
    attrs = dict(array.attrs)
    v3 = array.metadata.zarr_format == 3
    dims = list(array.metadata.dimension_names or []) if v3 else list(attrs.get("_ARRAY_DIMENSIONS", []))
    return dims, attrs


def _arrays_needing(zarr_group, stand_ins: list[str]) -> tuple[dict[str, list[str]], dict[str, tuple[list[str], dict]]]:
    """{array: the stand-in codecs it needs}, and every array's (dimensions, attributes)."""
    needing, layout = {}, {}
    for name, array in zarr_group.arrays():
        layout[name] = _dims_and_attrs(array)
        missing = [c for c in array_codecs(array) if c in stand_ins]
        if missing:
            needing[name] = missing
    return needing, layout


def _coordinates(layout: dict[str, tuple[list[str], dict]], group_attrs: dict) -> set[str]:
    """The arrays xarray makes coordinates: dimension coordinates, CF `coordinates`, their bounds."""
    wanted = {name for name, (dims, _) in layout.items() if dims == [name]}
    wanted.update(str(group_attrs.get("coordinates", "")).split())
    for _, attrs in layout.values():
        wanted.update(str(attrs.get("coordinates", "")).split())
    wanted |= {str(layout[name][1]["bounds"]) for name in wanted if name in layout and layout[name][1].get("bounds")}
    return wanted & set(layout)


def _check_coordinate_sizes(ref: StoreRef, zarr_store: ZarrStore, limit: int) -> None:
    """StoreReadError (too-large) when a coordinate declares more than `limit` bytes (shape x
    item size, from its metadata: the arrays are listed already, nothing more is read)."""
    arrays = dict(zarr_store.arrays())
    layout = {name: _dims_and_attrs(array) for name, array in arrays.items()}
    for name in sorted(_coordinates(layout, dict(zarr_store.zarr_group.attrs))):
        array = arrays[name]
        dtype = array.dtype
        itemsize = getattr(dtype, "itemsize", 0) or 8
        problem = coordinate_problem(name, array.shape, itemsize, str(getattr(dtype, "name", dtype)), limit)
        if problem is not None:
            raise StoreReadError(ref.url, TOO_LARGE, problem)


def _open(
    ref: StoreRef,
    store,
    storage_options,
    *,
    consolidated: bool | None,
    zarr_format: int | None,
    cached=None,
    limit: int | None = None,
) -> OpenedStore:
    """`cached`: (names of arrays whose chunks are all in memory, those chunks), to read each once
    (see `CachedCoordinate`); `limit`: the bytes one coordinate may hold decoded."""
    stand_ins: list[str] = []
    limit = limit or limit_bytes(StorageOptions().max_coordinate_mb)
    while True:
        try:
            with _stand_ins(stand_ins):
                return _open_once(ref, store, storage_options, consolidated, zarr_format, stand_ins, cached, limit)
        except StoreReadError as exc:
            missing = _missing_codec(exc.__cause__)
            if missing is None or missing in stand_ins or len(stand_ins) >= MAX_STAND_INS:
                raise
            stand_ins.append(missing)


def _open_once(
    ref: StoreRef, store, storage_options, consolidated, zarr_format, stand_ins: list[str], cached, limit: int
) -> OpenedStore:
    try:
        with warnings.catch_warnings():
            # Non-standard calendars fall back to cftime by design, and stores of
            # unknown layout are probed for consolidated metadata: neither is worth
            # a warning.
            warnings.simplefilter("ignore", category=xr.SerializationWarning)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            zarr_store = (ZarrStore if cached is None else _PrefetchedZarrStore).open_group(
                store,
                mode="r",
                consolidated=consolidated,
                zarr_format=zarr_format,
                storage_options=storage_options,
            )
            if cached is not None:
                arrays, (names, files) = dict(zarr_store.arrays()), cached
                zarr_store.cached = {
                    name: CachedCoordinate(arrays[name], name, files) for name in names if name in arrays
                }
            # Before xarray reads a coordinate (the dimension coordinates, for its indexes).
            _check_coordinate_sizes(ref, zarr_store, limit)
            unavailable: dict[str, list[str]] = {}
            if stand_ins:
                unavailable, layout = _arrays_needing(zarr_store.zarr_group, stand_ins)
                for name in sorted(_coordinates(layout, dict(zarr_store.zarr_group.attrs)) & set(unavailable)):
                    codecs = ", ".join(unavailable[name])
                    reason = f"coordinate {name!r} needs codec {codecs}, which is not installed"
                    raise StoreReadError(ref.url, UNKNOWN_CODEC, reason)
            dataset = xr.open_dataset(
                ref.url,
                engine="zarr",
                store=zarr_store,
                chunks=None,
                decode_times=xr.coders.CFDatetimeCoder(use_cftime=None),
                # Indexes (pandas) serve selections, which the mapping makes none of.
                create_default_indexes=cached is None,
            )
            if cached is not None:
                # Decoded once (times above all), not at every `.values` the mapping asks for.
                for name in zarr_store.cached:
                    if name in dataset.variables:
                        dataset.variables[name].load()
    except StoreReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line report
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc
    metadata = zarr_store.zarr_group.metadata
    consolidated = getattr(metadata, "consolidated_metadata", None) is not None
    return OpenedStore(
        ref=ref,
        dataset=dataset,
        zarr_format=metadata.zarr_format,
        consolidated=consolidated,
        unavailable_codecs=unavailable,
        group=zarr_store.zarr_group,
        cached=getattr(zarr_store, "cached", {}),
    )
