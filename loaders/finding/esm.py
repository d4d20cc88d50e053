"""intake-esm collections (ESM collection JSON + CSV) and plain CSV tables of stores.

An ESM collection JSON (esm-collection-spec: Pangeo's `pangeo-cmip6.json`, CESM
LENS, many data centres') names a table of assets: `catalog_file` (a CSV, plain or
.gz, relative to the JSON or a URL) or an embedded `catalog_dict`; its
`assets.column_name` holds the URLs and `assets.format` (or the column
`assets.format_column_name`) their format. Each Zarr row is one store (an Item)
with the other columns as properties (empty cells left out); each row of another
format (netcdf, opendap) is reported as `not-zarr`. Rows are grouped into
collections by `aggregation_control.groupby_attrs` unless the mapping
configuration says otherwise (`catalogue.groupby`).

The table is streamed: rows are read one at a time (twice: once for the root
their paths are relative to, once for the stores), never held in memory.

The JSON is parsed with pydantic models of the spec's fields (below), not with
intake-esm's own `esmcat` models: intake-esm pulls in polars, bokeh, netCDF4,
pydap and a dozen more packages, and its catalogue model loads the whole table
into a data frame, which a 500,000-row catalogue must not need.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from zarr_stac.common.storage import StorageOptions, public_url, strip_url

from ..config import CatalogueConfig, validation_problem
from ..failures import INPUT, NOT_ZARR, StoreFailure
from ..limits import INPUT_SETTING, TooLarge, bounded_lines, limit_bytes, read_bounded
from ..vocabulary import KERCHUNK, KERCHUNK_PARQUET, ZARR, CatalogueError, CollectionHint, StoreRef, entry_ref
from .intake import catalogue_dir, resolve

DEFAULT_ASSET_COLUMN = "zstore"
# An intake-esm table's own names (its JSON's `assets.column_name` and `format_column_name`),
# read when a CSV comes without its JSON.
ESM_ASSET_COLUMN, ESM_FORMAT_COLUMN = "path", "format"
ZARR_FORMATS = {"zarr", "zarr2", "zarr3"}
REFERENCE_FORMATS = {"reference", "kerchunk"}
HEAD_BYTES = 65536  # an ESM JSON says what it is in its first keys; kerchunk files can be huge


class Attribute(BaseModel):
    model_config = ConfigDict(extra="allow")
    column_name: str
    vocabulary: str = ""


class Assets(BaseModel):
    model_config = ConfigDict(extra="allow")
    column_name: str
    format: str | None = None
    format_column_name: str | None = None

    @model_validator(mode="after")
    def _one_format(self) -> Assets:
        if (self.format is None) == (self.format_column_name is None):
            raise ValueError("exactly one of 'format' and 'format_column_name' is needed")
        return self


class AggregationControl(BaseModel):
    model_config = ConfigDict(extra="allow")
    variable_column_name: str | None = None
    groupby_attrs: list[str] = []


class ESMCollection(BaseModel):
    """The fields of an ESM collection JSON that cataloguing uses (esm-collection-spec v0.1)."""

    model_config = ConfigDict(extra="allow")
    esmcat_version: str
    id: str | None = None
    title: str | None = None
    description: str | None = None
    catalog_file: str | None = None
    catalog_dict: list[dict[str, Any]] | None = None
    attributes: list[Attribute] = []
    assets: Assets
    aggregation_control: AggregationControl | None = None

    @model_validator(mode="after")
    def _one_table(self) -> ESMCollection:
        if (self.catalog_file is None) == (self.catalog_dict is None):
            raise ValueError("exactly one of 'catalog_file' and 'catalog_dict' is needed")
        return self


def looks_like_esm(head: str) -> bool:
    """Whether the start of a JSON file is an ESM collection (not a kerchunk reference)."""
    if '"esmcat_version"' in head:
        return True
    return '"assets"' in head and ('"catalog_file"' in head or '"catalog_dict"' in head) and '"refs"' not in head


def read_head(url: str, storage: StorageOptions) -> str:
    with storage.filesystem(url).open(url, "rb") as handle:
        return handle.read(HEAD_BYTES).decode("utf-8", errors="replace")


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+")


def cell_value(value: Any) -> Any:
    """A table cell as JSON: integers and decimals as numbers; empty and NaN as missing.

    Only numbers JSON readers keep are numbers: an integer beyond 64 bits or a decimal
    beyond a float's range (`1e999`) stays text, as it was written."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if not isinstance(value, str):
        return None  # lists and mappings of catalog_dict rows: not a property value
    text = value.strip()
    if text == "" or text.lower() == "nan":
        return None
    if _INTEGER.fullmatch(text) and len(text) <= 20 and -(2**63) <= (number := int(text)) < 2**64:
        return number
    if _FLOAT.fullmatch(text) and len(text) <= 400 and math.isfinite(number := float(text)):
        return number
    return text


