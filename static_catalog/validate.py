"""Validate STAC JSON against the STAC and extension JSON schemas, offline.

Give `OfflineValidator` a folder laid out by schema URL (`https://HOST/PATH` is
`HOST/PATH` in the folder, as `../shared/stac-schemas/` is): every schema comes
from there and nothing is fetched from the network.
"""

from __future__ import annotations

import json
import logging
import re
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

from zarr_stac.common.storage import StorageOptions

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


class OnlineValidator(JsonSchemaSTACValidator):
    """pystac's validator, fetching schemas from their URLs, that asks for a schema it
    could not fetch only once (offline, every object would wait for the same timeouts)."""

    def __init__(self) -> None:
        super().__init__()
        self.unreachable: dict[str, GetSchemaError] = {}

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri in self.unreachable:
            raise self.unreachable[schema_uri]
        try:
            return super()._get_schema(schema_uri)
        except GetSchemaError as exc:
            self.unreachable[schema_uri] = exc
            raise


class SchemaUnavailable(Exception):
    """A schema an object names could not be fetched: the object is unchecked, not invalid."""

    def __init__(self, schema_uri: str):
        super().__init__(schema_uri)
        self.schema_uri = schema_uri


@dataclass
class ValidationReport:
    checked: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (href or id, message)
    # Objects that could not be checked, and the schemas that could not be fetched.
    unchecked: list[str] = field(default_factory=list)
    unavailable_schemas: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unchecked

    def check(
        self, data: dict[str, Any], validator: JsonSchemaSTACValidator | None, where: str, href: str | None = None
    ) -> None:
        self.checked += 1
        try:
            problem = validate_object(data, validator, href=href)
        except SchemaUnavailable as exc:
            self.unchecked.append(where)
            self.unavailable_schemas.add(exc.schema_uri)
            return
        if problem:
            self.errors.append((where, problem))


_SCHEMA_URI = re.compile(r"Error when fetching schema (\S+?): ")
# pystac logs every failed validation with its traceback before raising it: the
# report says what failed, in one line per object.
logging.getLogger("pystac.validation.stac_validator").setLevel(logging.CRITICAL)


def validate_object(
    data: dict[str, Any], validator: JsonSchemaSTACValidator | None, href: str | None = None
) -> str | None:
    """None when `data` is valid, else the first error in one paragraph; raises
    `SchemaUnavailable` when a schema it needs cannot be fetched."""
    try:
        validate_dict(data, href=href, validator=validator or OnlineValidator())
    except GetSchemaError as exc:
        found = _SCHEMA_URI.search(str(exc))
        raise SchemaUnavailable(found.group(1) if found else str(exc)) from None
    except STACValidationError as exc:
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


def validate_catalog(
    href: str, validator: JsonSchemaSTACValidator | None = None, storage: StorageOptions | None = None
) -> ValidationReport:
    """Validate every object reachable from the static catalogue at `href`."""
    report = ValidationReport()
    validator = validator or OnlineValidator()
    for obj in walk_catalog(href, storage):
        report.check(
            obj.to_dict(transform_hrefs=False), validator, obj.get_self_href() or obj.id, href=obj.get_self_href()
        )
    return report


def _pages(client: httpx.Client, first: str, key: str) -> Iterator[dict[str, Any]]:
    """Every entry of a paginated STAC API list, following `next` links."""
    url: str | None = first
    while url:
        page = client.get(url)
        page.raise_for_status()
        body = page.json()
        yield from body.get(key, [])
        url = next(
            (
                link["href"]
                for link in body.get("links", [])
                if link.get("rel") == "next" and link.get("method", "GET") == "GET"
            ),
            None,
        )


def is_api(landing: dict[str, Any]) -> bool:
    return "conformsTo" in landing and any(link.get("rel") == "data" for link in landing.get("links", []))


def validate_api(
    url: str, validator: JsonSchemaSTACValidator | None = None, *, page_size: int = 100
) -> ValidationReport:
    """Validate every collection of a STAC API, and every item of each."""
    report = ValidationReport()
    validator = validator or OnlineValidator()
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        base = url.rstrip("/")
        for collection in _pages(client, f"{base}/collections?limit={page_size}", "collections"):
            report.check(collection, validator, f"{base}/collections/{collection.get('id')}")
            items_url = f"{base}/collections/{collection['id']}/items?limit={page_size}"
            for item in _pages(client, items_url, "features"):
                report.check(item, validator, f"{base}/collections/{collection['id']}/items/{item.get('id')}")
    return report


def validate_any(
    href: str, validator: JsonSchemaSTACValidator | None = None, storage: StorageOptions | None = None
) -> ValidationReport:
    """A static catalogue (folder, catalog.json, bucket URL) or a STAC API landing page."""
    if href.startswith(("http://", "https://")):
        landing = httpx.get(href, timeout=60, follow_redirects=True).json()
        if is_api(landing):
            return validate_api(href, validator)
    return validate_catalog(href, validator, storage)
