"""Crawl: expand inputs, read each store's metadata, map it to STAC, hand each Item on.

`Crawl` is the one way a crawl runs, for the CLI, the demo, the benchmarks and the tests:
`discover()` lists the stores (the caller may stop there: a source that cannot be read,
an input that yields no store), `run()` chooses where the stores are read from the
`Scale` and the number of stores (see `executors`), streams each Item to a sink as soon
as it is made and returns the `CrawlResult`. `crawl()` is both steps at once, keeping
the Items in memory. Reading and mapping one store is `jobs`.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pystac

from common.batching import batched
from common.rejection import ItemRejected, Rejection
from common.storage import StorageOptions

from .collections import CollectionSummary
from .config import CollectionConfig, MappingConfig, SourceConfig, default_config
from .discover import CollectionHint, DiscoveryError, SourceUnreachable, StoreRef
from .executors import Executor, make_executor
from .failures import DISCOVERY, DUPLICATE_ID, INPUT, KNOWN_NON_STORES, LAYOUT, StoreFailure
from .inputs import ExpandedInput, InputError, common_root, expand_input, iter_entries, kind_of
from .jobs import CataloguedStore, Job, Outcome, run_job
from .read import one_line
from .xpublish import XPUBLISH, expand_server


@dataclass(frozen=True)
class Scale:
    """How a crawl is spread: listing threads, requests in flight, batches, processes or a Dask cluster."""

    workers: int = 16  # prefixes listed at once during discovery
    concurrency: int = 64  # stores read at once per process (their requests are issued together)
    processes: int | None = None  # worker processes for the mapping (None: one per CPU on large crawls)
    dask_scheduler: str | None = None  # a Dask cluster's address: the batches run there
    dask_gateway: str | None = None  # a Dask Gateway's address ("config": dask's), for a cluster of its own
    gateway_workers: int = 2  # the workers of that cluster
    batch_size: int = 256  # stores per task of an executor

    def executor(self, total: int) -> Executor:
        """Where a crawl of `total` stores runs: a Dask cluster when one is given, else worker
        processes if they pay for themselves (more than two batches), else this process."""
        processes = (self.processes or os.cpu_count() or 1) if total > 2 * self.batch_size else 1
        return make_executor(processes, self.dask_scheduler, self.dask_gateway, self.gateway_workers)


@dataclass
class CrawlResult:
    """What a crawl produced, and what it did not see.

    A store missing from the catalogue may only be deleted from an existing one when
    `may_delete(its collection)`: the crawl then saw every store of that collection.
    A failed store, a prefix that could not be listed or an unusable input file all
    mean "keep what was catalogued before".
    """

    config: MappingConfig
    collections: list[pystac.Collection] = field(default_factory=list)
    # Every Item, sorted, only when the caller asked to keep them (`crawl()`); a streaming
    # run hands them to its sink instead.
    items: list[pystac.Item] = field(default_factory=list)
    failures: list[StoreFailure] = field(default_factory=list)
    # Sources that could not be read at all (an unusable input file, a root that
    # cannot be listed): also in `failures`. A command should stop before writing.
    unusable_sources: list[StoreFailure] = field(default_factory=list)
    catalogued: int = 0
    # Catalogue inputs (lists, CSV, ESM, intake) that yielded no store at all, and why.
    empty_inputs: list[tuple[str, str]] = field(default_factory=list)
    # (collection, item id) -> the store it came from, for the Items a sink refuses later.
    item_urls: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        """False when some failure could concern any collection (discovery, input), or when
        a catalogue input gave no store (it is then more likely wrong than empty)."""
        return not self.empty_inputs and not any(
            f.collection_id is None and f.kind not in (LAYOUT, *KNOWN_NON_STORES) for f in self.failures
        )

    @property
    def incomplete_collections(self) -> set[str]:
        return {f.collection_id for f in self.failures if f.collection_id is not None}

    def may_delete(self, collection_id: str) -> bool:
        """A `common.stac.MayDelete`: whether every store of the collection was seen."""
        return self.complete and collection_id not in self.incomplete_collections

    def items_of(self, collection_id: str) -> list[pystac.Item]:
        return [item for item in self.items if item.collection_id == collection_id]

    def reject(self, rejections: Iterable[Rejection]) -> None:
        """Items a sink refused after taking them (a batch write or load failed for that
        Item): each becomes its store's failure, so its collection is no longer complete."""
        for rejection in rejections:
            key = (rejection.collection_id, rejection.item_id)
            url = self.item_urls.get(key)
            if url is None:  # not from this crawl (an item kept from an earlier one)
                url = f"{rejection.collection_id}/{rejection.item_id}"
            else:
                self.catalogued -= 1
            self.failures.append(StoreFailure(url, rejection.kind, rejection.reason, rejection.collection_id))
        self.failures.sort(key=lambda f: f.url)