class Table:
    """The rows of a CSV file (plain or compressed), read again on each iteration.

    Untrusted (see `limits`): no line is read further than `catalogue.max_row_kb` (a gzip
    bomb of one endless line, a 10 MB field: TooLarge), the header has at most
    `catalogue.max_columns` columns, and a field at most csv's own 131,072 characters
    (csv.Error); both errors name the file and the line."""

    def __init__(self, url: str, storage: StorageOptions, config: CatalogueConfig | None = None):
        self.url = url
        self.storage = storage
        self.config = config or CatalogueConfig()

    def columns(self) -> list[str]:
        try:
            with self._open() as handle:
                columns = next(csv.reader(self._lines(handle)), [])
        except csv.Error as exc:
            raise CatalogueError(f"{self.url}: the header cannot be read: {exc}") from None
        except TooLarge as exc:
            raise CatalogueError(str(exc)) from None
        check_column_count(self.url, len(columns), self.config)
        return columns

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with self._open() as handle:
            reader = csv.DictReader(self._lines(handle))
            for row in reader:
                yield reader.line_num, row

    def _lines(self, handle) -> Iterator[str]:
        limit = self.config.max_row_kb * 1024
        return bounded_lines(handle, limit, self.url, "catalogue.max_row_kb")

    def _open(self):
        fs = self.storage.filesystem(self.url)
        try:
            return fs.open(self.url, "rt", compression="infer", newline="", encoding="utf-8")
        except FileNotFoundError:
            raise CatalogueError(f"{self.url}: no such file") from None


class Rows:
    """A table's rows as stores and reports, re-iterable (the caller reads them twice)."""

    def __init__(
        self,
        where: str,
        rows: Iterable[tuple[int, dict[str, Any]]],
        asset_column: str,
        format_of: Callable[[dict[str, Any]], Any],
        skip_columns: set[str],
        groupby: list[str],
        describe: str | None,
        storage: StorageOptions | None = None,
    ):
        self.where, self.rows, self.asset_column, self.format_of = where, rows, asset_column, format_of
        self.skip_columns, self.groupby, self.describe = skip_columns | {asset_column}, groupby, describe
        self.storage = storage or StorageOptions()  # the table's: a row's URL may add its own credentials

    def urls(self) -> Iterator[str]:
        """The store URLs of the rows; CatalogueError when the table cannot be read to its end."""
        line = 1
        try:
            for line, row in self.rows:
                url = row.get(self.asset_column)
                form = str(self.format_of(row) or "").lower()
                if isinstance(url, str) and url.strip() and form in ZARR_FORMATS | REFERENCE_FORMATS:
                    yield strip_url(public_url(url.strip()))
        except TooLarge as exc:
            raise CatalogueError(str(exc)) from None
        except csv.Error as exc:
            raise CatalogueError(f"{self.where}: cannot be read past line {line}: {exc}") from None

    def __iter__(self) -> Iterator[StoreRef | StoreFailure]:
        hints: dict[tuple, CollectionHint] = {}  # one per group: rows share the object
        try:
            for line, row in self.rows:
                yield self._entry(line, row, hints)
        except (csv.Error, TooLarge) as exc:
            yield StoreFailure(self.where, INPUT, f"the table cannot be read past this point: {exc}")

    def _entry(self, line: int, row: dict[str, Any], hints: dict) -> StoreRef | StoreFailure:
        url = row.get(self.asset_column)
        if None in row:  # csv.DictReader's key for cells beyond the header
            return StoreFailure(f"{self.where}:{line}", INPUT, f"row {line} has more cells than the header")
        if not isinstance(url, str) or not url.strip():
            return StoreFailure(f"{self.where}:{line}", INPUT, f"row {line}: empty {self.asset_column!r}")
        raw = url.strip()
        url = strip_url(public_url(raw))
        form = str(self.format_of(row) or "").strip().lower()
        if form in ZARR_FORMATS:
            kind = ZARR
        elif form in REFERENCE_FORMATS:
            kind = KERCHUNK if url.endswith(".json") else KERCHUNK_PARQUET
        else:
            return StoreFailure(url, NOT_ZARR, f"row {line} of {self.where}: format {form or 'unknown'!r} is not Zarr")
        properties = {
            k: v for k, raw in row.items() if k and k not in self.skip_columns and (v := cell_value(raw)) is not None
        }
        hint = None
        if self.groupby:
            values = (cell_value(row.get(column)) for column in self.groupby)
            key = tuple("none" if value is None else str(value) for value in values)
            hint = hints.get(key)
            if hint is None:
                label = ".".join(key)
                parts = ", ".join(f"{c} {v}" for c, v in zip(self.groupby, key))
                description = f"{self.describe} ({parts})" if self.describe else f"The Zarr stores with {parts}."
                hint = hints[key] = CollectionHint(id=label, title=label, description=description)
        try:
            return entry_ref(raw, self.storage, kind=kind, properties=properties, collection=hint)
        except ValueError as exc:
            return StoreFailure(url, INPUT, f"row {line} of {self.where}: {exc}")


