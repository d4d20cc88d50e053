"""One store's job, and a batch of them: read the metadata, map it to an Item, check it.

This is what every executor runs, in this process, in a worker process or on a Dask
worker: plain functions of picklable arguments. A store that cannot be catalogued
becomes a `StoreFailure` with a failure kind and a one-line reason; it never stops
the others.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pystac

from zarr_stac.common.layout import Placement
from zarr_stac.common.stac import item_interval
from zarr_stac.common.storage import StorageOptions, bucket_is_missing, bucket_of, protocol_of
from zarr_stac.common.values import plain

from ..config import SourceConfig
from ..failures import LAYOUT, MAPPING_ERROR, NOT_FOUND, StoreFailure
from ..mapping.collections import COLLECTION_ATTRS
from ..mapping.hierarchy import tree_to_item
from ..mapping.item import MappingError, store_to_item
from ..reading.errors import StoreReadError, classify, one_line
from ..reading.fetch import NotPrefetchable, Prefetched, Unchanged, prefetch_many
from ..reading.fingerprints import CONSOLIDATED_DOCUMENTS, REFERENCE_DOCUMENT, Fingerprint, document_fingerprint
from ..reading.open import open_prefetched, open_store
from ..vocabulary import CollectionHint, StoreRef


@dataclass
class CataloguedStore:
    """A store's Item and what collection-level defaults are derived from."""

    item: pystac.Item
    url: str
    source: SourceConfig
    fields: Mapping[str, str]  # path-template fields
    attrs: Mapping[str, Any]  # the dataset's global attributes
    collection_hint: CollectionHint | None = None  # what a catalogue input says of the collection
    fingerprint: Fingerprint | None = None  # for the ledger; None: re-read on every crawl
    # Values of the store or its catalogue that were dropped, replaced or renamed (see `zarr_stac.common.values`).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)  # slots: a crawl plans one per store
class Job:
    """One store to catalogue: where it was found (`root`) and by which source.

    `digest`: of its configuration and catalogue entry (see `ledger`); `known`: the
    fingerprint an earlier crawl recorded for it, under the same digest, if any."""

    source: SourceConfig
    root: str
    ref: StoreRef
    digest: str = ""
    known: Fingerprint | None = None

    @property
    def storage(self) -> StorageOptions:
        """How to read the store: its catalogue entry's own options, else its source's."""
        return self.ref.storage or self.source.storage


@dataclass
class UnchangedStore:
    """A store whose metadata document is the one the earlier crawl fingerprinted: not
    read again, its Item comes from the ledger."""

    job: Job


Outcome = CataloguedStore | StoreFailure | UnchangedStore


def placement_of(job: Job) -> tuple[Placement, dict[str, str]]:
    try:
        return job.source.place(job.root, job.ref.url, job.ref.name, job.ref.collection)
    except ValueError as exc:
        raise MappingError(LAYOUT, str(exc)) from None


def catalogue_store(job: Job, prefetched: Prefetched | BaseException | None = None) -> CataloguedStore:
    """Read and map one store; raises StoreReadError or MappingError.

    `prefetched` is what `fetch.prefetch` got for it: the store's bytes (opened from
    memory), NotPrefetchable (opened lazily by URL instead), or the error it met.
    """
    placement, fields = placement_of(job)
    if isinstance(prefetched, Prefetched):
        opened = open_prefetched(prefetched, job.source.storage)
    elif prefetched is None or isinstance(prefetched, NotPrefetchable):
        opened = open_store(job.ref, job.storage)
    else:
        raise StoreReadError(job.ref.url, classify(prefetched), one_line(prefetched))
    notes: list[str] = []
    try:
        # A hierarchy (arrays in child groups) is one Item too, of all its groups.
        map_store = tree_to_item if opened.groups else store_to_item
        item = map_store(
            opened,
            item_id=placement.item_id,
            collection_id=placement.collection_id,
            source=job.source,
            properties={**fields, **job.ref.properties},
            notes=notes,
        )
        # Only the attributes collection defaults come from: the ledger keeps them for unchanged stores.
        kept = {name: opened.dataset.attrs[name] for name in COLLECTION_ATTRS if name in opened.dataset.attrs}
        attrs = plain(kept, notes, "attributes") or {}
        hint = job.ref.collection
        return CataloguedStore(
            item=item,
            url=job.ref.url,
            source=job.source,
            fields=fields,
            attrs=attrs,
            collection_hint=hint,
            fingerprint=fingerprint_of(job, prefetched, opened.reference_bytes),
            notes=notes,
        )
    finally:
        opened.close()


