"""One run from the sources to a publisher: what `build`, `load` and the demo all run.

    earlier ledger -> discover -> (stop: nothing usable) -> expect -> run(sink=add, keep=keep)
    -> finish -> refused Items become their stores' failures -> ledger kept

The publisher is any `zarr_stac.common.publishing.Publisher` (a static catalogue's
`Publication`, pgstac's `Ingest`); what a person sees of the run (a spinner and a progress
bar, the demo's steps, nothing) is a `Watcher`. Nothing here prints or exits: the callers
say what went wrong in their own words (`NothingToPublish`, `ClusterError`, the
publisher's own errors pass through).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Generic, Protocol

from zarr_stac.common.publishing import Publisher, Report
from zarr_stac.common.stac import delete_nothing
from zarr_stac.loaders.config import MappingConfig
from zarr_stac.loaders.running.crawl import Crawl, CrawlResult, OnProgress, Scale
from zarr_stac.loaders.running.ledger import Ledger


class Watcher(Protocol):
    """What a run shows while it goes."""

    def discovering(self, where: str) -> AbstractContextManager[object]:
        """While the stores of `where` (the sources' URLs) are listed."""
        ...

    def reading(self, total: int) -> AbstractContextManager[OnProgress]:
        """While `total` stores are read: the callable is told each store's outcome."""
        ...

    def crawled(self, result: CrawlResult) -> None:
        """The crawl is over and the publisher has had its say (its refusals are failures now);
        called when `finish` fails too."""
        ...


class Unwatched:
    """A run nobody watches (tests, scripts)."""

    def discovering(self, where: str) -> AbstractContextManager[object]:
        return nullcontext()

    @contextmanager
    def reading(self, total: int) -> Iterator[OnProgress]:
        yield lambda outcome: None

    def crawled(self, result: CrawlResult) -> None:
        pass


class NothingToPublish(Exception):
    """Discovery found a source that cannot be read at all, an input that yields no store, or no
    store anywhere: a mistake to fix, not a partial crawl. Nothing was published."""

    def __init__(self, found: CrawlResult, where: str):
        super().__init__(f"nothing to publish from {where}")
        self.found = found
        self.where = where


@dataclass
class Published(Generic[Report]):
    result: CrawlResult  # what the crawl catalogued and what failed (refused Items included)
    report: Report  # what the publisher did


def ledger_key(config: MappingConfig) -> str:
    """The set of sources a ledger is kept for (pgstac keeps one per set)."""
    return " ".join(sorted(source.url for source in config.sources))


def publish(
    publisher: Publisher[Report],
    config: MappingConfig,
    scale: Scale | None = None,
    *,
    prune: bool = False,
    full: bool = False,
    watcher: Watcher | None = None,
) -> Published[Report]:
    """Crawl `config`'s sources into `publisher` (entered here, and closed whatever happens).

    `prune`: delete what is gone from the collections whose stores were all read without error
    (else nothing is deleted); `full`: read every store, whatever the earlier ledger says."""
    watcher = watcher or Unwatched()
    key = ledger_key(config)
    with publisher:
        earlier = None if full else publisher.earlier_ledger(key)
        running = Crawl(config, scale=scale, previous=Ledger(earlier) if earlier is not None else None)
        where = ", ".join(source.url for source in config.sources)
        with watcher.discovering(where):
            found = running.discover()
        if found.unusable_sources or found.empty_inputs or not running.total:
            raise NothingToPublish(found, where)
        publisher.expect(running.placements())
        with watcher.reading(running.total) as on_progress:
            result = running.run(publisher.add, on_progress, keep=publisher.keep)
        try:
            report = publisher.finish(result.collections, may_delete=result.may_delete if prune else delete_nothing)
        finally:  # Items refused in a batch are their stores' failures
            result.reject(publisher.report.rejected)
            watcher.crawled(result)
        ledger = result.ledger_data()
        if ledger is not None:  # (None only for a crawl that did not run)
            publisher.keep_ledger(key, ledger)
    return Published(result, report)
