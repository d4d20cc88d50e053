"""Crawl: expand inputs, read each store's metadata, map it to STAC.

Stores are read concurrently (each read is dominated by object-store latency).
A store that cannot be catalogued becomes a `StoreFailure` with a failure kind
and a one-line reason; it never stops the others.
"""

from __future__ import annotations

import asyncio
import json
import itertools
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pystac

from .collections import CollectionSummary
from .config import CollectionConfig, MappingConfig, SourceConfig, default_config
from .discover import CollectionHint, DiscoveryError, SourceUnreachable, StoreRef
from .inputs import InputError, common_root, expand_input, iter_entries, kind_of
from .failures import DISCOVERY, DUPLICATE_ID, INPUT, KNOWN_NON_STORES, LAYOUT, MAPPING_ERROR, NOT_FOUND, StoreFailure
from .fetch import NotPrefetchable, Prefetched, prefetch_many
from .mapping import MappingError, json_safe, store_to_item
from .read import StoreReadError, classify, one_line, open_prefetched, open_store
from common.layout import Placement
from common.storage import StorageOptions, bucket_is_missing, bucket_of, protocol_of
from .xpublish import XPUBLISH, expand_server

@dataclass
class CataloguedStore:
    """A store's Item and what collection-level defaults are derived from."""

    item: pystac.Item
    url: str
    source: SourceConfig
    fields: Mapping[str, str]  # path-template fields
    attrs: Mapping[str, Any]  # the dataset's global attributes
    collection_hint: CollectionHint | None = None  # what a catalogue input says of the collection


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
    # Sources that could not be read at all (an unusable input file, a root that
    # cannot be listed): also in `failures`. A command should stop before writing.
    unusable_sources: list[StoreFailure] = field(default_factory=list)
    catalogued: int = 0
    # Catalogue inputs (lists, CSV, ESM, intake) that yielded no store at all, and why.
    empty_inputs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """False when some failure could concern any collection (discovery, input), or when
        a catalogue input gave no store (it is then more likely wrong than empty)."""
        return not self.empty_inputs and not any(f.collection_id is None and f.kind not in (LAYOUT, *KNOWN_NON_STORES) for f in self.failures)

    @property
    def incomplete_collections(self) -> set[str]:
        return {f.collection_id for f in self.failures if f.collection_id is not None}

    def may_delete_from(self, collection_id: str) -> bool:
        return self.complete and collection_id not in self.incomplete_collections

    def items_of(self, collection_id: str) -> list[pystac.Item]:
        return [item for item in self.items if item.collection_id == collection_id]


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
        opened = open_prefetched(prefetched)
    elif prefetched is None or isinstance(prefetched, NotPrefetchable):
        opened = open_store(job.ref, job.source.storage)
    else:
        raise StoreReadError(job.ref.url, classify(prefetched), one_line(prefetched))
    try:
        item = store_to_item(
            opened,
            item_id=placement.item_id,
            collection_id=placement.collection_id,
            source=job.source,
            properties={**fields, **job.ref.properties},
        )
        attrs = json_safe(dict(opened.dataset.attrs))
        return CataloguedStore(item=item, url=job.ref.url, source=job.source, fields=fields, attrs=attrs, collection_hint=job.ref.collection)
    finally:
        opened.dataset.close()