Stream = tuple[SourceConfig, ExpandedInput]


def plan(config: MappingConfig, result: CrawlResult, workers: int, streams: list[Stream] | None = None) -> list[Job]:
    """Every store to catalogue, from every source; unusable inputs become failures.

    With `streams`, tables (CSV, ESM) go there as (source, ExpandedInput) instead, to be
    read row by row when crawled (see `stream_jobs`): memory does not grow with the rows.
    """
    jobs: list[Job] = []
    for source in config.sources:
        refs: list[StoreRef] = []
        expanded = None
        first_failure = len(result.failures)
        try:
            if source.server == XPUBLISH:
                expanded = expand_server(source.url, source.storage, workers=workers)
            else:
                expanded = expand_input(source.url, source.storage, source.catalogue)
            if expanded.streamed and streams is not None and expanded.count:
                streams.append((source, expanded))
                continue
            for entry in iter_entries(expanded, source.storage, workers):
                if isinstance(entry, StoreFailure):
                    result.failures.append(entry)  # a catalogue entry that yields no store
                else:
                    refs.append(entry)
        except InputError as exc:
            failure = StoreFailure(source.url, INPUT, str(exc).removeprefix(f"{source.url}: "))
            result.failures.append(failure)
            result.unusable_sources.append(failure)
            result.empty_inputs.append((source.url, failure.reason))
            continue
        except DiscoveryError as exc:
            failure = StoreFailure(exc.url, DISCOVERY, exc.reason)
            result.failures.append(failure)
            if isinstance(exc, SourceUnreachable):
                result.unusable_sources.append(failure)
            continue
        if expanded.refs is not None and not refs:
            result.empty_inputs.append((source.url, _why_empty(source.url, result.failures[first_failure:])))
        jobs.extend(Job(source, expanded.root, ref) for ref in sorted(refs, key=lambda r: r.url))
    return jobs


def _why_empty(url: str, failures: list[StoreFailure]) -> str:
    if not failures:
        return "it lists no stores"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(f.kind for f in failures).items()))
    return f"none of its entries is a store ({kinds}; see the skipped entries)"


def stream_jobs(streams: list[Stream], result: CrawlResult) -> Iterator[Job]:
    """The jobs of streamed tables, row by row; rows that yield no store become failures."""
    for source, expanded in streams:
        try:
            for entry in expanded.refs:
                if isinstance(entry, StoreFailure):
                    result.failures.append(entry)
                else:
                    yield Job(source, expanded.root, entry)
        except Exception as exc:  # noqa: BLE001 - the table went away mid-read: the rest is unknown
            result.failures.append(StoreFailure(source.url, INPUT, f"reading stopped: {one_line(exc)}"))


# Takes each Item as it is made; may refuse one by raising `common.rejection.ItemRejected`
# (that store is then a failure, the run goes on), or later through `CrawlResult.reject`.
Sink = Callable[[pystac.Item], None]
OnProgress = Callable[[Outcome], None]


