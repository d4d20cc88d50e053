"""Why a store could not be catalogued: failure kinds, as reports group them.

Every store that is skipped becomes a `StoreFailure` with one of these kinds and
a one-line reason; nothing is skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from zarr_stac.common.rejection import DUPLICATE_ID as DUPLICATE_ID
from zarr_stac.common.rejection import LOAD_ERROR as LOAD_ERROR
from zarr_stac.common.rejection import RENDER_ERROR as RENDER_ERROR
from zarr_stac.common.rejection import WRITE_ERROR as WRITE_ERROR

# Publishing the Item: a sink (static catalogue, pgstac) refused that one Item; defined in
# `zarr_stac.common.rejection`, where the publishers raise them without importing the loaders.
# duplicate-id: two stores map to one item id (or one item path);
# render-error: its document could not be made; write-error: the destination refused that
# one object (a name too long, ...); load-error: pgstac or PostgreSQL refused that one Item.

# Reading the store
CORRUPT_METADATA = "corrupt-metadata"  # unparseable or invalid Zarr metadata JSON (or JSON that is no object)
ACCESS_DENIED = "access-denied"
NOT_FOUND = "not-found"
UNKNOWN_CODEC = "unknown-codec"
TIMEOUT = "timeout"
UNAVAILABLE = "unavailable"  # throttled (503 SlowDown), 5xx or connection dropped, after retries
READ_ERROR = "read-error"  # anything else while reading
# Beyond a limit on what one store may cost: a metadata document or reference too large
# to read, a coordinate too large to decode (see `limits`).
TOO_LARGE = "too-large"
# Mapping what was read
NO_COORDINATES = "no-coordinates"
NO_TIME = "no-time"
UNDECODABLE_TIME = "undecodable-time"
LAYOUT = "layout"  # path does not fit the configured path template
MAPPING_ERROR = "mapping-error"  # anything else while mapping
MISSING_COORDINATES = "missing-coordinates"  # an extent coordinate's chunks are absent or all fill
# Finding the stores
DISCOVERY = "discovery"  # a prefix could not be listed: its stores are unknown
INPUT = "input"  # an input file (list, CSV, intake catalogue) is unusable
# Entries of catalogue inputs (intake sources, ESM/CSV rows, nested catalogues)
NOT_ZARR = "not-zarr"  # an entry of another format (netcdf, opendap, ...): known, not catalogued
TEMPLATE = "template"  # a templated entry (intake user parameters, Jinja) that cannot be expanded
CATALOGUE_LOOP = "catalogue-loop"  # a nested catalogue already included: followed once
# Entries that are known not to be stores: reported, but they hide no store, so
# they never keep a crawl from being complete.
KNOWN_NON_STORES = (NOT_ZARR, CATALOGUE_LOOP)


@dataclass(frozen=True)
class StoreFailure:
    url: str
    kind: str
    reason: str
    # The collection the store belongs to, when known: its earlier Item must then be
    # kept, and nothing may be deleted from that collection. None with a kind
    # other than `layout` means "somewhere": nothing may be deleted at all.
    collection_id: str | None = None