def check_json(stored: CataloguedStore) -> None:
    """Raise MappingError unless the Item (and the attributes collections use) is strict JSON:
    what the writer and the loader get must never fail on one store's values."""
    try:
        json.dumps(stored.item.to_dict(include_self_link=False, transform_hrefs=False), allow_nan=False)
        json.dumps(stored.attrs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MappingError(MAPPING_ERROR, f"the Item is not valid JSON: {one_line(exc)}") from exc


def run_job(job: Job, prefetched: Prefetched | BaseException | None = None) -> CataloguedStore | StoreFailure:
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
    if kind == NOT_FOUND and _bucket_is_missing(job.ref.url, job.source.storage):
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


def plan(config: MappingConfig, result: CrawlResult, workers: int, streams: list | None = None) -> list[Job]:
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


def run_batch(jobs: Sequence[Job], concurrency: int = 64) -> list[CataloguedStore | StoreFailure]:
    """Catalogue a batch of stores: every request at once, then the mapping (CPU).

    A plain function of picklable arguments, so that a process pool or a Dask
    worker runs it exactly as the local loop does.
    """
    prefetched: dict[int, Prefetched | BaseException] = {}
    by_storage: dict[str, list[int]] = defaultdict(list)
    for index, job in enumerate(jobs):
        by_storage[job.source.storage.model_dump_json() + protocol_of(job.ref.url)].append(index)

    async def fetch_all() -> None:
        for indexes in by_storage.values():
            storage = jobs[indexes[0]].source.storage
            results = await prefetch_many([jobs[i].ref for i in indexes], storage, concurrency)
            prefetched.update(zip(indexes, results))

    asyncio.run(fetch_all())
    return [run_job(job, prefetched.get(i)) for i, job in enumerate(jobs)]


def stream_jobs(streams: list, result: CrawlResult) -> Iterator[Job]:
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


def _batches(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    jobs = iter(jobs)
    while batch := list(itertools.islice(jobs, size)):
        yield batch


class Executor:
    """Runs `run_batch` on batches, in order of completion, a bounded number at a time."""

    def map(self, batches: list[list[Job]], concurrency: int) -> Iterator[list[CataloguedStore | StoreFailure]]:
        for batch in batches:
            yield run_batch(batch, concurrency)

    def close(self) -> None:
        pass


class ProcessExecutor(Executor):
    """Batches in worker processes: the mapping is CPU-bound, one process per core."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent holds event-loop threads (fsspec) that fork would copy mid-state.
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        self.workers = workers

    def map(self, batches, concurrency):
        from concurrent.futures import FIRST_COMPLETED, wait

        pending, queue = set(), iter(batches)  # batches may be a stream: never listed whole
        while True:
            while len(pending) < 2 * self.workers and (batch := next(queue, None)) is not None:  # bounded: memory stays flat
                pending.add(self.pool.submit(run_batch, batch, concurrency))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class DaskExecutor(Executor):
    """Batches on a Dask cluster (dask.distributed): the same function, remote workers."""

    def __init__(self, address: str):
        from distributed import Client

        self.client = Client(address)

    def _submit(self, batch, concurrency: int):
        return self.client.submit(run_batch, batch, concurrency, pure=False)

    def map(self, batches, concurrency):
        from distributed import as_completed

        in_flight = 2 * max(1, sum(self.client.nthreads().values()))
        queue = iter(batches)  # batches may be a stream: never listed whole
        futures = as_completed(loop=self.client.loop)  # this client's, not a default one
        for batch in itertools.islice(queue, in_flight):
            futures.add(self._submit(batch, concurrency))
        for future in futures:
            yield future.result()
            future.release()
            if (batch := next(queue, None)) is not None:
                futures.add(self._submit(batch, concurrency))

    def close(self) -> None:
        self.client.close()


class ClusterError(RuntimeError):
    """A Dask Gateway cluster could not be had; the message says why in one line."""


# Where a worker finds the storage secrets withheld from its tasks: {slot}_KEY, {slot}_SECRET.
SECRET_SLOT = "ZARR_STAC_STORAGE_{}"
SECRET_FIELDS = ("key", "secret")
# Credentials botocore reads from the environment (how the CLI takes keys): passed on as they are.
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

SlottedBatch = tuple[list[Job], list[str | None]]


def withhold_secrets(batches: list[list[Job]]) -> tuple[list[SlottedBatch], dict[str, str]]:
    """The batches without their storage secrets, each job with the slot that holds its
    secrets (None: it has none), and the worker environment that fills the slots."""
    environment = {name: os.environ[name] for name in CREDENTIAL_VARIABLES if name in os.environ}
    slots: dict[tuple[str | None, ...], str] = {}
    stripped: list[SlottedBatch] = []
    for batch in batches:
        jobs, names = [], []
        for job in batch:
            storage = job.source.storage
            values = tuple(None if (v := getattr(storage, f)) is None else v.get_secret_value() for f in SECRET_FIELDS)
            if values == (None,) * len(SECRET_FIELDS):
                jobs.append(job)
                names.append(None)
                continue
            if values not in slots:
                slots[values] = slot = SECRET_SLOT.format(len(slots))
                environment.update({f"{slot}_{f.upper()}": v for f, v in zip(SECRET_FIELDS, values) if v is not None})
            blank = storage.model_copy(update=dict.fromkeys(SECRET_FIELDS))
            jobs.append(Job(job.source.model_copy(update={"storage": blank}), job.root, job.ref))
            names.append(slots[values])
        stripped.append((jobs, names))
    return stripped, environment


def run_batch_with_secrets(
    jobs: list[Job], slots: list[str | None], concurrency: int
) -> list[CataloguedStore | StoreFailure]:
    """`run_batch` on a gateway worker, the storage secrets taken from its environment."""
    from pydantic import SecretStr

    restored = []
    for job, slot in zip(jobs, slots):
        if slot is not None:
            names = {f: f"{slot}_{f.upper()}" for f in SECRET_FIELDS}
            found = {f: SecretStr(os.environ[name]) for f, name in names.items() if name in os.environ}
            storage = job.source.storage.model_copy(update=found)
            job = Job(job.source.model_copy(update={"storage": storage}), job.root, job.ref)
        restored.append(job)
    return run_batch(restored, concurrency)


class GatewayExecutor(DaskExecutor):
    """Batches on a cluster of `workers` that a Dask Gateway creates for this crawl.

    Address, proxy address and authentication not given come from dask's configuration,
    as JupyterHub/Pangeo hubs set them: `DASK_GATEWAY__ADDRESS`, `DASK_GATEWAY__AUTH__TYPE`
    (`jupyterhub` with `JUPYTERHUB_API_TOKEN`; `basic` with
    `DASK_GATEWAY__AUTH__KWARGS__USERNAME`/`__PASSWORD`). Storage secrets reach the workers
    through the cluster's `environment` option, never through tasks. The client speaks TLS
    to the scheduler with the certificates the gateway issues for the cluster. The cluster
    is created when the crawl starts and shut down by `close`, which callers reach on
    errors and Ctrl-C too (and dask-gateway's exit hook, if the process dies otherwise).
    """

    start_timeout = 300.0  # seconds for the workers to join

    def __init__(self, address: str | None, workers: int):
        self.address = address
        self.workers = workers
        self.cluster = self.client = None

    def _start(self, environment: dict[str, str]) -> None:
        from dask_gateway import GatewayCluster

        # The cluster's own Gateway client only: closing a second one sharing its event
        # loop makes dask-gateway 2026.3 print a traceback when it is garbage-collected.
        overrides = {"environment": environment} if environment else {}
        try:
            self.cluster = GatewayCluster(self.address, shutdown_on_close=True, **overrides)
            self.cluster.scale(self.workers)
            self.client = self.cluster.get_client(set_as_default=False)
            self.client.wait_for_workers(self.workers, timeout=self.start_timeout)
        except Exception as exc:  # noqa: BLE001 - refused, unauthorised, timed out: one line, not a traceback
            self.close()
            where = self.address or "dask config gateway.address"
            hint = ""
            if environment and "environment" in str(exc):
                hint = " (the gateway must offer an 'environment' cluster option for the storage credentials)"
            raise ClusterError(f"Dask Gateway at {where}: {one_line(exc)}{hint}") from None

    def _submit(self, batch: SlottedBatch, concurrency: int):
        jobs, slots = batch
        return self.client.submit(run_batch_with_secrets, jobs, slots, concurrency, pure=False)

    def map(self, batches, concurrency):
        stripped, environment = withhold_secrets(list(batches))
        if self.client is None:
            self._start(environment)
        return super().map(stripped, concurrency)

    def close(self) -> None:
        gateway = getattr(self.cluster, "gateway", None)
        for part in (self.client, self.cluster):
            if part is not None:
                try:
                    part.close()  # the cluster's close shuts it down (shutdown_on_close)
                except Exception:  # noqa: BLE001 - the cluster must be reached even if the client failed
                    pass
        if gateway is not None:
            # dask-gateway 2026.3: Gateway.close is not idempotent and __del__ calls it again,
            # printing a traceback ("loop is not running") when the client is collected.
            gateway.close = lambda: None
        self.cluster = self.client = None


def make_executor(
    processes: int | None = None,
    dask_scheduler: str | None = None,
    dask_gateway: str | None = None,
    gateway_workers: int = 2,
) -> Executor:
    """`dask_gateway`: the gateway's address, or "config" for dask's `gateway.address`."""
    if dask_gateway:
        return GatewayExecutor(None if dask_gateway == "config" else dask_gateway, gateway_workers)
    if dask_scheduler:
        return DaskExecutor(dask_scheduler)
    if processes and processes > 1:
        return ProcessExecutor(processes)
    return Executor()


class Crawl:
    """A crawl in progress: iterate it for each store's outcome, as soon as it is known.

    Nothing grows with the number of stores but the failures and one summary per
    collection, so a crawl of any size runs in constant memory when its consumer
    (a static catalogue, pgstac) writes items as they come.
    """

    def __init__(
        self,
        target: str | MappingConfig,
        storage: StorageOptions | None = None,
        *,
        workers: int = 16,
        concurrency: int = 64,
        batch_size: int = 256,
        executor: Executor | None = None,
    ):
        self.config = target if isinstance(target, MappingConfig) else default_config(target, storage)
        self.result = CrawlResult(config=self.config)
        self.streams: list = []  # tables read row by row as the crawl goes
        self.jobs = plan(self.config, self.result, workers, self.streams)
        # Every store to read: the planned jobs and the streamed tables' rows.
        self.total = len(self.jobs) + sum(expanded.count for _, expanded in self.streams)
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.executor = executor or Executor()
        self.summaries: dict[str, CollectionSummary] = {}
        self._seen: dict[tuple[str, str], str] = {}

    def __iter__(self) -> Iterator[CataloguedStore | StoreFailure]:
        jobs = itertools.chain(self.jobs, stream_jobs(self.streams, self.result))
        for outcomes in self.executor.map(_batches(jobs, self.batch_size), self.concurrency):
            for outcome in outcomes:
                yield self._record(outcome)

    def _record(self, outcome: CataloguedStore | StoreFailure) -> CataloguedStore | StoreFailure:
        if isinstance(outcome, CataloguedStore):
            item = outcome.item
            key = (item.collection_id, item.id)
            url = outcome.url
            if key in self._seen:
                outcome = StoreFailure(url, DUPLICATE_ID, f"item id {key[1]!r} in collection {key[0]!r} is already used by {self._seen[key]}", key[0])
            else:
                self._seen[key] = url
                summary = self.summaries.get(item.collection_id)
                if summary is None:
                    config = _with_hint(outcome.source.collection, outcome.collection_hint)
                    summary = self.summaries[item.collection_id] = CollectionSummary(item.collection_id, config, outcome.fields)
                summary.add(item, outcome.attrs)
                return outcome
        self.result.failures.append(outcome)
        return outcome

    def collections(self) -> list[pystac.Collection]:
        """The collections of everything catalogued so far (call after iterating)."""
        return [summary.build() for _, summary in sorted(self.summaries.items())]


def _with_hint(config: CollectionConfig, hint: CollectionHint | None) -> CollectionConfig:
    """The configured collection fields, completed with what a catalogue input says."""
    if hint is None or config.id:  # a configured collection id groups stores its own way
        return config

    def literal(text: str | None) -> str | None:  # config fields are templates: keep braces
        return text.replace("{", "{{").replace("}", "}}") if text else None

    return config.model_copy(update={"title": config.title or literal(hint.title), "description": config.description or literal(hint.description)})


def crawl(
    target: str | MappingConfig,
    storage: StorageOptions | None = None,
    *,
    workers: int = 16,
    concurrency: int = 64,
    processes: int | None = None,
    dask_scheduler: str | None = None,
    dask_gateway: str | None = None,
    gateway_workers: int = 2,
    batch_size: int = 256,
    on_store: Callable[[StoreRef, pystac.Item | StoreFailure], None] | None = None,
    on_discovered: Callable[[list[StoreRef]], None] | None = None,
) -> CrawlResult:
    """Catalogue every store of `target` (a URL/input file, or a mapping configuration),
    keeping every Item in memory; see `Crawl` to stream them instead."""
    executor = make_executor(processes, dask_scheduler, dask_gateway, gateway_workers)
    try:
        running = Crawl(target, storage, workers=workers, concurrency=concurrency, batch_size=batch_size, executor=executor)
        if on_discovered:
            on_discovered([job.ref for job in running.jobs])
        items = []
        for outcome in running:
            if isinstance(outcome, CataloguedStore):
                items.append(outcome.item)
            if on_store:
                on_store(StoreRef(outcome.url), outcome.item if isinstance(outcome, CataloguedStore) else outcome)
    finally:
        executor.close()
    result = running.result
    result.items = sorted(items, key=lambda i: (i.collection_id, i.id))
    result.catalogued = len(result.items)
    result.failures.sort(key=lambda f: f.url)
    result.collections = running.collections()
    return result


def inspect_store(url: str, storage: StorageOptions | None = None) -> CataloguedStore | StoreFailure:
    """Catalogue the single store (or kerchunk reference) at `url`."""
    url = url.rstrip("/")
    source = SourceConfig(url=url, storage=storage or StorageOptions())
    return run_job(Job(source, common_root([url]), StoreRef(url=url, kind=kind_of(url))))
