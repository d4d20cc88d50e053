"""Crawl: expand inputs, read each store's metadata, map it to STAC, hand each Item on.

`Crawl` is the one way a crawl runs, for the CLI, the demo, the benchmarks and the tests:
`discover()` lists the stores (the caller may stop there: a source that cannot be read,
an input that yields no store), `run()` chooses where the stores are read from the
`Scale` and the number of stores (see `executors`), streams each Item to a sink as soon
as it is made and returns the `CrawlResult`. `crawl()` is both steps at once, keeping
the Items in memory. Reading and mapping one store is `jobs`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pystac

from zarr_stac.common.batching import batched
from zarr_stac.common.rejection import ItemRejected, Rejection
from zarr_stac.common.storage import StorageOptions

from ..config import CollectionConfig, MappingConfig, SourceConfig, default_config
from ..failures import DISCOVERY, DUPLICATE_ID, INPUT, KNOWN_NON_STORES, LAYOUT, READ_ERROR, StoreFailure
from ..finding.inputs import common_root, expand_input, iter_entries, kind_of
from ..finding.xpublish import expand_server
from ..mapping.collections import CollectionSummary
from ..mapping.item import MappingError
from ..markup import markdown_text, plain_text
from ..reading.errors import one_line
from ..vocabulary import (
    XPUBLISH,
    CollectionHint,
    DiscoveryError,
    ExpandedInput,
    InputError,
    SourceUnreachable,
    StoreRef,
)
from .executors import Executor, make_executor
from .jobs import CataloguedStore, Job, Outcome, UnchangedStore, placement_of, run_job
from .ledger import KnownFingerprints, Ledger, LedgerError, LedgerWriter, entry_digest, source_digest


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
    catalogued: int = 0  # the unchanged stores included
    unchanged: int = 0  # stores whose Item the ledger gave: not read again
    # Catalogue inputs (lists, CSV, ESM, intake) that yielded no store at all, and why.
    empty_inputs: list[tuple[str, str]] = field(default_factory=list)
    # (collection, item id) -> the store it came from, for the Items a sink refuses later.
    item_urls: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    # What the operator should know, though the crawl went on (an unreadable ledger, ...).
    notes: list[str] = field(default_factory=list)
    # This crawl's ledger (see `ledger`), for the catalogue's owner to keep: `ledger_data()`.
    ledger: LedgerWriter | None = field(default=None, repr=False)
    _refused: set[tuple[str, str]] = field(default_factory=set, repr=False)

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
        """A `zarr_stac.common.stac.MayDelete`: whether every store of the collection was seen."""
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
                self._refused.add(key)
            self.failures.append(StoreFailure(url, rejection.kind, rejection.reason, rejection.collection_id))
        self.failures.sort(key=lambda f: f.url)

    def ledger_data(self) -> bytes | None:
        """The ledger of what this crawl catalogued (refused Items left out), to keep beside
        the catalogue for the next crawl; None when the crawl did not run."""
        return None if self.ledger is None else self.ledger.data(without=self._refused)


Stream = tuple[SourceConfig, ExpandedInput]
# Values dropped, replaced or renamed that a crawl lists one by one (the rest are counted).
MAX_VALUE_NOTES = 20


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
            for entry in expanded.refs or ():  # a streamed table's rows (never None)
                if isinstance(entry, StoreFailure):
                    result.failures.append(entry)
                else:
                    yield Job(source, expanded.root, entry)
        except Exception as exc:  # noqa: BLE001 - the table went away mid-read: the rest is unknown
            result.failures.append(StoreFailure(source.url, INPUT, f"reading stopped: {one_line(exc)}"))


# Takes each Item as it is made; may refuse one by raising `zarr_stac.common.rejection.ItemRejected`
# (that store is then a failure, the run goes on), or later through `CrawlResult.reject`.
Sink = Callable[[pystac.Item], None]
# Takes the JSON of each Item an earlier crawl made, of a store that did not change: it is
# published already (the sink's owner checks that it is still there).
Keep = Callable[[dict], None]
OnProgress = Callable[[Outcome], None]


class Crawl:
    """One crawl: `discover()` the stores, then `run()` them through an executor.

    Nothing grows with the number of stores but the failures, the ids seen (to tell
    duplicates) and one summary per collection, so a crawl's memory stays bounded when
    its sink (a static catalogue, pgstac) writes items as they come.

    With the `previous` crawl's ledger, a store whose fingerprint still holds is not read:
    its Item comes from the ledger, is handed to `keep` (not to the sink) and still counts
    in its collection's extents and summaries.
    """

    def __init__(
        self,
        target: str | MappingConfig,
        storage: StorageOptions | None = None,
        *,
        scale: Scale | None = None,
        executor: Executor | None = None,
        previous: Ledger | None = None,
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
        self.previous = previous
        self._known = KnownFingerprints()
        self._source_digests: dict[int, bytes] = {}
        self._unchanged: dict[tuple[str, str], Job] = {}  # (url, digest) -> job, until its Item is kept
        self._value_notes = self._noted_stores = 0  # values dropped, replaced or renamed; stores with some
        # (collection, item id) that several discovered stores would take -> the store that gets it.
        self._owners: dict[tuple[str, str], str] = {}

    def discover(self) -> CrawlResult:
        """List every store to read (`total`); what went wrong so far is in the result it
        returns: `unusable_sources` and `empty_inputs` (a command stops there), `failures`."""
        if self._jobs is None:
            self._jobs = plan(self.config, self.result, self.scale.workers, self._streams)
            self.total = len(self._jobs) + sum(expanded.count or 0 for _, expanded in self._streams)
            self._owners = _owners_of_shared_ids(self._jobs)
        return self.result

    def placements(self) -> Iterator[tuple[str, str]]:
        """(collection id, item id) of each store discovered (those of tables read row by row
        and those whose path does not fit the layout excepted), before any is read: for a
        publisher that wants to know the Items to come (see `static_catalog.publication`)."""
        self.discover()
        for job in self._jobs or []:
            try:
                placement = placement_of(job)[0]
            except MappingError:
                continue
            yield placement.collection_id, placement.item_id

    def run(
        self,
        sink: Sink | None = None,
        on_progress: OnProgress | None = None,
        *,
        keep: Keep | None = None,
        keep_items: bool = False,
    ) -> CrawlResult:
        """Read every store (discovering them first if not done yet), handing each Item to
        `sink` and each outcome to `on_progress` as soon as it is known, and the Items of
        unchanged stores to `keep` at the end; the result then holds the collections, the
        count catalogued, the failures sorted by URL, the new ledger and, with `keep_items`,
        every Item. The executor it chose is closed on errors and Ctrl-C too."""
        if self._ran:
            raise RuntimeError("a Crawl runs once")
        self._ran = True
        self.discover()
        if self.previous is not None:
            try:
                self._known = self.previous.fingerprints()
            except LedgerError as exc:
                self.previous = None
                self.result.notes.append(f"{exc}: every store is read again (the next run has a new ledger)")
        self.result.ledger = LedgerWriter()
        assert self._jobs is not None and self.total is not None  # set by discover
        executor = self.executor or self.scale.executor(self.total)
        items: list[pystac.Item] = []
        try:
            planned = _drained(self._jobs)  # a job is forgotten once handed out: memory stays flat
            jobs = map(self._with_digest, itertools.chain(planned, stream_jobs(self._streams, self.result)))
            for outcomes in executor.map(batched(jobs, self.scale.batch_size), self.scale.concurrency):
                for outcome in outcomes:
                    if isinstance(outcome, UnchangedStore):
                        self._unchanged[(outcome.job.ref.url, outcome.job.digest)] = outcome.job
                    else:
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
        for item in self._keep_unchanged(keep):
            if keep_items:
                items.append(pystac.Item.from_dict(item, migrate=False))
        self.result.items = sorted(items, key=lambda i: (i.collection_id, i.id))
        self.result.failures.sort(key=lambda f: f.url)
        self.result.collections = [summary.build() for _, summary in sorted(self._summaries.items())]
        if self._value_notes > MAX_VALUE_NOTES:
            self.result.notes.append(
                f"and {self._value_notes - MAX_VALUE_NOTES} more value(s) dropped, replaced or renamed "
                f"({self._noted_stores} store(s) in all)"
            )
        return self.result

    def _with_digest(self, job: Job) -> Job:
        """The job with its digest (see `ledger`), and the fingerprint recorded under it, if any."""
        source = self._source_digests.get(id(job.source))
        if source is None:
            source = self._source_digests[id(job.source)] = source_digest(job.source.model_dump(mode="json"))
        ref = job.ref
        hint = ref.collection.id if ref.collection else None
        # The entry's own options (an intake entry's endpoint, ...): their public part, secrets masked.
        own = ref.storage.model_dump(mode="json") if ref.storage is not None else None
        digest = entry_digest(
            source, [job.root, ref.url, ref.name, ref.kind, ref.zarr_format, hint, ref.properties, own]
        )
        return dataclasses.replace(job, digest=digest, known=self._known.pop(ref.url, digest))

    def _record(self, outcome: CataloguedStore | StoreFailure, sink: Sink | None) -> CataloguedStore | StoreFailure:
        """Hand a catalogued store's Item to `sink` and summarise it into its collection; a
        failure (a duplicate id, an Item the sink refused) is kept."""
        if isinstance(outcome, CataloguedStore):
            item = outcome.item
            assert item.collection_id is not None  # the mapping places every Item in a collection
            refused = self._accept(outcome.url, item.collection_id, item.id, lambda: _hand_on(item, sink))
            if refused is None:
                self._note_values(outcome)
                item_json = item.to_dict(include_self_link=False, transform_hrefs=False)
                summary = self._summary(item.collection_id, outcome.source, outcome.collection_hint, outcome.fields)
                summary.add(item_json, outcome.attrs)
                if outcome.fingerprint is not None and self.result.ledger is not None:
                    self.result.ledger.add(outcome.url, outcome.fingerprint, item_json, dict(outcome.attrs))
                return outcome
            outcome = refused
        self.result.failures.append(outcome)
        return outcome

    def _note_values(self, outcome: CataloguedStore) -> None:
        """The values a store's Item left out or changed, in the crawl's notes: the first
        `MAX_VALUE_NOTES`, then only counted (said once at the end of the run)."""
        for note in outcome.notes:
            self._value_notes += 1
            if self._value_notes <= MAX_VALUE_NOTES:
                self.result.notes.append(f"{outcome.url}: {note}")
        if outcome.notes:
            self._noted_stores += 1

    def _accept(
        self, url: str, collection_id: str, item_id: str, hand_on: Callable[[], ItemRejected | None]
    ) -> StoreFailure | None:
        """The store's failure if its Item's id is taken or the sink refuses it; None once handed on."""
        key = (collection_id, item_id)
        owner = self._owners.get(key)
        if owner is not None and owner != url:
            reason = f"item id {item_id!r} in collection {collection_id!r} belongs to {owner} (the first by URL)"
            return StoreFailure(url, DUPLICATE_ID, reason, collection_id)
        if key in self._seen:
            reason = f"item id {item_id!r} in collection {collection_id!r} is already used by {self._seen[key]}"
            return StoreFailure(url, DUPLICATE_ID, reason, collection_id)
        self._seen[key] = url
        refused = hand_on()
        return None if refused is None else StoreFailure(url, refused.kind, refused.reason, collection_id)

    def _summary(
        self, collection_id: str, source: SourceConfig, hint: CollectionHint | None, fields: Mapping[str, str]
    ) -> CollectionSummary:
        summary = self._summaries.get(collection_id)
        if summary is None:
            config = _with_hint(source.collection, hint)
            summary = self._summaries[collection_id] = CollectionSummary(collection_id, config, fields)
        return summary

    def _keep_unchanged(self, keep: Keep | None) -> Iterator[dict]:
        """The Items of the stores that did not change, from the earlier ledger (read as a
        stream): each handed to `keep`, summarised into its collection, and recorded in the
        new ledger as it was."""
        if not self._unchanged or self.previous is None:  # (unchanged stores are known from a ledger only)
            return
        for entry in self.previous.entries():
            job = self._unchanged.get((entry.url, entry.fingerprint.digest))
            if job is None or job.known != entry.fingerprint:  # (a hand-edited ledger's repeated line)
                continue
            del self._unchanged[(entry.url, entry.fingerprint.digest)]
            item = entry.item
            collection_id, item_id = str(item.get("collection")), str(item.get("id"))  # as the ledger kept them
            refused = self._accept(entry.url, collection_id, item_id, functools.partial(_hand_on, item, keep))
            if refused is not None:
                self.result.failures.append(refused)
                continue
            fields = placement_of(job)[1]
            summary = self._summary(collection_id, job.source, job.ref.collection, fields)
            summary.add(item, entry.attrs)
            if self.result.ledger is not None:
                self.result.ledger.add_line(entry.line)
            self.result.catalogued += 1
            self.result.unchanged += 1
            yield item
        for job in self._unchanged.values():  # never lose a store, whatever the ledger held
            reason = "its entry in the earlier ledger could not be found again; it is read on the next crawl"
            collection_id = placement_of(job)[0].collection_id
            self.result.failures.append(StoreFailure(job.ref.url, READ_ERROR, reason, collection_id))


def _owners_of_shared_ids(jobs: list[Job]) -> dict[tuple[str, str], str]:
    """For each id that two or more discovered stores would take, the store that gets it: the
    first by URL, whichever is read first, so that every run (a rerun reads changed stores
    before it keeps unchanged ones) publishes the same store under it."""
    first: dict[tuple[str, str], str] = {}
    owners: dict[tuple[str, str], str] = {}
    for job in jobs:
        try:
            placement = placement_of(job)[0]
        except MappingError:
            continue
        key, url = (placement.collection_id, placement.item_id), job.ref.url
        earlier = owners.get(key) or first.setdefault(key, url)
        if earlier != url:
            owners[key] = min(earlier, url)
    return owners


def _drained(jobs: list[Job]) -> Iterator[Job]:
    """The jobs in order, each dropped from `jobs` as it is yielded."""
    jobs.reverse()
    while jobs:
        yield jobs.pop()


def _hand_on(item: Any, sink: Callable[[Any], None] | None) -> ItemRejected | None:  # (Item, Sink) or (dict, Keep)
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

    # A catalogue's words are text, the configuration's templates markdown (see `markup`).
    title = config.title or literal(plain_text(hint.title) if hint.title else None)
    description = config.description or literal(markdown_text(hint.description) if hint.description else None)
    return config.model_copy(update={"title": title, "description": description})


def crawl(
    target: str | MappingConfig,
    storage: StorageOptions | None = None,
    *,
    scale: Scale | None = None,
    sink: Sink | None = None,
    on_progress: OnProgress | None = None,
    previous: Ledger | None = None,
    keep: Keep | None = None,
) -> CrawlResult:
    """`Crawl(target, storage, scale=scale, previous=previous).run(...)`, keeping every Item in
    `result.items` (tests, the demo, small catalogues); a command streams with `Crawl` instead."""
    return Crawl(target, storage, scale=scale, previous=previous).run(sink, on_progress, keep=keep, keep_items=True)


def inspect_store(url: str, storage: StorageOptions | None = None) -> CataloguedStore | StoreFailure:
    """Catalogue the single store (or kerchunk reference) at `url`."""
    source = SourceConfig(url=url.rstrip("/"), storage=storage or StorageOptions())  # raises ValidationError
    url = source.url  # its credentials are in `source.storage` now
    outcome = run_job(Job(source, common_root([url]), StoreRef(url=url, kind=kind_of(url))))
    assert not isinstance(outcome, UnchangedStore)  # only a store with an earlier fingerprint can be
    return outcome