def check_column_count(where: str, count: int, config: CatalogueConfig) -> None:
    if count > config.max_columns:
        raise CatalogueError(
            f"{where}: {count:,} columns, more than the {config.max_columns:,} a table may have (catalogue.max_columns)"
        )


def _check_columns(where: str, columns: list[str], needed: list[tuple[str, str]]) -> None:
    for what, column in needed:
        if column not in columns:
            raise CatalogueError(f"{where}: {what} {column!r} is not a column (found: {', '.join(columns) or 'none'})")


def read_csv(url: str, storage: StorageOptions, config: CatalogueConfig) -> Rows:
    """A plain CSV of stores: Pangeo's `cmip6-zarr-consolidated-stores.csv` (a `zstore`
    column, every row Zarr), or an intake-esm table without its JSON (`path` and `format`
    columns, each row saying whether it is netcdf, zarr or a reference, as `read_esm` reads it)."""
    table = Table(url, storage, config)
    columns = table.columns()
    asset_column = config.asset_column or DEFAULT_ASSET_COLUMN
    if not config.asset_column and asset_column not in columns and ESM_FORMAT_COLUMN in columns:
        asset_column = ESM_ASSET_COLUMN
    esm_layout = asset_column == ESM_ASSET_COLUMN and ESM_FORMAT_COLUMN in columns
    if asset_column not in columns:
        hint = "; name the column of store URLs with --asset-column (catalogue.asset_column)"
        hint = "" if config.asset_column else hint
        found = ", ".join(columns) or "none"
        raise CatalogueError(f"{url}: a CSV input needs a {asset_column!r} column (found: {found}){hint}")
    groupby = config.groupby or []
    _check_columns(url, columns, [("catalogue.groupby column", c) for c in groupby])
    if esm_layout:
        format_of: Callable[[dict[str, Any]], Any] = lambda row: row.get(ESM_FORMAT_COLUMN)  # noqa: E731
        return Rows(url, table, asset_column, format_of, {ESM_FORMAT_COLUMN}, groupby, None, storage)
    return Rows(url, table, asset_column, lambda row: "zarr", set(), groupby, None, storage)


def read_esm(url: str, storage: StorageOptions, config: CatalogueConfig) -> Rows:
    """An ESM collection JSON and its table."""
    try:
        with storage.filesystem(url).open(url, "rb") as handle:
            raw = json.loads(read_bounded(handle, limit_bytes(storage.max_input_mb), "it", INPUT_SETTING))
        collection = ESMCollection.model_validate(raw)
    except TooLarge as exc:
        raise CatalogueError(f"{url}: refused: {exc}") from None
    except RecursionError:
        raise CatalogueError(f"{url}: refused: it is nested too deeply to be read") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{url}: not valid JSON: {exc}") from None
    except ValidationError as exc:
        raise CatalogueError(f"{url}: not a valid ESM collection: {validation_problem(exc)}") from None
    assets = collection.assets
    asset_column = config.asset_column or assets.column_name
    if assets.format_column_name:
        column = assets.format_column_name
        format_of: Callable[[dict[str, Any]], Any] = lambda row: row.get(column)  # noqa: E731
    else:
        fixed = assets.format
        format_of = lambda row: fixed  # noqa: E731
    control = collection.aggregation_control
    groupby = config.groupby if config.groupby is not None else (control.groupby_attrs if control else [])
    skip = {assets.format_column_name} if assets.format_column_name else set()
    describe = collection.description or collection.title
    if collection.catalog_dict is not None:
        rows: Iterable[tuple[int, dict[str, Any]]] = list(enumerate(collection.catalog_dict, start=1))
        columns = sorted({k for row in collection.catalog_dict for k in row})
        where = f"{url}#catalog_dict"
        check_column_count(where, len(columns), config)
    else:
        try:
            table_url, table_storage = storage.for_url(resolve(collection.catalog_file, catalogue_dir(url)))
        except ValueError as exc:
            raise CatalogueError(f"{url}: catalog_file: {exc}") from None
        rows = Table(table_url, table_storage, config)
        columns = rows.columns()
        where = table_url
    needed = [("assets.column_name", asset_column), *[("groupby column", c) for c in groupby]]
    if assets.format_column_name:
        needed.append(("assets.format_column_name", assets.format_column_name))
    _check_columns(where, columns, needed)
    return Rows(where, rows, asset_column, format_of, skip, groupby, describe, storage)
