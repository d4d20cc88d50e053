"""Turn an input into the stores to catalogue.

An input is, by its name:

- `*.txt` / `*.lst`: one store URL per line (blank lines and `#` comments skipped);
- `*.csv`, `*.csv.gz`: a table with a `zstore` column (or the column the source's
  `catalogue.asset_column` names), as Pangeo's `cmip6-zarr-consolidated-stores.csv`,
  or an intake-esm table's `path` and `format` columns (netcdf rows reported, not read);
  the other columns become item properties (see `esm`);
- `*.json`: an intake-esm collection (told by its content: `esmcat_version`, or
  `assets` with `catalog_file`/`catalog_dict`; see `esm`), or else a kerchunk
  reference file, catalogued as one virtual Zarr store;
- `*.yaml` / `*.yml`: an intake catalogue, nested and templated entries included
  (see `intake`);
- anything else: a prefix or folder crawled for Zarr stores (see `discover`).

List entries ending in `.json` are kerchunk references too. Stores from explicit
inputs are placed relative to the longest path prefix they share. No entry of a
catalogue is dropped silently: one that yields no store is a StoreFailure.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from zarr_stac.common.storage import StorageOptions, public_url, strip_url

from ..config import CatalogueConfig
from ..failures import INPUT, StoreFailure
from ..limits import INPUT_SETTING, TooLarge, limit_bytes, read_bounded
from ..vocabulary import KERCHUNK, ZARR, CatalogueError, ExpandedInput, InputError, StoreRef, entry_ref
from . import esm, intake
from .esm import looks_like_esm, read_head
from .intake import catalogue_dir
from .prefixes import discover_stores, listing_problem
from .references import reference_kind  # *.json and *.parq references

LIST_SUFFIXES = (".txt", ".lst")
CSV_SUFFIXES = (".csv", ".csv.gz")
KERCHUNK_SUFFIXES = (".json",)
INTAKE_SUFFIXES = (".yaml", ".yml")


class _Counted:
    """Counts the items of an iterable as they pass."""

    def __init__(self, items: Iterable[str]):
        self.items, self.count = items, 0

    def __iter__(self) -> Iterator[str]:
        for item in self.items:
            self.count += 1
            yield item


def _streamed(url: str, rows: Any) -> ExpandedInput:
    """A table's input: one pass over its store URLs for their root (and their count)."""
    urls = _Counted(rows.urls())
    root = _from_catalogue(url, lambda: common_root(urls, default=catalogue_dir(url)))
    return ExpandedInput(root=root, refs=rows, streamed=True, count=urls.count)


def kind_of(url: str) -> str:
    return reference_kind(url) or ZARR


def common_root(urls: Iterable[str], default: str = "") -> str:
    """The longest run of whole path segments shared by `urls` (never the store itself).

    One pass, constant memory: `urls` may be a stream of any length. With no URL
    at all, `default`.
    """
    shared: list[str] | None = None
    shortest = 0
    first = ""
    for url in urls:
        parts = strip_url(url).split("/")
        if shared is None:
            shared, shortest, first = parts, len(parts), url
            continue
        shortest = min(shortest, len(parts))
        common = 0
        for a, b in zip(shared, parts):
            if a != b:
                break
            common += 1
        del shared[common:]
    if shared is None:
        return default
    if len(shared) == shortest:
        shared = shared[:-1]  # one URL is the shared prefix itself: use its parent
    minimum = 3 if "://" in first else 2  # the bucket, host or first folder
    if len(shared) < minimum:
        return ""  # nothing in common: paths are placed whole (bucket first)
    return "/".join(shared)


def _read_text(url: str, storage: StorageOptions) -> str:
    """An input file's text, read at most `storage.max_input_mb` far."""
    try:
        with storage.filesystem(url).open(url, "rb") as handle:
            return read_bounded(handle, limit_bytes(storage.max_input_mb), "it", INPUT_SETTING).decode("utf-8")
    except TooLarge as exc:
        raise InputError(f"{url}: refused: {exc}") from None
    except FileNotFoundError:
        raise InputError(f"{url}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{url}: not a text file") from None
    except IsADirectoryError:
        raise InputError(f"{url}: is a folder, not an input file") from None
    except Exception as exc:  # noqa: BLE001 - no credentials, access denied, unreachable: one line
        raise InputError(f"{url}: cannot be read: {listing_problem(exc)}") from None


def _from_list(url: str, text: str, storage: StorageOptions) -> list[StoreRef | StoreFailure]:
    refs: list[StoreRef | StoreFailure] = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            try:
                refs.append(entry_ref(entry, storage, kind=kind_of(public_url(entry))))
            except ValueError as exc:
                refs.append(StoreFailure(public_url(entry), INPUT, f"listed in {url}: {exc}"))
    if not refs:
        raise InputError(f"{url}: lists no store URLs")
    return refs


def _from_catalogue(url: str, read: Callable[[], Any]) -> Any:
    """Run a catalogue reader, its problems with the catalogue itself as InputError."""
    try:
        return read()
    except CatalogueError as exc:
        raise InputError(str(exc)) from None


def expand_input(
    url: str, storage: StorageOptions | None = None, catalogue: CatalogueConfig | None = None
) -> ExpandedInput:
    """What to catalogue for `url`; raises `InputError` for unusable input files.

    The entries of catalogue inputs are streamed (see `iter_entries`): each is a
    StoreRef or, for an entry that yields no store, a StoreFailure saying why.
    """
    storage = storage or StorageOptions()
    catalogue = catalogue or CatalogueConfig()
    url = strip_url(url)
    name = posixpath.basename(url).lower()
    if name.endswith(KERCHUNK_SUFFIXES):
        if _from_catalogue(url, lambda: _is_esm(url, storage)):
            return _streamed(url, _from_catalogue(url, lambda: esm.read_esm(url, storage, catalogue)))
        return ExpandedInput(root=posixpath.dirname(url), refs=[StoreRef(url=url, kind=KERCHUNK)])
    if name.endswith(LIST_SUFFIXES):
        refs: Iterable[StoreRef | StoreFailure] = _from_list(url, _read_text(url, storage), storage)
    elif name.endswith(CSV_SUFFIXES):
        return _streamed(url, _from_catalogue(url, lambda: esm.read_csv(url, storage, catalogue)))
    elif name.endswith(INTAKE_SUFFIXES):
        text = _read_text(url, storage)
        refs = list(_from_catalogue(url, lambda: list(intake.read_intake(url, text, storage, catalogue))))
    else:
        return ExpandedInput(root=url, refs=None)
    urls = (r.url for r in refs if isinstance(r, StoreRef))
    return ExpandedInput(root=common_root(urls, default=catalogue_dir(url)), refs=refs)


def _is_esm(url: str, storage: StorageOptions) -> bool:
    try:
        return looks_like_esm(read_head(url, storage))
    except FileNotFoundError:
        raise InputError(f"{url}: no such file") from None


def iter_entries(
    expanded: ExpandedInput, storage: StorageOptions, workers: int = 16
) -> Iterator[StoreRef | StoreFailure]:
    """The stores of an input, and a StoreFailure for each catalogue entry that yields none."""
    if expanded.refs is not None:
        yield from expanded.refs
    else:
        yield from discover_stores(expanded.root, storage, workers=workers)
