"""Collections that hold a group of Items, with extents that cover them.

What the mapping configuration leaves unset comes from the datasets' global
attributes (CF/ACDD) when every store of the collection agrees on them:
`summary` → description, `license` → license (as an SPDX id when recognisable),
`keywords` → keywords (union), `institution`/`creator_name`/`publisher_name` →
providers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pystac

from . import spatial
from .config import CollectionConfig

DEFAULT_LICENSE = "other"
_SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")
# License texts common in CF/CMIP attributes, and their SPDX ids.
_LICENSE_TEXTS = [
    (re.compile(r"CC[- ]?BY[- ]?SA[- ]?4\.0|Attribution-ShareAlike 4\.0", re.I), "CC-BY-SA-4.0"),
    (re.compile(r"CC[- ]?BY[- ]?4\.0|Creative Commons Attribution 4\.0", re.I), "CC-BY-4.0"),
    (re.compile(r"CC0|Public Domain Dedication", re.I), "CC0-1.0"),
]
MAX_KEYWORDS = 50


def spdx_license(text: str) -> str:
    text = text.strip()
    if _SPDX_ID.fullmatch(text) and any(c.isdigit() for c in text) or text in ("MIT", "proprietary", "other"):
        return text
    for pattern, spdx in _LICENSE_TEXTS:
        if pattern.search(text):
            return spdx
    return DEFAULT_LICENSE


def shared_attr(attrs: Sequence[Mapping[str, Any]], name: str) -> str | None:
    """The value of global attribute `name` when every dataset has the same one."""
    values = {str(a[name]).strip() for a in attrs if a.get(name) not in (None, "")}
    present = sum(1 for a in attrs if a.get(name) not in (None, ""))
    return values.pop() if len(values) == 1 and present == len(attrs) else None


def _keywords(attrs: Sequence[Mapping[str, Any]]) -> list[str] | None:
    found: list[str] = []
    for a in attrs:
        for word in re.split(r"[,;]", str(a.get("keywords") or "")):
            word = word.strip()
            if word and word not in found:
                found.append(word)
    return found[:MAX_KEYWORDS] or None


def _providers(attrs: Sequence[Mapping[str, Any]]) -> list[pystac.Provider] | None:
    providers = []
    for attr, roles in (("institution", ["producer"]), ("creator_name", ["producer"]), ("publisher_name", ["host"])):
        name = shared_attr(attrs, attr)
        if name and all(p.name != name for p in providers):
            providers.append(pystac.Provider(name=name, roles=roles))
    return providers or None


def build_collection(
    collection_id: str,
    items: Sequence[pystac.Item],
    *,
    config: CollectionConfig | None = None,
    fields: Mapping[str, str] | None = None,
    attrs: Sequence[Mapping[str, Any]] = (),
) -> pystac.Collection:
    """A collection for `items`: `config` templates are filled from `fields`."""
    if not items:
        raise ValueError(f"collection {collection_id!r} has no items")
    config = config or CollectionConfig()
    fields = fields or {}
    bbox = spatial.union_bboxes([item.bbox for item in items if item.bbox])
    starts = [item.common_metadata.start_datetime or item.datetime for item in items]
    ends = [item.common_metadata.end_datetime or item.datetime for item in items]
    license_text = shared_attr(attrs, "license")
    description = (
        config.description.format(**fields) if config.description
        else shared_attr(attrs, "summary") or f"{len(items)} Zarr datasets in `{collection_id}`."
    )  # fmt: skip
    providers = [pystac.Provider(**p.model_dump(exclude_none=True)) for p in config.providers] if config.providers else _providers(attrs)
    return pystac.Collection(
        id=collection_id,
        title=config.title.format(**fields) if config.title else collection_id,
        description=description,
        extent=pystac.Extent(
            spatial=pystac.SpatialExtent([bbox]),
            temporal=pystac.TemporalExtent([[min(starts), max(ends)]]),
        ),
        license=config.license or (spdx_license(license_text) if license_text else DEFAULT_LICENSE),
        keywords=config.keywords or _keywords(attrs),
        providers=providers,
    )
