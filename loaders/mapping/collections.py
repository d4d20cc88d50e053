"""Collections that hold a group of Items, with extents that cover them.

What the mapping configuration leaves unset comes from the datasets' global
attributes (CF/ACDD) when every store of the collection agrees on them:
`summary` → description, `license` → license (as an SPDX id when recognisable),
`keywords` → keywords (union), `institution`/`creator_name`/`publisher_name` →
providers.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pystac

from zarr_stac.common import facets, spatial
from zarr_stac.common.stac import item_interval, union_interval

from ..config import CollectionConfig
from ..markup import markdown_text, plain_text
from . import assets

DEFAULT_LICENSE = "other"
# Fields of the Zarr asset an `item_assets` definition keeps when every item agrees.
# (zarr:* there without the zarr extension declared: its schema requires Collection
# `assets`, which a collection of stores does not have.)
ITEM_ASSET_FIELDS = ("zarr:zarr_format", "zarr:consolidated", "zarr:node_type", "xarray:open_kwargs", "storage:refs")
_SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")
# License texts common in CF/CMIP attributes, and their SPDX ids.
_LICENSE_TEXTS = [
    (re.compile(r"CC[- ]?BY[- ]?SA[- ]?4\.0|Attribution-ShareAlike 4\.0", re.I), "CC-BY-SA-4.0"),
    (re.compile(r"CC[- ]?BY[- ]?4\.0|Creative Commons Attribution 4\.0", re.I), "CC-BY-4.0"),
    (re.compile(r"CC0|Public Domain Dedication", re.I), "CC0-1.0"),
]
MAX_KEYWORDS = 50
MAX_KEYWORD = 100  # characters of one keyword


def spdx_license(text: str) -> str:
    text = text.strip()
    if _SPDX_ID.fullmatch(text) and any(c.isdigit() for c in text) or text in ("MIT", "proprietary", "other"):
        return text
    for pattern, spdx in _LICENSE_TEXTS:
        if pattern.search(text):
            return spdx
    return DEFAULT_LICENSE


# The global attributes collection defaults are taken from.
DEFAULT_ATTRS = ("license", "summary", "institution", "creator_name", "publisher_name")
# Every global attribute a collection uses (the ledger keeps these for unchanged stores).
COLLECTION_ATTRS = (*DEFAULT_ATTRS, "keywords")
_CONFLICT = object()


class CollectionSummary:
    """What a collection's document needs from its items, gathered one item at a time.

    Memory stays constant whatever the number of items: extents are merged as
    items arrive, and of the datasets' global attributes only whether they agree.
    """

    def __init__(
        self, collection_id: str, config: CollectionConfig | None = None, fields: Mapping[str, str] | None = None
    ):
        self.collection_id = collection_id
        self.config = config or CollectionConfig()
        self.fields = dict(fields or {})
        self.count = 0
        self.bbox: list[float] | None = None
        self.start: dt.datetime | None = None
        self.end: dt.datetime | None = None
        self._shared: dict[str, Any] = {}
        self._keywords: list[str] = []
        self._facets: dict[str, facets.FacetStats] = {}
        # The Zarr asset's fields every item shares (-> item_assets), the storage
        # schemes of all of them, and the first item's recipe (-> description).
        self._asset_fields: dict[str, Any] | None = None
        self._schemes: dict[str, dict[str, Any]] = {}
        self._recipe: str | None = None
        self._recipe_of = ""

    def add(self, item: pystac.Item | dict[str, Any], attrs: Mapping[str, Any] = {}) -> None:
        """Count one item in: a pystac Item, or its JSON (an unchanged store's, from the ledger:
        read as it is, without pystac's parsing of every field)."""
        data = item if isinstance(item, dict) else item.to_dict(include_self_link=False, transform_hrefs=False)
        properties = data.get("properties") or {}
        if bbox := data.get("bbox"):
            self.bbox = list(bbox) if self.bbox is None else spatial.union_bboxes([self.bbox, bbox])
        self.start, self.end = union_interval([(self.start, self.end), item_interval(properties)])
        for name in DEFAULT_ATTRS:
            value = str(attrs.get(name) or "").strip() or None
            if self.count == 0:
                self._shared[name] = value
            elif self._shared.get(name) != value:
                self._shared[name] = _CONFLICT
        self._add_asset(data["id"], (data.get("assets") or {}).get(assets.ASSET_KEY), properties)
        for word in re.split(r"[,;]", str(attrs.get("keywords") or "")[: MAX_KEYWORDS * MAX_KEYWORD]):
            word = plain_text(word, MAX_KEYWORD)
            if word and word not in self._keywords and len(self._keywords) < MAX_KEYWORDS:
                self._keywords.append(word)
        facets.observe(self._facets, properties)
        self.count += 1

    def _add_asset(self, item_id: str, asset: dict[str, Any] | None, properties: Mapping[str, Any]) -> None:
        if asset is None:
            return
        fields = {"type": asset.get("type"), "roles": asset.get("roles")}
        fields.update({k: v for k, v in asset.items() if k in ITEM_ASSET_FIELDS})
        if self._asset_fields is None:
            self._asset_fields = fields
        else:
            self._asset_fields = {k: v for k, v in self._asset_fields.items() if fields.get(k) == v}
        for key, scheme in (properties.get("storage:schemes") or {}).items():
            self._schemes.setdefault(key, scheme)
        # The recipe of the first store by id, not by arrival: the same collection document
        # whatever the order stores were read in (processes, Dask, retries).
        if self._recipe is None or item_id < self._recipe_of:
            self._recipe_of = item_id
            self._recipe = assets.python_recipe(
                asset["href"], asset.get("xarray:open_kwargs") or {}, asset.get("xarray:storage_options")
            )

    def _item_assets(self) -> dict[str, dict[str, Any]]:
        if not self._asset_fields:
            return {}
        definition = {k: v for k, v in self._asset_fields.items() if v is not None}
        virtual = definition.get("type") == assets.KERCHUNK_MEDIA_TYPE
        kind = "Virtual Zarr store (kerchunk references)" if virtual else "Zarr store"
        return {assets.ASSET_KEY: {"title": kind, **definition}}

    def shared(self, name: str) -> str | None:
        """The value of a global attribute that every dataset has, the same."""
        value = self._shared.get(name)
        return None if value is _CONFLICT else value

    def build(self) -> pystac.Collection:
        if not self.count:
            raise ValueError(f"collection {self.collection_id!r} has no items")
        config, fields = self.config, self.fields
        license_text = self.shared("license")
        # The configuration's templates are markdown; what fills them (paths, attributes) is text.
        summary = self.shared("summary")
        description = (
            config.description.format(**{k: markdown_text(v) for k, v in fields.items()}) if config.description
            else markdown_text(summary) if summary
            else f"{self.count} Zarr datasets in `{self.collection_id}`."
        )  # fmt: skip
        if config.open_instructions and self._recipe:
            description += (
                f"\n\nEach item is one store, opened with xarray as its description shows; "
                f"the first one:\n\n```python\n{self._recipe}\n```\n"
            )
        providers = (
            [pystac.Provider(**p.model_dump(exclude_none=True)) for p in config.providers]
            if config.providers
            else self._providers()
        )
        # The values of each facet, as stac-browser shows them and pgstac's summaries hold them.
        summaries = {
            name: value
            for name, stats in sorted(self._facets.items())
            if stats.kind and (value := facets.summary(stats.as_dict())) is not None
        }
        collection = pystac.Collection(
            id=self.collection_id,
            title=plain_text(config.title.format(**fields)) if config.title else self.collection_id,
            description=description,
            extent=pystac.Extent(
                spatial=pystac.SpatialExtent([self.bbox or [-180.0, -90.0, 180.0, 90.0]]),
                temporal=pystac.TemporalExtent([[self.start, self.end]]),
            ),
            license=config.license or (spdx_license(license_text) if license_text else DEFAULT_LICENSE),
            # Sorted: the same document whatever order the items came in (a rerun keeps unchanged ones last).
            keywords=config.keywords or (sorted(self._keywords, key=str.casefold) or None),
            providers=providers,
            summaries=pystac.Summaries(summaries) if summaries else None,
        )
        if item_assets := self._item_assets():
            collection.extra_fields["item_assets"] = item_assets
        if self._schemes:
            # Storage v2.0.0: the schemes once per collection, for its item_assets' refs.
            collection.extra_fields["storage:schemes"] = dict(sorted(self._schemes.items()))
            collection.stac_extensions.append(assets.STORAGE_SCHEMA)
        return collection

    def _providers(self) -> list[pystac.Provider] | None:
        providers: list[pystac.Provider] = []
        for attr, role in (
            ("institution", pystac.ProviderRole.PRODUCER),
            ("creator_name", pystac.ProviderRole.PRODUCER),
            ("publisher_name", pystac.ProviderRole.HOST),
        ):
            name = plain_text(self.shared(attr) or "")
            if name and all(p.name != name for p in providers):
                providers.append(pystac.Provider(name=name, roles=[role]))
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
    summary = CollectionSummary(collection_id, config, fields)
    no_attrs: Mapping[str, Any] = {}
    padded = itertools.chain(attrs, itertools.repeat(no_attrs))  # an item without attributes has none
    for item, item_attrs in zip(items, padded, strict=False):
        summary.add(item, item_attrs)
    return summary.build()
