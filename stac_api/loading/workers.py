"""Loads that run in parallel, each on its own pgstac connection.

Collections are independent partitions: several are loaded at once, each through its
own connection (the work happens in PostgreSQL, not here). The same connections
build the indexes that registering queryables queues (`queryables.queued_by_partition`).

A batch is one transaction: one Item that pgstac or PostgreSQL refuses (`is_item_error`)
fails all of it. Its Items are then loaded again in halves, down to the Items that fail
alone, which become `rejected`; the rest load. A connection lost, a role without the
right, anything else still fails the load.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import TypeVar

import orjson
import psycopg
from plpygis.exceptions import PlpygisError
from psycopg import Connection
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods

from zarr_stac.common.batching import batched
from zarr_stac.common.rejection import LOAD_ERROR, Rejection, one_line

from ..db import open_pgstac

T = TypeVar("T")


class Workers:
    """`connections` pgstac connections and a thread for each; `open` before use, then `close`.

    At most two loads per connection are queued: the rows of a load are in memory until
    it runs, so memory stays flat however fast items come.
    """

    def __init__(self, dsn: str, *, connections: int = 4, batch_size: int = 5000):
        self.dsn = dsn
        self.connections = connections
        self.batch_size = batch_size
        self.items_loaded = 0
        self.rejected: list[Rejection] = []  # Items refused alone (see the module's docstring)
        self._count_lock = threading.Lock()
        self._databases: list[PgstacDB] = []
        self._loaders: queue.Queue[Loader] = queue.Queue()
        self._threads: ThreadPoolExecutor | None = None
        self._loading: list[Future] = []
        self._resources = ExitStack()

    def open(self) -> None:
        """Open the pools and start the threads; on failure, whatever opened is closed again."""
        with ExitStack() as stack:
            self._databases = [stack.enter_context(open_pgstac(self.dsn)) for _ in range(self.connections)]
            for database in self._databases:
                self._loaders.put(Loader(db=database))
            self._threads = ThreadPoolExecutor(max_workers=self.connections, thread_name_prefix="pgstac-load")
            # Closed first (a stack unwinds backwards): running loads end before their pools do.
            stack.callback(self._threads.shutdown, wait=True, cancel_futures=True)
            self._resources = stack.pop_all()

    def close(self) -> None:
        """Stop the threads (queued loads are dropped) and close every pool, whatever raises."""
        self._resources.close()

    def load(self, rows: list[bytes]) -> None:
        """Upsert the rows of one collection (its row must exist) in the background."""
        assert self._threads is not None, "Workers.open() first"
        # Finished loads are dropped; a failed one fails this call, with its error.
        self._loading = [future for future in self._loading if not future.done() or future.result() is None]
        while len(self._loading) >= 2 * self.connections:
            self._loading.pop(0).result()
        self._loading.append(self._threads.submit(self._load_rows, rows))

    def wait(self) -> None:
        """Until every load has run; the first that failed fails this, with its error."""
        loading, self._loading = self._loading, []
        for future in loading:
            future.result()

    def on_each_connection(self, work: Callable[[Connection, T], object], shares: list[T]) -> None:
        """`work(connection, share)` for share n on connection n, all at once (one share per connection)."""
        assert self._threads is not None, "Workers.open() first"
        runs = [
            self._threads.submit(work, db.connect(), share) for db, share in zip(self._databases, shares, strict=True)
        ]
        for run in runs:
            run.result()

    def _load_rows(self, rows: list[bytes]) -> None:
        loader = self._loaders.get()
        try:
            for batch in batched(rows, self.batch_size):
                self._load_batch(loader, batch)
        finally:
            self._loaders.put(loader)

    def _load_batch(self, loader: Loader, rows: list[bytes]) -> None:
        """One transaction; if an Item's data fails it, each half again, down to that Item."""
        try:
            loader.load_items((orjson.loads(row) for row in rows), insert_mode=Methods.upsert)
        except Exception as exc:
            if not is_item_error(exc):
                raise
            if len(rows) == 1:
                item = orjson.loads(rows[0])
                with self._count_lock:
                    self.rejected.append(Rejection(item["collection"], item["id"], LOAD_ERROR, one_line(exc)))
                return
            half = len(rows) // 2
            self._load_batch(loader, rows[:half])
            self._load_batch(loader, rows[half:])
            return
        with self._count_lock:
            self.items_loaded += len(rows)


def is_item_error(exc: BaseException) -> bool:
    """Whether a load failed on what an Item holds, not on the database: PostgreSQL's data
    and integrity errors (a value out of range, text it cannot store), and what pypgstac
    (a bare Exception: "Invalid datetime", "start_datetime must be < end_datetime") or its
    geometry library raise on reading an Item. A connection lost (OperationalError), a
    missing right or table (ProgrammingError) and the rest stop the load."""
    if isinstance(exc, psycopg.Error):
        return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
    return type(exc) is Exception or isinstance(exc, PlpygisError | ValueError | TypeError | KeyError)
