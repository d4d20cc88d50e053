"""The words every stage of `loaders` shares: what a store is before it is read, where a
catalogue suggests it goes, and how finding stores fails.

It imports nothing of the stages (finding, reading, mapping, running), so each of them
can use it without importing another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zarr_stac.common.storage import StorageOptions, strip_url

from .failures import StoreFailure

# What kind of store a URL is.
ZARR = "zarr"
KERCHUNK = "kerchunk"  # a JSON reference file: a virtual Zarr store over other files
KERCHUNK_PARQUET = "kerchunk-parquet"  # a parquet reference folder (fsspec LazyReferenceMapper)
REFERENCE_KINDS = (KERCHUNK, KERCHUNK_PARQUET)
# A source that is an xpublish server (its datasets are Zarr stores over HTTP).
XPUBLISH = "xpublish"


@dataclass(frozen=True)
class CollectionHint:
    """The collection a catalogue input puts a store in (a nested intake catalogue, an ESM group)."""

    id: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)  # slots: a crawl plans one per store
class StoreRef:
    """A store to catalogue, and what is known about it before opening it."""

    url: str
    zarr_format: int | None = None  # None: detected when opened
    consolidated: bool | None = None  # None: detected when opened
    kind: str = ZARR
    # From explicit inputs: a preferred item id and properties (e.g. CSV columns).
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # From catalogue inputs: the collection the catalogue's structure suggests (see config `catalogue`).
    collection: CollectionHint | None = field(default=None, compare=False, hash=False)
    # How to read this store when it differs from its source's options: the credentials its
    # URL held, an intake entry's storage_options (see `entry_ref`). Never published.
    storage: StorageOptions | None = field(default=None, compare=False, hash=False, repr=False)


def entry_ref(url: str, storage: StorageOptions, **fields: Any) -> StoreRef:
    """The StoreRef of a catalogue entry's URL listed by a source read with `storage`: the
    credentials the URL holds go into the ref's own options (None: the source's serve), its
    published URL has none. Raises ValueError for credentials that cannot be used."""
    public, own = storage.for_url(url)
    return StoreRef(url=strip_url(public), storage=None if own is storage else own, **fields)


@dataclass
class ExpandedInput:
    """The stores of one input and the root their paths are relative to."""

    root: str
    # The input's entries: stores, and failures for entries that yield none (re-iterable;
    # a CSV or ESM table is read again on each pass). None: discover below `root`.
    refs: Iterable[StoreRef | StoreFailure] | None
    # A table streamed row by row (CSV, ESM): `count` stores, read again when iterated.
    streamed: bool = False
    count: int | None = None


class DiscoveryError(RuntimeError):
    """A prefix could not be listed; its stores are unknown (not absent)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class SourceUnreachable(DiscoveryError):
    """The root of a crawl itself cannot be listed (no such bucket or folder, no
    credentials, access denied): nothing of it is known, so nothing is catalogued."""


class InputError(ValueError):
    """An input file that cannot be used; the message names it and says why."""


class CatalogueError(ValueError):
    """A catalogue input itself (an intake catalogue, a CSV or ESM table) is unusable; the
    message names it. `finding.inputs` reports it as an InputError."""