class Crawl:
    """One crawl: `discover()` the stores, then `run()` them through an executor.

    Nothing grows with the number of stores but the failures, the ids seen (to tell
    duplicates) and one summary per collection, so a crawl's memory stays bounded when
    its sink (a static catalogue, pgstac) writes items as they come.
    """

    def __init__(
        self,
        target: str | MappingConfig,
        storage: StorageOptions | None = None,
        *,
        scale: Scale | None = None,
        executor: Executor | None = None,
    ):
        """`target`: a URL or input file (read with `storage`), or a mapping configuration.
        `executor`: the caller's own (an instrumented one in tests and benchmarks), which
        the caller closes; by default `run` chooses one from `scale` and closes it."""
        self.config = target if isinstance(target, MappingConfig) else default_config(target, storage)
        self.scale = scale or Scale()
        self.executor = executor
        self.result = CrawlResult(config=self.config)
        self.total: int | None = None  # stores to read, once discovered
        self._jobs: list[Job] | None = None
        self._streams: list[Stream] = []  # tables read row by row as the crawl goes
        self._summaries: dict[str, CollectionSummary] = {}
        self._seen = self.result.item_urls  # (collection, item id) -> the store that has it
        self._ran = False

    def discover(self) -> CrawlResult:
        """List every store to read (`total`); what went wrong so far is in the result it
        returns: `unusable_sources` and `empty_inputs` (a command stops there), `failures`."""
        if self._jobs is None:
            self._jobs = plan(self.config, self.result, self.scale.workers, self._streams)
            self.total = len(self._jobs) + sum(expanded.count for _, expanded in self._streams)
        return self.result

    def run(
        self, sink: Sink | None = None, on_progress: OnProgress | None = None, *, keep_items: bool = False
    ) -> CrawlResult:
        """Read every store (discovering them first if not done yet), handing each Item to
        `sink` and each outcome to `on_progress` as soon as it is known; the result then
        holds the collections, the count catalogued, the failures sorted by URL and, with
        `keep_items`, every Item. The executor it chose is closed on errors and Ctrl-C too."""
        if self._ran:
            raise RuntimeError("a Crawl runs once")
        self._ran = True
        self.discover()
        executor = self.executor or self.scale.executor(self.total)
        items: list[pystac.Item] = []
        try:
            jobs = itertools.chain(self._jobs, stream_jobs(self._streams, self.result))
            for outcomes in executor.map(batched(jobs, self.scale.batch_size), self.scale.concurrency):
                for outcome in outcomes:
                    outcome = self._record(outcome, sink)
                    if isinstance(outcome, CataloguedStore):
                        self.result.catalogued += 1
                        if keep_items:
                            items.append(outcome.item)
                    if on_progress is not None:
                        on_progress(outcome)
        finally:
            if executor is not self.executor:
                executor.close()  # a gateway's cluster is shut down, on Ctrl-C too
        self.result.items = sorted(items, key=lambda i: (i.collection_id, i.id))
        self.result.failures.sort(key=lambda f: f.url)
        self.result.collections = [summary.build() for _, summary in sorted(self._summaries.items())]
        return self.result

    def _record(self, outcome: Outcome, sink: Sink | None) -> Outcome:
        """Hand a catalogued store's Item to `sink` and summarise it into its collection; a
        failure (a duplicate id, an Item the sink refused) is kept."""
        if isinstance(outcome, CataloguedStore):
            item = outcome.item
            key = (item.collection_id, item.id)
            if key in self._seen:
                reason = f"item id {key[1]!r} in collection {key[0]!r} is already used by {self._seen[key]}"
                outcome = StoreFailure(outcome.url, DUPLICATE_ID, reason, key[0])
            elif (refused := _hand_on(item, sink)) is not None:
                self._seen[key] = outcome.url
                outcome = StoreFailure(outcome.url, refused.kind, refused.reason, key[0])
            else:
                self._seen[key] = outcome.url
                summary = self._summaries.get(item.collection_id)
                if summary is None:
                    config = _with_hint(outcome.source.collection, outcome.collection_hint)
                    summary = CollectionSummary(item.collection_id, config, outcome.fields)
                    self._summaries[item.collection_id] = summary
                summary.add(item, outcome.attrs)
                return outcome
        self.result.failures.append(outcome)
        return outcome


def _hand_on(item: pystac.Item, sink: Sink | None) -> ItemRejected | None:
    """The sink's refusal of this one Item, if it refuses it; any other error stops the run."""
    if sink is None:
        return None
    try:
        sink(item)
    except ItemRejected as refused:
        return refused
    return None


def _with_hint(config: CollectionConfig, hint: CollectionHint | None) -> CollectionConfig:
    """The configured collection fields, completed with what a catalogue input says."""
    if hint is None or config.id:  # a configured collection id groups stores its own way
        return config

    def literal(text: str | None) -> str | None:  # config fields are templates: keep braces
        return text.replace("{", "{{").replace("}", "}}") if text else None

    title, description = config.title or literal(hint.title), config.description or literal(hint.description)
    return config.model_copy(update={"title": title, "description": description})


def crawl(
    target: str | MappingConfig,
    storage: StorageOptions | None = None,
    *,
    scale: Scale | None = None,
    sink: Sink | None = None,
    on_progress: OnProgress | None = None,
) -> CrawlResult:
    """`Crawl(target, storage, scale=scale).run(...)`, keeping every Item in `result.items`
    (tests, the demo, small catalogues); a command streams with `Crawl` instead."""
    return Crawl(target, storage, scale=scale).run(sink, on_progress, keep_items=True)


def inspect_store(url: str, storage: StorageOptions | None = None) -> CataloguedStore | StoreFailure:
    """Catalogue the single store (or kerchunk reference) at `url`."""
    url = url.rstrip("/")
    source = SourceConfig(url=url, storage=storage or StorageOptions())
    return run_job(Job(source, common_root([url]), StoreRef(url=url, kind=kind_of(url))))
