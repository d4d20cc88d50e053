"""Load STAC Collections and Items into pgstac with pypgstac.

Collections first, then items in batches, both in upsert mode: loading the same
crawl twice leaves the database as it was after the first load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pystac
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods
from pypgstac.migrate import Migrate
from pystac.link import HIERARCHICAL_LINKS

# Links that describe a static catalogue's tree: the API makes its own.
STRUCTURAL_RELS = {"self", *HIERARCHICAL_LINKS}


def migrate(dsn: str) -> str:
    """Install or upgrade pgstac in the database; returns the pgstac version."""
    with PgstacDB(dsn=dsn) as db:
        return Migrate(db).run_migration()


def for_pgstac(obj: pystac.STACObject) -> dict[str, Any]:
    """The JSON pgstac stores: no tree links, absolute asset hrefs."""
    data = obj.to_dict(include_self_link=False, transform_hrefs=False)
    data["links"] = [link for link in data.get("links", []) if link.get("rel") not in STRUCTURAL_RELS]
    return data


@dataclass
class LoadReport:
    collections: int = 0
    items: int = 0


def _batches(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch


def load(
    dsn: str,
    collections: Iterable[pystac.Collection],
    items: Iterable[pystac.Item],
    *,
    batch_size: int = 5000,
) -> LoadReport:
    report = LoadReport()
    with PgstacDB(dsn=dsn) as db:
        loader = Loader(db=db)
        collection_dicts = [for_pgstac(c) for c in collections]
        if collection_dicts:
            loader.load_collections(iter(collection_dicts), insert_mode=Methods.upsert)
        report.collections = len(collection_dicts)
        for batch in _batches((for_pgstac(i) for i in items), batch_size):
            loader.load_items(iter(batch), insert_mode=Methods.upsert)
            report.items += len(batch)
    return report
