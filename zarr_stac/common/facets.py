"""Facets: the item properties users filter on, gathered item by item (bounded memory).

Path-template fields such as `variable_id` or `experiment_id`, CSV and intake
metadata, `variables`: each collection's values (or range) become its `summaries`
in the static catalogue and, in pgstac, its queryables and summaries
(`stac_api.loading.queryables`). Extension fields (`cube:*`, `proj:*`, ...), the free-text
and time fields and the Item's own fields (`id`, `collection`, ...) are left out.
"""

from __future__ import annotations

from typing import Any

import orjson

from .stac import RESERVED_PROPERTIES
from .values import dumps

NOT_FACETS = {"datetime", "start_datetime", "end_datetime", "created", "updated", "title", "description"}
MAX_ENUM = 100  # more distinct values than this: no enum, no summary list


def is_facet(name: str) -> bool:
    # Not the Item's own fields (pgstac reads them as columns), nor `properties.x`, which
    # pgstac would take for `x`.
    return (
        ":" not in name
        and name not in NOT_FACETS
        and name not in RESERVED_PROPERTIES
        and not name.startswith("properties.")
    )


class FacetStats:
    """What one facet of one collection looks like, gathered item by item (bounded)."""

    __slots__ = ("kind", "values", "distinct", "low", "high")

    def __init__(self) -> None:
        self.kind: str | None = None
        self.values: set[bytes] = set()
        self.distinct = 0  # MAX_ENUM + 1 means "many"
        self.low: float | None = None
        self.high: float | None = None

    def add(self, value: Any) -> None:
        kind = _kind(value)
        if kind is None:
            return
        self.kind = kind if self.kind in (None, kind) else "string"  # mixed types: read as text
        if kind == "number":
            self.low = value if self.low is None else min(self.low, value)
            self.high = value if self.high is None else max(self.high, value)
        if len(self.values) <= MAX_ENUM:
            self.values.add(dumps(value))
        self.distinct = len(self.values)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "distinct": self.distinct,
            "sample": [orjson.loads(v) for v in self.values],
            "low": self.low,
            "high": self.high,
        }


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "array"
    return None


def observe(stats: dict[str, FacetStats], properties: dict[str, Any]) -> None:
    """Fold one item's properties into its collection's facet statistics."""
    for key, value in properties.items():
        if is_facet(key):
            (stats.get(key) or stats.setdefault(key, FacetStats())).add(value)


def summary(stats: dict[str, Any]) -> Any | None:
    if stats["kind"] == "number":
        return {"minimum": stats["low"], "maximum": stats["high"]}
    if stats["kind"] in ("string", "boolean") and stats["distinct"] <= MAX_ENUM:
        return sorted(stats["sample"], key=str)
    return None
