"""Publish Collections and Items as a static STAC catalogue in one call.

The parts: `catalog.StaticCatalog` (configuration and the JSON documents),
`publication.Publication` (what to write and delete, and when), `destination`
(the folder or bucket prefix), `paths` (where each object sits), `geoparquet`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pystac

from zarr_stac.common.stac import MayDelete, delete_nothing
from zarr_stac.common.storage import StorageOptions

from .catalog import StaticCatalog
from .publication import WriteReport, publish


def write_catalog(
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    dest: str,
    *,
    storage: StorageOptions | None = None,
    base_url: str | None = None,
    may_delete: MayDelete = delete_nothing,
    geoparquet: bool = False,
    **root_fields: Any,
) -> WriteReport:
    """Write what changed at `dest`; `root_fields` are StaticCatalog's catalog_id, title, description, delete_grace."""
    catalog = StaticCatalog(dest, storage=storage, base_url=base_url, geoparquet=geoparquet, **root_fields)
    return publish(catalog, collections, items, may_delete=may_delete)
