"""What the command line prints: text made safe for a terminal, a crawl's progress and summary,
why a run stops, and its exit status.

Only typer and rich at import time (see `zarr_stac.cli`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape as escape_markup

if TYPE_CHECKING:
    from zarr_stac.loaders.running.crawl import CrawlResult, OnProgress
    from zarr_stac.publish import NothingToPublish

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# Characters that would act on the terminal instead of being shown (escape sequences, bidi
# overrides, invisible format characters): store names and catalogue files are untrusted.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def terminal_safe(text: str) -> str:
    """`text` with every character that could act on the terminal written as its escape."""
    return _TERMINAL_UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def escape(text: str) -> str:
    """`text` as rich prints it literally: markup escaped, terminal controls made visible."""
    return escape_markup(terminal_safe(text))


def shown(text: str) -> str:
    """A URL, or a message quoting URLs, as printed: credentials hidden, markup escaped."""
    from zarr_stac.common.storage import redacted  # (pydantic: not at start-up)

    return escape(redacted(text))


class CrawlProgress:
    """A `zarr_stac.publish.Watcher` on stderr: a spinner while the stores are discovered, a
    progress bar while they are read, then the crawl's notes and its summary."""

    @contextmanager
    def discovering(self, where: str) -> Iterator[None]:
        with err.status(f"discovering stores in {shown(where)}"):
            yield

    @contextmanager
    def reading(self, total: int) -> Iterator[OnProgress]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task(f"reading {total} stores", total=total)
            yield lambda outcome: progress.advance(task)

    def crawled(self, result: CrawlResult) -> None:
        for note in result.notes:
            err.print(f"[yellow]{shown(note)}[/]", highlight=False)
        print_summary(result)


def print_summary(result: CrawlResult) -> None:
    from rich.table import Table

    table = Table(title="crawl summary", show_edge=False)
    table.add_column("outcome")
    table.add_column("stores", justify="right")
    table.add_row("catalogued", str(result.catalogued))
    if result.unchanged:
        table.add_row("  of which unchanged (not re-read)", str(result.unchanged))
    for kind, count in sorted(Counter(f.kind for f in result.failures).items()):
        table.add_row(f"skipped: {kind}", str(count))
    err.print(table)
    for failure in result.failures:
        err.print(f"[yellow]skipped[/] {shown(failure.url)}: {failure.kind}: {shown(failure.reason)}", highlight=False)


def stop(nothing: NothingToPublish) -> typer.Exit:
    """Why a run stopped before anything was published (a source that cannot be read at all is a
    mistake to fix: a wrong path, no credentials), printed; the exit to raise (status 1)."""
    found, where = nothing.found, nothing.where
    unusable = {failure.url for failure in found.unusable_sources}
    for failure in found.unusable_sources:
        err.print(f"[red]cannot read {shown(failure.url)}: {shown(failure.reason)}[/]", highlight=False)
    entries = [url for url, _ in found.empty_inputs if url not in unusable]
    if entries and len(found.failures) > len(unusable):
        print_summary(found)  # why each entry of such a catalogue is not a store
    for url, reason in found.empty_inputs:  # a catalogue none of whose entries is a store
        if url not in unusable:
            err.print(f"[red]{shown(url)} yields no store: {shown(reason)}[/]", highlight=False)
    if not found.unusable_sources and not found.empty_inputs:
        err.print(
            f"[red]no Zarr stores found in {shown(where)}: nothing catalogued, nothing written[/]", highlight=False
        )
    return typer.Exit(1)


def exit_if_failed(result: CrawlResult, strict: bool) -> None:
    """Exit status 1 when the run catalogued nothing (every store failed; a store kept
    unchanged from the last run counts as catalogued) and, with --strict, when any store
    was skipped (an input that yields no store stopped the command before anything was
    written: `stop`)."""
    if not result.catalogued and result.failures:
        err.print(f"[red]nothing catalogued: every store failed ({len(result.failures)} skipped)[/]")
        raise typer.Exit(1)
    if strict and result.failures:
        err.print(f"[red]--strict: {len(result.failures)} store(s) skipped[/]")
        raise typer.Exit(1)


def unreadable(exc: BaseException) -> str:
    """Why a catalogue could not be read, in one line."""
    from zarr_stac.loaders.finding.prefixes import listing_problem

    if isinstance(exc, FileNotFoundError):
        return "no such file, folder or object"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg}, line {exc.lineno})"
    if type(exc).__name__ == "STACTypeError" or "'type' attribute is not set" in str(exc):
        return "not a STAC catalogue, collection or item"
    if type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout"):
        return f"unreachable ({type(exc).__name__})"
    if type(exc).__name__ == "HTTPStatusError":
        return f"the server answered {exc.response.status_code}"  # type: ignore[attr-defined]
    return listing_problem(exc)
