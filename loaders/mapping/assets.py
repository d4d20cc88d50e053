"""The asset, `store` link and access fields through which clients open a store.

Follows the STAC Zarr best practices (radiantearth/stac-best-practices,
`best-practices-zarr.md`) and the extensions clients of 2026 read:

- media type `application/vnd.zarr; version=2|3`; a kerchunk reference (JSON file
  or parquet folder) is a virtual Zarr store: `application/vnd.zarr+kerchunk`, roles
  `data` and `virtual`, with `vrt:hrefs` (virtual-assets v1.0.0) naming the files it
  points into, each a `source` asset, when they are few enough to list;
- zarr v1.1.0 (`zarr:zarr_format`, `zarr:consolidated`, `zarr:node_type`) on Zarr stores;
- storage v2.0.0: `storage:schemes` (on the Item) and `storage:refs` on each asset
  and link, built from the *public* storage options only, like
  `xarray:storage_options` (xarray-assets, kept for the clients released before);
- a `store` link to the store (or to the reference file of a virtual store);
- a hierarchical store (arrays in groups, see `hierarchy`): an asset per group holding data
  variables, its href the group's URL; a pyramid's with `profile=multiscales` when declared;
- a markdown description with the lines of Python that open it (stac-browser hides
  the `xarray:*` fields), on by default, off or templated per source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pystac
from fsspec.core import split_protocol
from pystac.extensions.xarray_assets import XarrayAssetsExtension

from zarr_stac.common.storage import StorageOptions, is_remote, protocol_of, public_url

from ..config import SourceConfig
from ..markup import markdown_inline, markdown_text, plain_text
from ..reading.open import OpenedStore
from ..vocabulary import REFERENCE_KINDS as _REFERENCE_KINDS
from .multiscales import MULTISCALES_PROFILE

ASSET_KEY = "zarr"
REFERENCE_KINDS = frozenset(_REFERENCE_KINDS)

ZARR_MEDIA_TYPES = {2: "application/vnd.zarr; version=2", 3: "application/vnd.zarr; version=3"}
# The best practices' type for a kerchunk virtual store (its example Item), as ESGF publishes it.
KERCHUNK_MEDIA_TYPE = "application/vnd.zarr+kerchunk"
ZARR_ROLES = ["data", "zarr"]
# "references": the role xpystac and earlier zarr-stac releases gave kerchunk files.
REFERENCE_ROLES = ["data", "virtual", "references"]
SOURCE_ROLES = ["data", "source"]
MAX_SOURCE_ASSETS = 20  # a reference over more files lists none (an Item is not an inventory)

ZARR_SCHEMA = "https://stac-extensions.github.io/zarr/v1.1.0/schema.json"
STORAGE_SCHEMA = "https://stac-extensions.github.io/storage/v2.0.0/schema.json"
VIRTUAL_ASSETS_SCHEMA = "https://stac-extensions.github.io/virtual-assets/v1.0.0/schema.json"
ALTERNATE_ASSETS_SCHEMA = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"

AWS_S3_PLATFORM = "https://{bucket}.s3.{region}.amazonaws.com"
GCS_PLATFORM = "https://storage.googleapis.com"


def is_reference(kind: str) -> bool:
    return kind in REFERENCE_KINDS


def media_type_of(kind: str, zarr_format: int) -> str:
    return KERCHUNK_MEDIA_TYPE if is_reference(kind) else ZARR_MEDIA_TYPES[zarr_format]


def public_options(source: SourceConfig, href: str, storage: StorageOptions | None = None) -> dict[str, Any]:
    """What readers of `href` are told to use: never a secret, never a crawl-only endpoint.
    `storage`: the store's own options (a catalogue entry's), if not its source's."""
    if source.public_storage_options is not None:
        return dict(source.public_storage_options)
    return (storage or source.storage).public(href)


def _bucket(href: str) -> str:
    return urlsplit(href).netloc


