"""A publisher refusing one Item: that store becomes a failure, the run goes on.

A sink (a static publication, a pgstac load) either raises `ItemRejected` from its
`add` for the Item it was handed (the crawl then reports that store), or, where the
refusal comes later (writes and loads go in batches), records a `Rejection` by
collection and item id, which the crawl's result turns into the store's failure
(`loaders.running.crawl.CrawlResult.reject`). Either way the collection counts as not fully
catalogued: nothing is deleted from it, and its earlier Items stay.
"""

from __future__ import annotations

from dataclasses import dataclass

# The failure kinds of publishing (see `loaders.failures` for all kinds).
DUPLICATE_ID = "duplicate-id"  # two stores, one item (or one item path)
RENDER_ERROR = "render-error"  # the Item's document could not be made
WRITE_ERROR = "write-error"  # the destination refused that one object (a name too long, ...)
LOAD_ERROR = "load-error"  # pgstac or PostgreSQL refused that one Item

MAX_REASON = 300  # characters: a reason is one line of a report


class ItemRejected(Exception):
    """Raised by a sink's `add`: this Item cannot be published, the others can."""

    def __init__(self, kind: str, reason: str):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Rejection:
    """An Item a sink refused after its `add` had returned."""

    collection_id: str
    item_id: str
    kind: str
    reason: str


def one_line(exc: BaseException) -> str:
    """An error as one short line of a report (a database's message can quote a whole Item)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
