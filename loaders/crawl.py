"""Crawl: expand inputs, read each store's metadata, map it to STAC.

Stores are read concurrently (each read is dominated by object-store latency).
A store that cannot be catalogued becomes a `StoreFailure` with a failure kind
and a one-line reason; it never stops the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pystac

from .collections import build_collection
from .config import MappingConfig, SourceConfig, default_config
from .discover import DiscoveryError, StoreRef
from .inputs import InputError, common_root, expand_input, iter_refs, kind_of
from .failures import DISCOVERY, DUPLICATE_ID, INPUT, LAYOUT, MAPPING_ERROR, StoreFailure
from .mapping import MappingError, store_to_item
from .read import StoreReadError, one_line, open_store
from .layout import Placement
from .storage import StorageOptions

@dataclass
class CataloguedStore:
    """A store's Item and what collection-level defaults are derived from."""

    item: pystac.Item
    source: SourceConfig
    fields: Mapping[str, str]  # path-template fields
    attrs: Mapping[str, Any]  # the dataset's global attributes


@dataclass(frozen=True)
class Job:
    source: SourceConfig
    root: str
    ref: StoreRef


@dataclass
class CrawlResult:
    """What a crawl produced, and what it did not see.

    A store missing from `items` may only be deleted from an existing catalogue
    when `may_delete_from(its collection)`: the crawl then saw every store of that
    collection. A failed store, a prefix that could not be listed or an unusable
    input file all mean "keep what was catalogued before".
    """

    config: MappingConfig
    collections: list[pystac.Collection] = field(default_factory=list)
    items: list[pystac.Item] = field(default_factory=list)
    failures: list[StoreFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """False when some failure could concern any collection (discovery, input)."""
        return not any(f.collection_id is None and f.kind != LAYOUT for f in self.failures)

    @property
    def incomplete_collections(self) -> set[str]:
        return {f.collection_id for f in self.failures if f.collection_id is not None}

    def may_delete_from(self, collection_id: str) -> bool:
        return self.complete and collection_id not in self.incomplete_collections

    def items_of(self, collection_id: str) -> list[pystac.Item]:
        return [item for item in self.items if item.collection_id == collection_id]


def placement_of(job: Job) -> tuple[Placement, dict[str, str]]:
    try:
        return job.source.place(job.root, job.ref.url, job.ref.name)
    except ValueError as exc:
        raise MappingError(LAYOUT, str(exc)) from None


def catalogue_store(job: Job) -> CataloguedStore:
    """Read and map one store; raises StoreReadError or MappingError."""
    placement, fields = placement_of(job)
    opened = open_store(job.ref, job.source.storage)
    try:
        item = store_to_item(
            opened,
            item_id=placement.item_id,
            collection_id=placement.collection_id,
            source=job.source,
            properties={**fields, **job.ref.properties},
        )
        return CataloguedStore(item=item, source=job.source, fields=fields, attrs=dict(opened.dataset.attrs))
    finally:
        opened.dataset.close()


def run_job(job: Job) -> CataloguedStore | StoreFailure:
    try:
        return catalogue_store(job)
    except StoreReadError as exc:
        kind, reason = exc.kind, exc.reason
    except MappingError as exc:
        kind, reason = exc.kind, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad store must not stop the crawl
        kind, reason = MAPPING_ERROR, one_line(exc)
    try:
        collection_id = placement_of(job)[0].collection_id
    except MappingError:
        collection_id = None
    return StoreFailure(job.ref.url, kind, reason, collection_id)


def plan(config: MappingConfig, result: CrawlResult, workers: int) -> list[Job]:
    """Every store to catalogue, from every source; unusable inputs become failures."""
    jobs: list[Job] = []
    for source in config.sources:
        try:
            expanded = expand_input(source.url, source.storage)
            refs = list(iter_refs(expanded, source.storage, workers))
        except InputError as exc:
            result.failures.append(StoreFailure(source.url, INPUT, str(exc)))
            continue
        except DiscoveryError as exc:
            result.failures.append(StoreFailure(exc.url, DISCOVERY, exc.reason))
            continue
        jobs.extend(Job(source, expanded.root, ref) for ref in sorted(refs, key=lambda r: r.url))
    return jobs


def crawl(
    target: str | MappingConfig,
    storage: StorageOptions | None = None,
    *,
    workers: int = 16,
    on_store: Callable[[StoreRef, pystac.Item | StoreFailure], None] | None = None,
    on_discovered: Callable[[list[StoreRef]], None] | None = None,
) -> CrawlResult:
    """Catalogue every store of `target`: a URL/input file, or a mapping configuration."""
    config = target if isinstance(target, MappingConfig) else default_config(target, storage)
    result = CrawlResult(config=config)
    jobs = plan(config, result, workers)
    if on_discovered:
        on_discovered([job.ref for job in jobs])

    stores: list[CataloguedStore] = []
    seen: dict[tuple[str, str], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for job, outcome in zip(jobs, pool.map(run_job, jobs)):
            if isinstance(outcome, CataloguedStore):
                key = (outcome.item.collection_id, outcome.item.id)
                if key in seen:
                    outcome = StoreFailure(job.ref.url, DUPLICATE_ID, f"item id {key[1]!r} in collection {key[0]!r} is already used by {seen[key]}", key[0])
                else:
                    seen[key] = job.ref.url
                    stores.append(outcome)
            if isinstance(outcome, StoreFailure):
                result.failures.append(outcome)
            if on_store:
                on_store(job.ref, outcome.item if isinstance(outcome, CataloguedStore) else outcome)

    result.items = [store.item for store in stores]
    result.collections = build_collections(stores)
    return result


def build_collections(stores: list[CataloguedStore]) -> list[pystac.Collection]:
    grouped: dict[str, list[CataloguedStore]] = defaultdict(list)
    for store in stores:
        grouped[store.item.collection_id].append(store)
    collections = []
    for collection_id, members in sorted(grouped.items()):
        first = members[0]
        collections.append(
            build_collection(
                collection_id,
                [m.item for m in members],
                config=first.source.collection,
                fields=first.fields,
                attrs=[m.attrs for m in members],
            )
        )
    return collections


def inspect_store(url: str, storage: StorageOptions | None = None) -> CataloguedStore | StoreFailure:
    """Catalogue the single store (or kerchunk reference) at `url`."""
    url = url.rstrip("/")
    source = SourceConfig(url=url, storage=storage or StorageOptions())
    return run_job(Job(source, common_root([url]), StoreRef(url=url, kind=kind_of(url))))