def storage_scheme(href: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(key, storage scheme) of the object store `href` is in, from public options only."""
    protocol = protocol_of(href)
    bucket = _bucket(href)
    if protocol in ("s3", "s3a") and bucket:
        client_kwargs = options.get("client_kwargs") or {}
        endpoint = options.get("endpoint_url") or client_kwargs.get("endpoint_url")
        region = client_kwargs.get("region_name")
        if endpoint:
            # Swift's S3 API, MinIO, Ceph...: the endpoint is the platform.
            scheme: dict[str, Any] = {"type": "custom-s3", "platform": str(endpoint).rstrip("/"), "bucket": bucket}
            key = f"custom-s3-{urlsplit(str(endpoint)).netloc}-{bucket}"
        else:
            scheme = {"type": "aws-s3", "platform": AWS_S3_PLATFORM, "bucket": bucket}
            key = f"aws-s3-{bucket}"
        if region:
            scheme["region"] = str(region)
        if options.get("requester_pays"):
            scheme["requester_pays"] = True
        return key, scheme
    if protocol in ("gs", "gcs") and bucket:
        return f"gcs-{bucket}", {"type": "gcs", "platform": GCS_PLATFORM, "bucket": bucket}
    return None


def open_kwargs_of(opened: OpenedStore) -> dict[str, Any]:
    """`xarray:open_kwargs`: what `xr.open_dataset(href, **open_kwargs)` needs."""
    if is_reference(opened.ref.kind):
        return {"engine": "kerchunk", "chunks": {}}
    return {"engine": "zarr", "consolidated": opened.consolidated, "chunks": {}}


def xarray_storage_options(opened: OpenedStore, href: str, options: dict[str, Any]) -> dict[str, Any]:
    """`xarray:storage_options` for `href`: kerchunk's engine wants the reference
    filesystem's options (the referenced files are in the same object store)."""
    if is_reference(opened.ref.kind):
        # The reference filesystem's own options too (e.g. simple_templates=False for
        # spec v1 `gen` references), as the store was opened with.
        extra = dict(getattr(opened, "reference_options", {}) or {})
        if is_remote(href):
            return {
                "remote_protocol": protocol_of(href),
                "remote_options": dict(options),
                "target_options": dict(options),
                **extra,
            }
        return extra
    return dict(options)


def reference_sources(opened: OpenedStore) -> list[str] | None:
    """The files a kerchunk reference points into, when known (sorted), else None.

    Taken from the reference filesystem the store was opened through (no request): its
    in-memory references (JSON references; a parquet folder's are read lazily, so they
    stay unknown).
    """
    try:
        # xarray keeps the ZarrStore it read from as the dataset's closer.
        zarr_store = opened.dataset._close.__self__  # type: ignore[union-attr]  # noqa: SLF001
        references = zarr_store.zarr_group.store.fs.references
    except AttributeError:
        return None
    if not isinstance(references, dict):
        return None
    sources = set()
    for value in references.values():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            sources.add(value[0])
    return sorted(sources)


def _absolute_source(source: str, reference_url: str) -> str:
    """Reference targets without a protocol are in the reference's own object store."""
    protocol, _ = split_protocol(source)
    if protocol is None and is_remote(reference_url) and not source.startswith("/"):
        return f"{protocol_of(reference_url)}://{source}"
    return source


def python_recipe(
    href: str, open_kwargs: Mapping[str, Any], storage_options: Mapping[str, Any] | None, *, tree: bool = False
) -> str:
    """The few lines of Python that open `href` with xarray alone (`tree`: a hierarchy, whole,
    with `xr.open_datatree`, which takes the same arguments)."""
    arguments = [repr(href)] + [f"{name}={value!r}" for name, value in open_kwargs.items()]
    if storage_options:
        arguments.append(f"storage_options={dict(storage_options)!r}")
    call = "tree = xr.open_datatree(" if tree else "ds = xr.open_dataset("
    lines = ["import xarray as xr", "", call, *[f"    {a}," for a in arguments], ")"]
    return "\n".join(lines)


def default_description(title: str, kind: str, python: str, existing: str | None = None) -> str:
    """What the store is (or the description it came with: intake, CSV) and how to open it.

    `title` and `existing` are text from the store or its catalogue: escaped, so that the
    recipe is the description's only code block (see `markup`)."""
    what = "a virtual Zarr store (kerchunk references)" if is_reference(kind) else "a Zarr store"
    return (
        (f"{markdown_text(existing)}\n\n" if existing else f"{markdown_inline(title)}: {what}.\n\n")
        + "Open it with xarray (the asset `zarr` holds the same in `xarray:open_kwargs` and "
        "`xarray:storage_options`):\n\n"
        f"```python\n{python}\n```\n"
    )


def item_description(
    source: SourceConfig, *, title: str, item_id: str, href: str, kind: str, python: str, fields: Mapping[str, Any]
) -> str | None:
    """The Item's markdown description: the default, none, or the source's template.

    A template is the operator's markdown; the values it is filled with are escaped text."""
    setting = source.item_description
    existing = str(fields["description"]) if fields.get("description") else None
    if setting is False:
        return markdown_text(existing) if existing else None
    if setting is True:
        return default_description(title, kind, python, existing)
    values = {
        **{k: markdown_text(v) for k, v in fields.items()},
        "title": markdown_inline(title),
        "id": markdown_inline(item_id),
        "href": markdown_inline(href, limit=len(href)),
        "kind": kind,
        "python": f"```python\n{python}\n```",
    }
    # Its fields were checked against these when the configuration was read.
    return setting.format_map(values)


def build_asset(opened: OpenedStore, source: SourceConfig, title: str) -> pystac.Asset:
    """The asset xarray opens: `xr.open_dataset(href, **open_kwargs, storage_options=...)`.

    With `public_href` the public form (e.g. HTTPS) is the href and the crawled
    form (e.g. s3://) is kept as an alternate, each with the options it needs.
    `storage:refs` name the schemes of `storage_schemes_of`.
    """
    url = opened.ref.url
    kind = opened.ref.kind
    storage = opened.ref.storage
    roles = list(REFERENCE_ROLES if is_reference(kind) else ZARR_ROLES)
    rewrite = source.public_href
    public_href = rewrite.apply(url) if rewrite else None
    href = public_href or url
    asset = pystac.Asset(
        href=href, media_type=media_type_of(kind, opened.zarr_format), roles=roles, title=plain_text(title)
    )
    if not is_reference(kind):
        # Not on references: the href is not a Zarr store, and kerchunk's engine sets
        # zarr_format and consolidated itself (a client passing them again fails).
        asset.extra_fields.update(
            {
                "zarr:zarr_format": opened.zarr_format,
                "zarr:consolidated": opened.consolidated,
                "zarr:node_type": "group",
            }
        )
    asset.extra_fields["xarray:open_kwargs"] = open_kwargs_of(opened)
    if options := xarray_storage_options(opened, href, public_options(source, href, storage)):
        asset.extra_fields["xarray:storage_options"] = options
    if scheme := storage_scheme(href, public_options(source, href, storage)):
        asset.extra_fields["storage:refs"] = [scheme[0]]
    if rewrite and public_href:
        asset.extra_fields["alternate:name"] = rewrite.name
        alternate: dict[str, Any] = {"href": url, "alternate:name": protocol_of(url).upper()}
        if options := xarray_storage_options(opened, url, public_options(source, url, storage)):
            alternate["xarray:storage_options"] = options
        if scheme := storage_scheme(url, public_options(source, url, storage)):
            alternate["storage:refs"] = [scheme[0]]
        asset.extra_fields["alternate"] = {protocol_of(url): alternate}
    return asset


def add_group_asset(
    item: pystac.Item,
    opened: OpenedStore,
    source: SourceConfig,
    path: str,
    *,
    title: str,
    multiscales: bool = False,
    level: str | None = None,
) -> pystac.Asset:
    """Add the asset of the group at `path` of a hierarchical store: its href is the group's
    URL (STAC Zarr best practices: an asset per data group, pointing at it), which opens
    without consolidated metadata (a store consolidates it at its root only). `multiscales`:
    the group is a declared pyramid (`profile=multiscales`); `level`: the group (relative to
    it) that `xarray:open_kwargs` opens, the finest level of a pyramid."""
    group_ref = replace(opened.ref, url=f"{opened.ref.url.rstrip('/')}/{path}")
    asset = build_asset(replace(opened, ref=group_ref, consolidated=False), source, title)
    if multiscales:
        asset.media_type = f"{asset.media_type}; {MULTISCALES_PROFILE}"
    if level:
        asset.extra_fields["xarray:open_kwargs"] = {**asset.extra_fields["xarray:open_kwargs"], "group": level}
    key = path if path not in item.assets else f"{path} (group)"
    item.add_asset(key, asset)
    XarrayAssetsExtension.ext(asset, add_if_missing=True)
    return asset


def storage_schemes_of(
    source: SourceConfig, hrefs: list[str], storage: StorageOptions | None = None
) -> dict[str, dict[str, Any]]:
    schemes = {}
    for href in hrefs:
        if scheme := storage_scheme(href, public_options(source, href, storage)):
            schemes[scheme[0]] = scheme[1]
    return schemes


def add_access(
    item: pystac.Item, opened: OpenedStore, source: SourceConfig, *, title: str, fields: Mapping[str, Any] | None = None
) -> pystac.Asset:
    """Add the store's asset, its source files, the `store` link, storage schemes and
    the markdown description to `item`; declares the extensions they use."""
    asset = build_asset(opened, source, title)
    item.add_asset(ASSET_KEY, asset)
    XarrayAssetsExtension.ext(asset, add_if_missing=True)
    extensions = [] if is_reference(opened.ref.kind) else [ZARR_SCHEMA]
    hrefs = [asset.href] + [alt["href"] for alt in asset.extra_fields.get("alternate", {}).values()]

    if is_reference(opened.ref.kind):
        sources = reference_sources(opened)
        if sources and len(sources) <= MAX_SOURCE_ASSETS:
            refs = []
            for number, target in enumerate(sources, start=1):
                key = f"source-{number}"
                target = public_url(_absolute_source(target, opened.ref.url))  # a reference may hold signed URLs
                target = (source.public_href.apply(target) if source.public_href else None) or target
                source_asset = pystac.Asset(
                    href=target,
                    roles=list(SOURCE_ROLES),
                    title=plain_text(f"Referenced file {target.rsplit('/', 1)[-1]}"),
                )
                if scheme := storage_scheme(target, public_options(source, target, opened.ref.storage)):
                    source_asset.extra_fields["storage:refs"] = [scheme[0]]
                    hrefs.append(target)
                item.add_asset(key, source_asset)
                # A pointer with the Item's own file name: the schema's oneOf refuses a bare
                # "#/assets/..." (it is both an IRI reference and a fragment).
                refs.append({"key": key, "href": f"./{item.id}.json#/assets/{key}"})
            asset.extra_fields["vrt:hrefs"] = refs
            extensions.append(VIRTUAL_ASSETS_SCHEMA)

    store = pystac.Link(
        rel="store",
        target=asset.href,
        media_type=asset.media_type,
        title="Virtual Zarr store (kerchunk references)" if is_reference(opened.ref.kind) else "Zarr store",
    )
    if "storage:refs" in asset.extra_fields:
        store.extra_fields["storage:refs"] = list(asset.extra_fields["storage:refs"])
    item.add_link(store)

    if schemes := storage_schemes_of(source, hrefs, opened.ref.storage):
        item.properties["storage:schemes"] = schemes
        extensions.append(STORAGE_SCHEMA)
    if "alternate" in asset.extra_fields:
        extensions.append(ALTERNATE_ASSETS_SCHEMA)
    item.stac_extensions.extend(e for e in extensions if e not in item.stac_extensions)

    python = python_recipe(
        asset.href,
        asset.extra_fields["xarray:open_kwargs"],
        asset.extra_fields.get("xarray:storage_options"),
        tree=bool(opened.groups) and not is_reference(opened.ref.kind),
    )
    description = item_description(
        source, title=title, item_id=item.id, href=asset.href, kind=opened.ref.kind, python=python, fields=fields or {}
    )
    if description:
        item.properties["description"] = description
    return asset
