"""stac-fastapi-pgstac's client, with one pgstac bug worked around.

pgstac strips `"datetime": null` from item properties when it hydrates items
(stac-utils/pgstac#158, #425), which makes every Item with only
`start_datetime`/`end_datetime` invalid STAC: the spec requires `datetime` to be
present, null. Every item-returning endpoint goes through `_search_base`, so the
field is restored there. Remove once pgstac ships the fix.
"""

from __future__ import annotations

from typing import Any

from stac_fastapi.pgstac.core import CoreCrudClient


def restore_null_datetime(feature: dict[str, Any], excluded: set[str]) -> None:
    properties = feature.get("properties")
    if (
        isinstance(properties, dict)
        and "datetime" not in properties
        and "start_datetime" in properties
        and "end_datetime" in properties
        and "properties.datetime" not in excluded
    ):
        properties["datetime"] = None


class ZarrStacClient(CoreCrudClient):
    async def _search_base(self, search_request, request):  # type: ignore[override]
        item_collection = await super()._search_base(search_request, request)
        fields = getattr(search_request, "fields", None)
        excluded = set(fields.exclude) if fields and fields.exclude else set()
        for feature in item_collection.get("features", []):
            restore_null_datetime(feature, excluded)
        return item_collection
