"""Where batches of stores are catalogued: this process, worker processes, a Dask cluster
or a cluster a Dask Gateway creates for the crawl.

Every executor runs `jobs.run_batch` on the batches it is given, yields the outcomes of
each batch as soon as it is done, and keeps a bounded number of batches in flight (the
batches may be a stream: they are never listed whole, except by the Gateway executor,
which must know every storage secret before its cluster starts). Constructors only keep
their settings: pools, clients and clusters are made when `map` starts and released by
`close`, which callers reach on errors and Ctrl-C too.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from zarr_stac.common.library_fixes.dask_gateway import closed_for_good
from zarr_stac.common.storage import SECRET_FIELDS, StorageOptions

from ..reading.errors import one_line
from .jobs import Job, Outcome, run_batch

if TYPE_CHECKING:  # imported where used: a crawl without a cluster never loads them
    from concurrent.futures import Future, ProcessPoolExecutor

    from dask_gateway import GatewayCluster
    from distributed import Client


class Executor:
    """Runs `run_batch` on batches, in order of completion, a bounded number at a time."""

    def map(self, batches: Iterable[list[Job]], concurrency: int) -> Iterator[list[Outcome]]:
        for batch in batches:
            yield run_batch(batch, concurrency)

    def close(self) -> None:
        pass


class ProcessExecutor(Executor):
    """Batches in worker processes: the mapping is CPU-bound, one process per core."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def map(self, batches: Iterable[list[Job]], concurrency: int) -> Iterator[list[Outcome]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if self.pool is None:
            # spawn, not fork: the parent holds event-loop threads (fsspec) that fork would copy mid-state.
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        pending: set[Future] = set()
        queue = iter(batches)  # batches may be a stream: never listed whole
        while True:
            # Bounded: memory stays flat.
            while len(pending) < 2 * self.workers and (batch := next(queue, None)) is not None:
                pending.add(self.pool.submit(run_batch, batch, concurrency))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


class DaskExecutor(Executor):
    """Batches on a Dask cluster (dask.distributed): the same function, remote workers."""

    def __init__(self, address: str | None):  # None: a gateway's address from dask's configuration
        self.address = address
        self.client: Client | None = None

    def _connect(self) -> None:
        from distributed import Client

        self.client = Client(self.address)

    def _submit(self, batch: Any, concurrency: int) -> Any:
        assert self.client is not None  # connected by map
        return self.client.submit(run_batch, batch, concurrency, pure=False)

    def map(self, batches: Iterable[Any], concurrency: int) -> Iterator[list[Outcome]]:  # a gateway's: SlottedBatch
        from distributed import as_completed

        if self.client is None:
            self._connect()
        assert self.client is not None
        in_flight = 2 * max(1, sum(self.client.nthreads().values()))
        queue = iter(batches)  # batches may be a stream: never listed whole
        futures = as_completed(loop=self.client.loop)  # this client's, not a default one
        for batch in itertools.islice(queue, in_flight):
            futures.add(self._submit(batch, concurrency))
        for future in futures:
            yield future.result()
            future.release()
            if (following := next(queue, None)) is not None:
                futures.add(self._submit(following, concurrency))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class ClusterError(RuntimeError):
    """A Dask Gateway cluster could not be had; the message says why in one line."""


# Where a worker finds the storage secrets withheld from its tasks: {slot}_KEY, {slot}_SECRET, ...
SECRET_SLOT = "ZARR_STAC_STORAGE_{}"
# Credentials botocore reads from the environment (how the CLI takes keys): passed on as they are.
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# Each job with the slots of its source's secrets and of its own (a catalogue entry's, a URL's).
SlottedBatch = tuple[list[Job], list[tuple[str | None, str | None]]]


