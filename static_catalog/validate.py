"""Validate STAC JSON against the STAC and extension JSON schemas, offline.

Give `OfflineValidator` a folder laid out by schema URL (`https://HOST/PATH` is
`HOST/PATH` in the folder, as `../shared/stac-schemas/` is): every schema comes
from there and nothing is fetched from the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pystac
from pystac.errors import STACValidationError
from pystac.validation import validate_dict
from pystac.validation.stac_validator import GetSchemaError, JsonSchemaSTACValidator

from loaders.storage import StorageOptions

from .stac_io import FsspecStacIO


class OfflineValidator(JsonSchemaSTACValidator):
    def __init__(self, schema_dir: str | Path):
        super().__init__()
        self.schema_dir = Path(schema_dir)
        if not self.schema_dir.is_dir():
            raise FileNotFoundError(f"schema folder {self.schema_dir} does not exist")
        for path in self.schema_dir.rglob("*.json"):
            uri = "https://" + path.relative_to(self.schema_dir).as_posix()
            self.schema_cache[uri] = json.loads(path.read_text())

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri not in self.schema_cache:
            raise GetSchemaError(schema_uri, FileNotFoundError(f"{schema_uri} is not in {self.schema_dir}"))
        return self.schema_cache[schema_uri]

    @cached_property
    def registry(self) -> Any:  # built once: the cache never changes after __init__
        return super().registry


@dataclass
class ValidationReport:
    checked: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (href or id, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_object(data: dict[str, Any], validator: JsonSchemaSTACValidator | None, href: str | None = None) -> str | None:
    """None when `data` is valid, else the first error in one paragraph."""
    try:
        validate_dict(data, href=href, validator=validator)
    except (STACValidationError, GetSchemaError) as exc:
        return str(exc)
    return None


def walk_catalog(href: str, storage: StorageOptions | None = None) -> Iterator[pystac.STACObject]:
    root = pystac.read_file(href, stac_io=FsspecStacIO(storage))
    if not isinstance(root, pystac.Catalog):
        yield root
        return
    for catalog, _children, items in root.walk():
        yield catalog
        yield from items


def validate_catalog(href: str, validator: JsonSchemaSTACValidator | None = None, storage: StorageOptions | None = None) -> ValidationReport:
    """Validate every object reachable from the static catalogue at `href`."""
    report = ValidationReport()
    for obj in walk_catalog(href, storage):
        report.checked += 1
        problem = validate_object(obj.to_dict(transform_hrefs=False), validator, href=obj.get_self_href())
        if problem:
            report.errors.append((obj.get_self_href() or obj.id, problem))
    return report


def _pages(client: httpx.Client, url: str, key: str) -> Iterator[dict[str, Any]]:
    """Every entry of a paginated STAC API list, following `next` links."""
    while url:
        page = client.get(url)
        page.raise_for_status()
        body = page.json()
        yield from body.get(key, [])
        url = next((link["href"] for link in body.get("links", []) if link.get("rel") == "next" and link.get("method", "GET") == "GET"), None)


def is_api(landing: dict[str, Any]) -> bool:
    return "conformsTo" in landing and any(link.get("rel") == "data" for link in landing.get("links", []))


def validate_api(url: str, validator: JsonSchemaSTACValidator | None = None, *, page_size: int = 100) -> ValidationReport:
    """Validate every collection of a STAC API, and every item of each."""
    report = ValidationReport()
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        base = url.rstrip("/")
        for collection in _pages(client, f"{base}/collections?limit={page_size}", "collections"):
            report.checked += 1
            if problem := validate_object(collection, validator):
                report.errors.append((f"{base}/collections/{collection.get('id')}", problem))
            items_url = f"{base}/collections/{collection['id']}/items?limit={page_size}"
            for item in _pages(client, items_url, "features"):
                report.checked += 1
                if problem := validate_object(item, validator):
                    report.errors.append((f"{base}/collections/{collection['id']}/items/{item.get('id')}", problem))
    return report


def validate_any(href: str, validator: JsonSchemaSTACValidator | None = None, storage: StorageOptions | None = None) -> ValidationReport:
    """A static catalogue (folder, catalog.json, bucket URL) or a STAC API landing page."""
    if href.startswith(("http://", "https://")):
        landing = httpx.get(href, timeout=60, follow_redirects=True).json()
        if is_api(landing):
            return validate_api(href, validator)
    return validate_catalog(href, validator, storage)
