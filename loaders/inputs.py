"""Turn an input into the stores to catalogue.

An input is, by its name:

- `*.txt` / `*.lst`: one store URL per line (blank lines and `#` comments skipped);
- `*.csv`: a table with a `zstore` column, as Pangeo's
  `cmip6-zarr-consolidated-stores.csv`; the other columns become item properties;
- `*.json`: a kerchunk reference file, catalogued as one virtual Zarr store;
- `*.yaml` / `*.yml`: an intake catalogue whose zarr (or xarray-with-zarr) sources
  are imported, named after their entries, with their metadata as properties;
- anything else: a prefix or folder crawled for Zarr stores (see `discover`).

List entries ending in `.json` are kerchunk references too. Stores from explicit
inputs are placed relative to the longest path prefix they share.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from .discover import KERCHUNK, ZARR, StoreRef, discover_stores, listing_problem
from .storage import StorageOptions, strip_url

LIST_SUFFIXES = (".txt", ".lst")
CSV_SUFFIXES = (".csv",)
KERCHUNK_SUFFIXES = (".json",)
INTAKE_SUFFIXES = (".yaml", ".yml")
ZARR_INTAKE_DRIVERS = {"zarr", "intake_xarray.xzarr.ZarrSource", "intake_xarray.ZarrSource", "xarray_zarr"}
XARRAY_INTAKE_DRIVERS = {"xarray", "intake_xarray.xarray.XArraySource", "intake_xarray.NetCDFSource", "netcdf"}


class InputError(ValueError):
    """An input file that cannot be used; the message names it and says why."""


@dataclass
class ExpandedInput:
    """The stores of one input and the root their paths are relative to."""

    root: str
    refs: list[StoreRef] | None  # None: discover below `root`


def kind_of(url: str) -> str:
    from .references import reference_kind  # *.json and *.parq references

    return reference_kind(url) or ZARR


def common_root(urls: list[str]) -> str:
    """The longest run of whole path segments shared by `urls` (never the store itself)."""
    split = [strip_url(u).split("/") for u in urls]
    shared: list[str] = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        shared.append(parts[0])
    if len(shared) == min(len(parts) for parts in split):
        shared = shared[:-1]  # one URL is the shared prefix itself: use its parent
    minimum = 3 if "://" in urls[0] else 2  # the bucket, host or first folder
    if len(shared) < minimum:
        return ""  # nothing in common: paths are placed whole (bucket first)
    return "/".join(shared)


def _read_text(url: str, storage: StorageOptions) -> str:
    try:
        with storage.filesystem(url).open(url, "rt") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputError(f"{url}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{url}: not a text file") from None
    except IsADirectoryError:
        raise InputError(f"{url}: is a folder, not an input file") from None
    except Exception as exc:  # noqa: BLE001 - no credentials, access denied, unreachable: one line
        raise InputError(f"{url}: cannot be read: {listing_problem(exc)}") from None


def _from_list(url: str, text: str) -> list[StoreRef]:
    refs = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            refs.append(StoreRef(url=strip_url(entry), kind=kind_of(entry)))
    if not refs:
        raise InputError(f"{url}: lists no store URLs")
    return refs


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+")


def _csv_value(text: str) -> Any:
    """A CSV cell as JSON: integers and decimals as numbers, empty/NaN as missing."""
    text = text.strip()
    if text == "" or text.lower() == "nan":
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _from_csv(url: str, text: str) -> list[StoreRef]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "zstore" not in reader.fieldnames:
        raise InputError(f"{url}: a CSV input needs a 'zstore' column (found: {', '.join(reader.fieldnames or []) or 'none'})")
    refs = []
    for line_number, row in enumerate(reader, start=2):
        store = (row.pop("zstore") or "").strip()
        if not store:
            raise InputError(f"{url}: line {line_number}: empty zstore")
        properties = {k: v for k, raw in row.items() if k and (v := _csv_value(raw or "")) is not None}
        refs.append(StoreRef(url=strip_url(store), kind=kind_of(store), properties=properties))
    if not refs:
        raise InputError(f"{url}: has a header but no rows")
    return refs


def _scalar_metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        return {}
    return {str(k): v for k, v in metadata.items() if isinstance(v, (str, int, float, bool))}


def _from_intake(url: str, text: str) -> list[StoreRef]:
    try:
        catalog = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{url}: not valid YAML: {exc}") from None
    sources = catalog.get("sources") if isinstance(catalog, dict) else None
    if not isinstance(sources, dict):
        raise InputError(f"{url}: not an intake catalogue (no 'sources' mapping)")
    refs = []
    for name, entry in sources.items():
        if not isinstance(entry, dict):
            continue
        driver = str(entry.get("driver", ""))
        args = entry.get("args") or {}
        urlpath = args.get("urlpath")
        engine = args.get("engine") or (args.get("xarray_kwargs") or {}).get("engine")
        is_zarr = driver in ZARR_INTAKE_DRIVERS or (driver in XARRAY_INTAKE_DRIVERS and engine == "zarr")
        if not is_zarr or not isinstance(urlpath, str):
            continue
        if "{{" in urlpath:
            raise InputError(f"{url}: source {name!r}: templated urlpath {urlpath!r} is not supported")
        properties = _scalar_metadata(entry.get("metadata"))
        if entry.get("description"):
            properties.setdefault("description", str(entry["description"]))
        consolidated = args.get("consolidated")
        refs.append(
            StoreRef(
                url=strip_url(urlpath),
                consolidated=consolidated if isinstance(consolidated, bool) else None,
                name=str(name),
                properties=properties,
            )
        )
    if not refs:
        raise InputError(f"{url}: has no zarr sources")
    return refs


def expand_input(url: str, storage: StorageOptions | None = None) -> ExpandedInput:
    """What to catalogue for `url`; raises `InputError` for unusable input files."""
    storage = storage or StorageOptions()
    url = strip_url(url)
    name = posixpath.basename(url).lower()
    if name.endswith(KERCHUNK_SUFFIXES):
        return ExpandedInput(root=posixpath.dirname(url), refs=[StoreRef(url=url, kind=KERCHUNK)])
    if name.endswith(LIST_SUFFIXES):
        refs = _from_list(url, _read_text(url, storage))
    elif name.endswith(CSV_SUFFIXES):
        refs = _from_csv(url, _read_text(url, storage))
    elif name.endswith(INTAKE_SUFFIXES):
        refs = _from_intake(url, _read_text(url, storage))
    else:
        return ExpandedInput(root=url, refs=None)
    return ExpandedInput(root=common_root([r.url for r in refs]), refs=refs)


def iter_refs(expanded: ExpandedInput, storage: StorageOptions, workers: int = 16) -> Iterator[StoreRef]:
    if expanded.refs is not None:
        yield from expanded.refs
    else:
        yield from discover_stores(expanded.root, storage, workers=workers)