def withhold_secrets(batches: list[list[Job]]) -> tuple[list[SlottedBatch], dict[str, str]]:
    """The batches without their storage secrets (the source's and the store's own), each job
    with the slots that hold them (None: none), and the worker environment that fills the slots."""
    environment = {name: os.environ[name] for name in CREDENTIAL_VARIABLES if name in os.environ}
    slots: dict[tuple[str | None, ...], str] = {}

    def withhold(storage: StorageOptions | None) -> tuple[StorageOptions | None, str | None]:
        if storage is None:
            return None, None
        values = tuple(None if (v := getattr(storage, f)) is None else v.get_secret_value() for f in SECRET_FIELDS)
        if values == (None,) * len(SECRET_FIELDS):
            return storage, None
        if values not in slots:
            slots[values] = slot = SECRET_SLOT.format(len(slots))
            environment.update(
                {f"{slot}_{f.upper()}": v for f, v in zip(SECRET_FIELDS, values, strict=True) if v is not None}
            )
        return storage.model_copy(update=dict.fromkeys(SECRET_FIELDS)), slots[values]

    stripped: list[SlottedBatch] = []
    for batch in batches:
        jobs, names = [], []
        for job in batch:
            source_storage, source_slot = withhold(job.source.storage)
            own_storage, own_slot = withhold(job.ref.storage)
            if source_slot is not None:
                job = replace(job, source=job.source.model_copy(update={"storage": source_storage}))
            if own_slot is not None:
                job = replace(job, ref=replace(job.ref, storage=own_storage))
            jobs.append(job)
            names.append((source_slot, own_slot))
        stripped.append((jobs, names))
    return stripped, environment


def run_batch_with_secrets(
    jobs: list[Job], slots: list[tuple[str | None, str | None]], concurrency: int
) -> list[Outcome]:
    """`run_batch` on a gateway worker, the storage secrets taken from its environment."""
    from pydantic import SecretStr

    def restore(storage: StorageOptions | None, slot: str) -> StorageOptions:
        assert storage is not None  # a slot is only ever given to storage that held a secret
        names = {f: f"{slot}_{f.upper()}" for f in SECRET_FIELDS}
        return storage.model_copy(update={f: SecretStr(os.environ[n]) for f, n in names.items() if n in os.environ})

    restored = []
    for job, (source_slot, own_slot) in zip(jobs, slots, strict=True):
        if source_slot is not None:
            job = replace(
                job, source=job.source.model_copy(update={"storage": restore(job.source.storage, source_slot)})
            )
        if own_slot is not None:
            job = replace(job, ref=replace(job.ref, storage=restore(job.ref.storage, own_slot)))
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
        super().__init__(address)
        self.workers = workers
        self.cluster: GatewayCluster | None = None

    def _start(self, environment: dict[str, str]) -> None:
        from dask_gateway import GatewayCluster

        # The cluster's own Gateway client only: closing a second one sharing its event
        # loop makes dask-gateway 2026.3 print a traceback when it is garbage-collected.
        overrides = {"environment": environment} if environment else {}
        try:
            self.cluster = cluster = GatewayCluster(self.address, shutdown_on_close=True, **overrides)
            cluster.scale(self.workers)
            self.client = client = cluster.get_client(set_as_default=False)
            client.wait_for_workers(self.workers, timeout=self.start_timeout)
        except Exception as exc:  # noqa: BLE001 - refused, unauthorised, timed out: one line, not a traceback
            self.close()
            where = self.address or "dask config gateway.address"
            hint = ""
            if environment and "environment" in str(exc):
                hint = " (the gateway must offer an 'environment' cluster option for the storage credentials)"
            raise ClusterError(f"Dask Gateway at {where}: {one_line(exc)}{hint}") from None

    def _submit(self, batch: SlottedBatch, concurrency: int):
        jobs, slots = batch
        assert self.client is not None  # started by map
        return self.client.submit(run_batch_with_secrets, jobs, slots, concurrency, pure=False)

    def map(self, batches: Iterable[list[Job]], concurrency: int) -> Iterator[list[Outcome]]:
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
            closed_for_good(gateway)
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
