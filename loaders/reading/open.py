"""Open a store's metadata and coordinates, never its data variables.

xarray opens the Zarr group with `chunks=None`: it reads group and array metadata
and loads only the 1-D dimension coordinates (to build indexes); every other
variable stays a lazy backend array that nothing here touches, except the
coordinate arrays that extents are computed from. A hierarchy (arrays in child
groups: EOPF products, DataTrees) has each of its groups opened the same way, as
`xr.open_datatree` does, without aligning them; a store whose root is an array, not a
group, is reported as one that cannot be placed.

Kerchunk references (JSON files and parquet folders) open the same way, through
a reference file system: a virtual Zarr v2 store whose chunks live in other files
(NetCDF, GRIB); reading a coordinate reads only its byte ranges of those files.

What a store holds is untrusted (see `limits`): every metadata document zarr reads is
checked first (`CheckedMetadataStore`: at most `max_metadata_mb`, a JSON object), a JSON
reference is read at most `max_input_mb` far, and a store with a coordinate declared
larger than `max_coordinate_mb` is refused before xarray reads any coordinate.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import xarray as xr
import zarr
import zarr.errors
from xarray.backends.zarr import ZarrStore
from zarr.abc.store import RangeByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, MemoryStore, WrapperStore
from zarr.storage._common import make_store

from zarr_stac.common.library_fixes.fsspec import with_remote_protocol
from zarr_stac.common.storage import (
    StorageOptions,
    is_remote,
    protocol_of,
)

from ..failures import (
    NO_COORDINATES,
    TOO_LARGE,
    UNKNOWN_CODEC,
)
from ..limits import (
    MAX_GROUPS,
    METADATA_SETTING,
    TooLarge,
    cat_bounded,
    cat_bounded_sync,
    coordinate_problem,
    limit_bytes,
    size_text,
)
from ..vocabulary import KERCHUNK_PARQUET, REFERENCE_KINDS, StoreRef
from . import fastpath
from .codecs import MAX_STAND_INS, array_codecs, missing_codec, serializer_missing, standing_in
from .errors import StoreReadError, classify, one_line
from .fastpath import CachedCoordinate, PrefetchedZarrStore
from .fetch import Prefetched
from .metadata import CorruptMetadata, coordinate_names, is_parquet_zmetadata, metadata_problem, node_path
from .references import load_references


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
    # The groups below the root of a hierarchical store, by path ("measurements/reflectance/r10m"),
    # each opened as the root is; none in a flat store.
    groups: dict[str, OpenedGroup] = field(default_factory=dict)

    def close(self) -> None:
        for dataset in (self.dataset, *(group.dataset for group in self.groups.values())):
            dataset.close()


@dataclass
class OpenedGroup:
    """One group of a hierarchical store, opened as the root is (see `OpenedStore`)."""

    path: str
    dataset: xr.Dataset
    group: Any = None
    cached: dict[str, Any] = field(default_factory=dict)
    unavailable_codecs: dict[str, list[str]] = field(default_factory=dict)


def _zarr_store_for(ref: StoreRef, storage: StorageOptions):
    """What to hand to zarr: a URL (with options) or, for kerchunk, a reference store."""
    if ref.kind in REFERENCE_KINDS:
        # JSON and parquet references alike: fsspec's reference filesystem tells them
        # apart (a folder is a LazyReferenceMapper) and expands templates and gen.
        from kerchunk.utils import refs_as_store  # kerchunk: only for references

        options = storage.for_fsspec(ref.url) if is_remote(ref.url) else {}
        refs, extra, raw = load_references(ref, options, limit_bytes(storage.max_input_mb))
        if ref.kind == KERCHUNK_PARQUET:
            extra = with_remote_protocol(extra, protocol_of(ref.url))
        # The referenced files are assumed to live in the same object store; they may be on any
        # host, which gets none of the reference URL's own HTTP credentials.
        remote = storage.model_copy(update={"http_origin": None}).for_fsspec(ref.url) if is_remote(ref.url) else {}
        store = refs_as_store(refs, remote_options=remote, target_options=dict(options), **extra)
        return CheckedMetadataStore(store, limit_bytes(storage.max_metadata_mb)), None, extra, raw
    # The store zarr would make of the URL, its metadata documents checked as they are read.
    store_options = storage.for_fsspec(ref.url) if is_remote(ref.url) else None
    store = sync(make_store(ref.url, mode="r", storage_options=store_options))
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
    def fs(self) -> Any:
        """The fsspec filesystem beneath (a reference filesystem's references: `assets`)."""
        return self._store.fs

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
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


def open_prefetched(prefetched: Prefetched, storage: StorageOptions | None = None) -> OpenedStore:
    """Open a store from its prefetched metadata and coordinate chunks (no I/O); `storage`
    for its limits."""
    prototype = default_buffer_prototype()
    memory = MemoryStore(
        {key: prototype.buffer.from_bytes(data) for key, data in prefetched.files.items()}, read_only=True
    )
    cached = (prefetched.coordinates, prefetched.files) if fastpath.FAST_OPEN else None
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
    try:
        fs = storage.filesystem(ref.url)
        raw = cat_bounded_sync(fs, f"{ref.url.rstrip('/')}/.zmetadata", limit, ".zmetadata", METADATA_SETTING)
        return is_parquet_zmetadata(raw)
    except FileNotFoundError:
        return False  # no consolidated v2 metadata: zarr says what the store is
    except Exception as exc:  # noqa: BLE001 - what zarr would meet too: the store's failure
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc


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


def _check_coordinate_sizes(ref: StoreRef, zarr_store: ZarrStore, limit: int, path: str = "") -> None:
    """StoreReadError (too-large) when a coordinate of the group at `path` declares more than
    `limit` bytes (shape x item size, from its metadata: the arrays are listed already, nothing
    more is read)."""
    arrays = dict(zarr_store.arrays())
    layout = {name: _dims_and_attrs(array) for name, array in arrays.items()}
    for name in sorted(coordinate_names(layout, dict(zarr_store.zarr_group.attrs))):
        array = arrays[name]
        dtype = array.dtype
        itemsize = getattr(dtype, "itemsize", 0) or 8
        what = node_path(path, name)
        problem = coordinate_problem(what, array.shape, itemsize, str(getattr(dtype, "name", dtype)), limit)
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
    serializers: set[str] = set()  # stand-ins that stand for an array-to-bytes codec (v3)
    limit = limit or limit_bytes(StorageOptions().max_coordinate_mb)
    while True:
        try:
            with standing_in(stand_ins, frozenset(serializers)):
                return _open_once(ref, store, storage_options, consolidated, zarr_format, stand_ins, cached, limit)
        except StoreReadError as exc:
            missing = missing_codec(exc.__cause__)
            compressors = [codec for codec in stand_ins if codec not in serializers]
            if missing is None and serializer_missing(exc.__cause__) and compressors:
                serializers.add(compressors[-1])  # the last one found took a serializer's place
                continue
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
            zarr_store = (ZarrStore if cached is None else PrefetchedZarrStore).open_group(
                store,
                mode="r",
                consolidated=consolidated,
                zarr_format=zarr_format,
                storage_options=storage_options,
            )
            root = _open_group(ref, zarr_store, "", stand_ins, cached, limit)
            # A hierarchy's groups, each opened as the root is (none in a flat store).
            groups = {
                path: _open_group(ref, child, path, stand_ins, cached, limit)
                for path, child in _child_stores(zarr_store)
            }
    except StoreReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line report
        if (reason := _root_array(store, exc)) is not None:
            raise StoreReadError(ref.url, NO_COORDINATES, reason) from exc
        raise StoreReadError(ref.url, classify(exc), one_line(exc)) from exc
    metadata = zarr_store.zarr_group.metadata
    consolidated = getattr(metadata, "consolidated_metadata", None) is not None
    return OpenedStore(
        ref=ref,
        dataset=root.dataset,
        zarr_format=metadata.zarr_format,
        consolidated=consolidated,
        unavailable_codecs=root.unavailable_codecs,
        group=root.group,
        cached=root.cached,
        groups=groups,
    )


def _child_stores(zarr_store: ZarrStore, path: str = "") -> Iterator[tuple[str, ZarrStore]]:
    """(path, store) of every group below `zarr_store`'s, depth first in name order, from the
    members it listed already (consolidated metadata: no request); TooLarge past `MAX_GROUPS`."""
    seen = 0
    stack = [(path, zarr_store)]
    while stack:
        parent_path, parent = stack.pop()
        children = sorted((name, node) for name, node in parent.members.items() if isinstance(node, zarr.Group))
        for name, node in reversed(children):
            seen += 1
            if seen >= MAX_GROUPS:
                raise TooLarge(f"it holds more than the {MAX_GROUPS:,} groups one store may have")
            # As xarray opens each group of a tree (`open_groups_as_dict`): v2 fill values mask.
            child = type(zarr_store)(node, mode="r", use_zarr_fill_value_as_mask=node.metadata.zarr_format == 2)
            stack.append((node_path(parent_path, name), child))
        if parent is not zarr_store:
            yield parent_path, parent


def _open_group(
    ref: StoreRef, zarr_store: ZarrStore, path: str, stand_ins: list[str], cached, limit: int
) -> OpenedGroup:
    """The dataset of one group (`path`, "" for the root): its coordinates checked against the
    limits and the codecs installed before xarray reads any of them."""
    cached_coordinates: dict[str, CachedCoordinate] = {}
    if cached is not None:
        assert isinstance(zarr_store, PrefetchedZarrStore)  # opened as one when the coordinates were prefetched
        arrays, (names, files) = dict(zarr_store.arrays()), cached
        zarr_store.cached = cached_coordinates = {
            name: CachedCoordinate(array, node_path(path, name), files)
            for name, array in arrays.items()
            if node_path(path, name) in names
        }
    # Before xarray reads a coordinate (the dimension coordinates, for its indexes).
    _check_coordinate_sizes(ref, zarr_store, limit, path)
    unavailable: dict[str, list[str]] = {}
    if stand_ins:
        unavailable, layout = _arrays_needing(zarr_store.zarr_group, stand_ins)
        for name in sorted(coordinate_names(layout, dict(zarr_store.zarr_group.attrs)) & set(unavailable)):
            codecs = ", ".join(unavailable[name])
            reason = f"coordinate {node_path(path, name)!r} needs codec {codecs}, which is not installed"
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
    # Decoded once (times above all), not at every `.values` the mapping asks for.
    for name in cached_coordinates:
        if name in dataset.variables:
            dataset.variables[name].load()
    return OpenedGroup(path, dataset, zarr_store.zarr_group, cached_coordinates, unavailable)


def _root_array(store, exc: BaseException) -> str | None:
    """Why a store whose root is an array, not a group, cannot be catalogued (dask's
    `da.to_zarr`); None when `exc` is no such case. An array alone has no coordinates."""
    if not isinstance(exc, zarr.errors.ContainsArrayError | zarr.errors.GroupNotFoundError):
        return None
    try:
        array = zarr.open_array(store=store, mode="r")
    except Exception:  # noqa: BLE001 - no array there either: the group's own error stands
        return None
    shape = "×".join(map(str, array.shape)) or "scalar"
    return (
        f"the store's root is a single array ({shape}, {array.dtype}), not a group: "
        "an array without coordinates cannot be placed in space or time"
    )


def has_stored_chunk(array) -> bool:
    """Whether any chunk (or shard) of a zarr array is stored. An array with none is absent:
    it reads as its fill value everywhere. One whose chunks hold values equal to the fill is
    not (a WRF `Time` of 0 days, fill value null): the two read alike, so ask the store.
    Stops at the first stored chunk; on a prefetched store (in memory) it makes no request."""
    store, path = array.store_path.store, array.store_path.path
    stored = array.shards or array.chunks
    grid = [-(-size // step) if step else 1 for size, step in zip(array.shape, stored, strict=True)]

    async def first_stored() -> bool:
        for index in itertools.product(*(range(n) for n in grid)):
            key = array.metadata.encode_chunk_key(index)
            if await store.exists(f"{path}/{key}" if path else key):
                return True
        return False

    return sync(first_stored())