def fingerprint_of(
    job: Job, prefetched: Prefetched | BaseException | None, reference: bytes | None = None
) -> Fingerprint | None:
    """The fingerprint of a store read from its consolidated metadata, or of a JSON reference
    (the bytes are at hand either way); None for the others, read again on every crawl."""
    if not job.digest:
        return None
    if reference is not None:
        return document_fingerprint(REFERENCE_DOCUMENT, reference, job.digest)
    if not isinstance(prefetched, Prefetched):
        return None
    document = CONSOLIDATED_DOCUMENTS[prefetched.zarr_format]
    data = prefetched.files.get(document)
    return None if data is None else document_fingerprint(document, data, job.digest)


def check_json(stored: CataloguedStore) -> None:
    """Raise MappingError unless the Item (and the attributes collections use) is strict JSON
    for both encoders the publishers use (json refuses NaN, orjson integers beyond 64 bits):
    what the writer and the loader get must never fail on one store's values, and a NaN in
    a bbox is a wrong Item, not one to publish."""
    try:
        for data in (stored.item.to_dict(include_self_link=False, transform_hrefs=False), stored.attrs):
            json.dumps(data, allow_nan=False)
            orjson.dumps(data)
    except (TypeError, ValueError) as exc:
        raise MappingError(MAPPING_ERROR, f"the Item is not valid JSON: {one_line(exc)}") from exc
    try:  # what the collection's extent and every publisher read
        item_interval(stored.item.properties)
    except (TypeError, ValueError) as exc:
        raise MappingError(MAPPING_ERROR, f"the Item's times cannot be read: {one_line(exc)}") from exc


def run_job(job: Job, prefetched: Prefetched | Unchanged | BaseException | None = None) -> Outcome:
    if isinstance(prefetched, Unchanged):
        return UnchangedStore(job)
    try:
        stored = catalogue_store(job, prefetched)
        check_json(stored)
        return stored
    except StoreReadError as exc:
        kind, reason = exc.kind, exc.reason
    except MappingError as exc:
        kind, reason = exc.kind, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad store must not stop the crawl
        kind, reason = MAPPING_ERROR, one_line(exc)
    if kind == NOT_FOUND and _bucket_is_missing(job.ref.url, job.storage):
        reason = f"bucket {bucket_of(job.ref.url)!r} does not exist (or these credentials may not see it)"
    try:
        collection_id = placement_of(job)[0].collection_id
    except MappingError:
        collection_id = None
    return StoreFailure(job.ref.url, kind, reason, collection_id)


_missing_buckets: dict[tuple[str, str], bool] = {}


def _bucket_is_missing(url: str, storage: StorageOptions) -> bool:
    """Whether a store was not found because its whole bucket is absent (asked once per bucket)."""
    bucket = bucket_of(url)
    if bucket is None:
        return False
    key = (f"{protocol_of(url)}://{bucket}", storage.model_dump_json())
    if key not in _missing_buckets:
        _missing_buckets[key] = bucket_is_missing(url, storage)
    return _missing_buckets[key]


def run_batch(jobs: Sequence[Job], concurrency: int = 64) -> list[Outcome]:
    """Catalogue a batch of stores: every request at once, then the mapping (CPU). A store
    whose metadata document matches its `known` fingerprint is not read (`UnchangedStore`).

    A plain function of picklable arguments, so that a process pool or a Dask
    worker runs it exactly as the local loop does.
    """
    prefetched: dict[int, Prefetched | Unchanged | BaseException] = {}
    # By the options themselves, secrets included: two entries with other keys are two clients.
    by_storage: dict[tuple[StorageOptions, str], list[int]] = defaultdict(list)
    for index, job in enumerate(jobs):
        by_storage[(job.storage, protocol_of(job.ref.url))].append(index)

    async def fetch_all() -> None:
        for (storage, _), indexes in by_storage.items():
            known = [jobs[i].known for i in indexes]
            results = await prefetch_many([jobs[i].ref for i in indexes], storage, concurrency, known)
            prefetched.update(zip(indexes, results, strict=True))

    _event_loop().run_until_complete(fetch_all())
    return [run_job(job, prefetched.get(i)) for i, job in enumerate(jobs)]


_loops = threading.local()


def _event_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop, kept from batch to batch (a process pool's worker, a Dask
    worker's thread): the object-store clients' shared session stays valid in it (see
    `fetch.shared_session`)."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop
