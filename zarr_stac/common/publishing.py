"""What a publisher is: the one contract the static catalogue and the pgstac load both keep.

A crawl hands a publisher its Items as they are made; the driver (`zarr_stac.publish`) runs
every publisher through the same steps, in this order:

1. `earlier_ledger(sources)`: the ledger the last run over these sources kept, if any (the crawl
   then reads only the stores that changed since);
2. `expect(placements)`: the (collection id, item id) of the Items to come, before they come (a
   hint: a publisher that needs none ignores it, without iterating it);
3. `add(item)` for each Item the crawl made, `keep(item_json)` for each Item of an unchanged store
   (published before: counted as this run's, written again only if it went missing). `add` may
   refuse one Item by raising `ItemRejected`; a refusal that comes later (writes and loads go in
   batches) is in `report.rejected`;
4. `finish(collections, may_delete=...)`: the collections (their extents are known only now), and
   the deletion of what left, only from the collections `may_delete` allows and none with a
   refused Item; it returns `report`;
5. `keep_ledger(sources, data)`: this run's ledger, after `finish` (it vouches for what is published).

A publisher is a context manager: whatever it opened is closed on leaving, on errors too.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import pystac

from .rejection import Rejection
from .stac import MayDelete


class PublicationReport(Protocol):
    """What every publisher's report says, among its own counts."""

    # Items refused after `add` took them (a batch the destination or the database refused
    # in part): not published; the driver turns each into its store's failure.
    rejected: list[Rejection]


Report = TypeVar("Report", bound=PublicationReport, covariant=True)


class Publisher(Protocol[Report]):
    """A place Items are published to (see the module's docstring for the order of the calls)."""

    @property
    def report(self) -> Report:
        """The report in progress (`rejected` grows as batches are written or loaded)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...

    def earlier_ledger(self, sources: str) -> bytes | None:
        """The ledger the last run over `sources` (URLs, space-separated) kept; None: read every store."""
        ...

    def expect(self, placements: Iterable[tuple[str, str]]) -> None:
        """The (collection id, item id) of the Items to come, before they do."""
        ...

    def add(self, item: pystac.Item | dict[str, Any]) -> None:
        """Publish one Item; `ItemRejected` when this one cannot be (the others can)."""
        ...

    def keep(self, item: dict[str, Any]) -> None:
        """An Item published before whose store did not change: this run's too, rewritten only if lost."""
        ...

    def finish(self, collections: Iterable[pystac.Collection], *, may_delete: MayDelete = ...) -> Report:
        """The collections, then the deletions `may_delete` allows; the report."""
        ...

    def keep_ledger(self, sources: str, data: bytes) -> None:
        """Keep this run's ledger for the next run over `sources` (after `finish`)."""
        ...
