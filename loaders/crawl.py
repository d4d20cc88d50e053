"""Crawl a prefix: discover stores, read their metadata, map them to STAC.

Stores are read concurrently (each read is dominated by object-store latency).
A store that cannot be catalogued becomes a `StoreFailure` with a one-line
reason; it never stops the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pystac

from .collections import build_collection
from .discover import DiscoveryError, StoreRef, discover_stores
from .layout import Placement, default_placement
from .mapping import MappingError, store_to_item
from .read import StoreReadError, one_line, open_store
from .storage import StorageOptions


@dataclass(frozen=True)
class StoreFailure:
    url: str
    kind: str  # "discovery", "read" or "mapping"
    reason: str


@dataclass
class CrawlResult:
    """What a crawl produced; `complete` is False when some prefix could not be listed."""

    root: str
    collections: list[pystac.Collection] = field(default_factory=list)
    items: list[pystac.Item] = field(default_factory=list)
    failures: list[StoreFailure] = field(default_factory=list)
    complete: bool = True

    def items_of(self, collection_id: str) -> list[pystac.Item]:
        return [item for item in self.items if item.collection_id == collection_id]


def catalogue_store(
    ref: StoreRef,
    placement: Placement,
    storage: StorageOptions,
) -> pystac.Item:
    opened = open_store(ref, storage)
    try:
        return store_to_item(
            opened,
            item_id=placement.item_id,
            collection_id=placement.collection_id,
            storage=storage,
        )
    finally:
        opened.dataset.close()


def crawl(
    root: str,
    storage: StorageOptions | None = None,
    *,
    refs: Iterable[StoreRef] | None = None,
    workers: int = 16,
    on_store: Callable[[StoreRef, pystac.Item | StoreFailure], None] | None = None,
    on_discovered: Callable[[list[StoreRef]], None] | None = None,
) -> CrawlResult:
    """Catalogue every store below `root` (or the given `refs`)."""
    storage = storage or StorageOptions()
    result = CrawlResult(root=root)
    if refs is None:
        try:
            refs = list(discover_stores(root, storage, workers=workers))
        except DiscoveryError as exc:
            result.failures.append(StoreFailure(exc.url, "discovery", exc.reason))
            result.complete = False
            refs = []
    refs = sorted(refs)
    if on_discovered:
        on_discovered(refs)

    def work(ref: StoreRef) -> pystac.Item | StoreFailure:
        try:
            return catalogue_store(ref, default_placement(root, ref.url), storage)
        except StoreReadError as exc:
            return StoreFailure(ref.url, "read", exc.reason)
        except MappingError as exc:
            return StoreFailure(ref.url, "mapping", str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad store must not stop the crawl
            return StoreFailure(ref.url, "mapping", one_line(exc))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for ref, outcome in zip(refs, pool.map(work, refs)):
            if isinstance(outcome, StoreFailure):
                result.failures.append(outcome)
            else:
                result.items.append(outcome)
            if on_store:
                on_store(ref, outcome)

    by_collection: dict[str, list[pystac.Item]] = defaultdict(list)
    for item in result.items:
        by_collection[item.collection_id].append(item)
    result.collections = [build_collection(cid, items) for cid, items in sorted(by_collection.items())]
    return result
