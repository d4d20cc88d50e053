"""Intake catalogues (YAML) as data centres keep them: every entry ends as a store or a report.

- Zarr sources (`driver: zarr`, intake-xarray's zarr source, an xarray/netcdf source
  with `engine: zarr`) are stores; kerchunk references (`engine: kerchunk`,
  `urlpath: reference://` with `storage_options.fo`, `reference::URL` chains) are
  virtual stores; `urlpath` may be a list (one store per URL).
- Nested catalogues (`driver: yaml_file_cat` / `intake.catalog.local.YAMLFileCatalog`,
  `args.path: "{{ CATALOG_DIR }}/ocean.yaml"`) are followed to any depth, local or
  remote, each at most once (a loop or a second inclusion is reported, not followed).
- Templated entries (user `parameters` with `allowed`/`default`, Jinja in the args)
  expand to one store per allowed value (the default when there is no `allowed`
  list), the values becoming item properties.

Anything else (netcdf files, globs, other drivers, entries that cannot be expanded,
unreadable nested catalogues) is a `StoreFailure` naming the entry and why.
"""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from zarr_stac.common.storage import StorageOptions, protocol_of, redacted, strip_url

from ..config import CatalogueConfig
from ..failures import CATALOGUE_LOOP, INPUT, NOT_ZARR, TEMPLATE, StoreFailure
from ..limits import INPUT_SETTING, TooLarge, limit_bytes, load_yaml, read_bounded
from ..vocabulary import KERCHUNK, KERCHUNK_PARQUET, ZARR, CatalogueError, CollectionHint, StoreRef

ZARR_DRIVERS = {"zarr", "intake_xarray.xzarr.ZarrSource", "intake_xarray.ZarrSource", "xarray_zarr", "ndzarr"}
XARRAY_DRIVERS = {
    "xarray", "netcdf", "opendap", "intake_xarray.xarray.XArraySource", "intake_xarray.NetCDFSource",
    "intake_xarray.netcdf.NetCDFSource", "intake_xarray.opendap.OpenDapSource",
}  # fmt: skip
KERCHUNK_DRIVERS = {"kerchunk", "reference", "intake.source.reference.ReferenceSource"}
CATALOGUE_DRIVERS = {"yaml_file_cat", "intake.catalog.local.YAMLFileCatalog", "intake.catalog.local.YAMLFilesCatalog"}
# fsspec layers that cache on the reader's disk: the data is the URL beneath them.
CACHE_PROTOCOLS = {"simplecache", "filecache", "blockcache", "cached"}


class TemplateProblem(ValueError):
    """A templated entry that cannot be expanded; the message says why."""


def read_text(url: str, storage: StorageOptions) -> str:
    """The text of a catalogue (compressed or not), read at most `storage.max_input_mb` far
    (`limits.TooLarge` beyond); UnicodeDecodeError if it is no UTF-8 text."""
    with storage.filesystem(url).open(url, "rb", compression="infer") as handle:
        return read_bounded(handle, limit_bytes(storage.max_input_mb), "it", INPUT_SETTING).decode("utf-8")


def resolve(path: str, base: str) -> str:
    """`path` as a URL: relative paths are below `base` (the catalogue's folder); `..` resolved."""
    path = path.strip()
    if path.startswith("file://"):
        path = path[len("file://") :]
    if "://" not in path and not path.startswith("/") and base:
        path = f"{base}/{path}"
    if "://" in path:
        protocol, rest = path.split("://", 1)
        return strip_url(f"{protocol}://{posixpath.normpath(rest)}")
    return strip_url(posixpath.normpath(path))


def catalogue_dir(url: str) -> str:
    return url.rsplit("/", 1)[0] if "/" in url else ""


def _scalars(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        return {}
    return {str(k): v for k, v in metadata.items() if isinstance(v, (str, int, float, bool))}


def _render(value: Any, context: dict[str, Any], environment) -> Any:
    """Jinja over every string of an entry's args, as intake renders them."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        import jinja2

        try:
            return environment.from_string(value).render(**context)
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(f"{value.strip()!r}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateProblem(f"{value.strip()!r}: {exc}") from None
    if isinstance(value, dict):
        return {k: _render(v, context, environment) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, context, environment) for v in value]
    return value


def _environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # Sandboxed, and without intake's env()/shell() helpers: a catalogue must not run
    # commands, nor copy environment variables (secrets) into published URLs.
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def parameter_values(entry: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Every combination of an entry's user parameters, and the names that vary.

    Each parameter takes each value of its `allowed` list, or else its default.
    """
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise TemplateProblem("'parameters' is not a mapping")
    names, choices, varying = [], [], []
    for name, spec in parameters.items():
        spec = spec if isinstance(spec, dict) else {}
        allowed = spec.get("allowed")
        if isinstance(allowed, list) and allowed:
            values = allowed
            varying.append(str(name))
        elif "default" in spec:
            values = [spec["default"]]
        else:
            raise TemplateProblem(f"parameter {name!r} has neither an 'allowed' list nor a default")
        names.append(str(name))
        choices.append(values)
    count = 1
    for values in choices:
        count *= len(values)
    if count > limit:
        raise TemplateProblem(
            f"{count} combinations of parameters {', '.join(names)} exceed the limit of {limit}"
            " (catalogue.max_expansions)"
        )
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)], varying


@dataclass
class _Walk:
    storage: StorageOptions
    config: CatalogueConfig
    root_url: str
    environment: Any = field(default_factory=_environment)
    seen: dict[str, str] = field(default_factory=dict)  # catalogue URL -> where it was first included


def read_intake(
    url: str, text: str, storage: StorageOptions, config: CatalogueConfig | None = None
) -> Iterator[StoreRef | StoreFailure]:
    """Every entry of the intake catalogue at `url` (text already read), as stores or reports.

    Raises CatalogueError when the catalogue itself is unusable.
    """
    catalog = _parse(url, text)
    walk = _Walk(storage=storage, config=config or CatalogueConfig(), root_url=url)
    walk.seen[url] = "the input"
    return _entries(walk, url, catalog, path=(), hint=None, depth=0)


def _parse(url: str, text: str) -> dict[str, Any]:
    try:
        catalog = load_yaml(text)
    except TooLarge as exc:
        raise CatalogueError(f"{url}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{url}: not valid YAML: {exc}") from None
    sources = catalog.get("sources") if isinstance(catalog, dict) else None
    if not isinstance(sources, dict):
        raise CatalogueError(f"{url}: not an intake catalogue (no 'sources' mapping)")
    return catalog


def _hint(walk: _Walk, path: tuple[str, ...], entry: dict[str, Any], catalog: dict[str, Any]) -> CollectionHint | None:
    """The collection of the sources of the nested catalogue at `path` (None at the top)."""
    mode = walk.config.collections
    if not path or mode == "none":
        return None
    metadata = found if isinstance(found := catalog.get("metadata"), dict) else {}
    description = entry.get("description") or catalog.get("description") or metadata.get("description")
    title = metadata.get("title") or path[-1]
    return CollectionHint(id=".".join(path), title=str(title), description=str(description) if description else None)


def _entries(
    walk: _Walk, url: str, catalog: dict[str, Any], path: tuple[str, ...], hint, depth: int
) -> Iterator[StoreRef | StoreFailure]:
    base = catalogue_dir(url)
    sources = catalog["sources"]
    if not sources:
        yield StoreFailure(url, INPUT, "the catalogue has no sources")
    for name, entry in sources.items():
        where = f"{url}#{name}"
        if not isinstance(entry, dict):
            yield StoreFailure(where, INPUT, f"entry {name!r} is not a mapping")
            continue
        driver = str(entry.get("driver", ""))
        try:
            combinations, varying = parameter_values(entry, walk.config.max_expansions)
            args = entry.get("args") or {}
            render = walk.environment
            expansions = [(values, _render(args, {"CATALOG_DIR": base, **values}, render)) for values in combinations]
        except TemplateProblem as exc:
            yield StoreFailure(where, TEMPLATE, f"entry {name!r} cannot be expanded: {exc}")
            continue
        if driver in CATALOGUE_DRIVERS:
            for _values, args in expansions:
                yield from _nested(walk, where, base, str(name), entry, args, path, depth, hint)
            continue
        for values, args in expansions:
            suffix = "".join(f".{k}-{values[k]}" for k in varying)
            yield from _source(walk, where, base, f"{name}{suffix}", path, entry, driver, args, values, hint)


def _nested(
    walk: _Walk, where: str, base: str, name: str, entry: dict, args: dict, path: tuple[str, ...], depth: int, hint
) -> Iterator[StoreRef | StoreFailure]:
    target = args.get("path")
    if not isinstance(target, str) or not target.strip():
        yield StoreFailure(where, INPUT, f"nested catalogue {name!r} has no 'args.path'")
        return
    try:
        child_url, child_storage = walk.storage.for_url(target.strip())
    except ValueError as exc:
        yield StoreFailure(where, INPUT, f"nested catalogue {name!r}: {exc}")
        return
    child_url = resolve(child_url, base)
    child_path = (*path, name)
    dotted = ".".join(child_path)
    if child_url in walk.seen:
        reason = f"nested catalogue {dotted!r} was already included as {walk.seen[child_url]}: followed once"
        yield StoreFailure(child_url, CATALOGUE_LOOP, reason)
        return
    if depth + 1 > walk.config.max_depth:
        reason = f"nested catalogue {dotted!r} is deeper than {walk.config.max_depth} levels (catalogue.max_depth)"
        yield StoreFailure(child_url, INPUT, reason)
        return
    walk.seen[child_url] = repr(".".join(child_path))
    try:
        text = read_text(child_url, child_storage)
    except FileNotFoundError:
        yield StoreFailure(child_url, INPUT, f"nested catalogue {dotted!r} (from {where}): no such file")
        return
    except TooLarge as exc:
        yield StoreFailure(child_url, INPUT, f"nested catalogue {dotted!r} (from {where}) refused: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - one unreadable catalogue must not hide the others
        reason = redacted(f"nested catalogue {dotted!r} (from {where}): {type(exc).__name__}: {exc}")
        yield StoreFailure(child_url, INPUT, reason)
        return
    try:
        catalog = _parse(child_url, text)
    except CatalogueError as exc:
        yield StoreFailure(child_url, INPUT, str(exc).removeprefix(f"{child_url}: "))
        return
    if walk.config.collections == "top" and path:
        child_hint = hint  # below the input's entries: their collection
    else:
        child_hint = _hint(walk, child_path, entry, catalog)
    # Its entries are read with its own credentials, if its URL held any (the same `seen`).
    yield from _entries(replace(walk, storage=child_storage), child_url, catalog, child_path, child_hint, depth + 1)


def _collection_path(walk: _Walk, path: tuple[str, ...]) -> tuple[str, ...]:
    """The part of an entry's path that its collection stands for."""
    return {"leaf": path, "top": path[:1], "none": ()}[walk.config.collections]


def _source(
    walk: _Walk, where, base, name, path, entry, driver, args, values, hint
) -> Iterator[StoreRef | StoreFailure]:
    urlpath = args.get("urlpath")
    engine = args.get("engine") or (args.get("xarray_kwargs") or {}).get("engine")
    options = args.get("storage_options") if isinstance(args.get("storage_options"), dict) else {}
    if driver in ZARR_DRIVERS or (driver in XARRAY_DRIVERS and engine == "zarr"):
        kind = ZARR
    elif driver in KERCHUNK_DRIVERS or (driver in XARRAY_DRIVERS and engine == "kerchunk"):
        kind = KERCHUNK
    else:
        what = f"driver {driver!r}" + (f" with engine {engine!r}" if engine else "")
        reason = f"entry {name!r}: {what} does not read Zarr or kerchunk references ({urlpath})"
        yield StoreFailure(where, NOT_ZARR, redacted(reason))
        return
    if isinstance(urlpath, str) and urlpath.startswith("reference://") and isinstance(options.get("fo"), str):
        urlpath, kind = options["fo"], KERCHUNK  # intake-xarray's way to open a kerchunk reference
        # The reference file is read with `target_options`, the files it points into with `remote_options`.
        inner = options.get("target_options") or options.get("remote_options")
        options = inner if isinstance(inner, dict) else {}
    urls = urlpath if isinstance(urlpath, list) else [urlpath]
    if not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        yield StoreFailure(where, INPUT, redacted(f"entry {name!r} has no usable 'urlpath' ({urlpath!r})"))
        return
    properties = {**_scalars(entry.get("metadata")), **_scalars(values)}
    if entry.get("description"):
        properties.setdefault("description", str(entry["description"]))
    consolidated = args.get("consolidated")
    many = len(urls) > 1
    for index, raw in enumerate(urls):
        try:
            url, store_kind, storage = store_url(raw.strip(), base, kind, walk.storage)
            # As intake opens the entry: with its storage_options (see StorageOptions.with_catalogue_options).
            storage = storage.with_catalogue_options(options, url)
        except ValueError as exc:
            yield StoreFailure(where, INPUT, redacted(f"entry {name!r}: {exc}"))
            continue
        item_name = name if not many else f"{name}.{index}"
        # Unique within its collection: the entry's path below what the collection stands for.
        below = path[len(_collection_path(walk, path)) :]
        yield StoreRef(
            url=url,
            kind=store_kind,
            consolidated=consolidated if isinstance(consolidated, bool) and store_kind == ZARR else None,
            name=".".join((*below, item_name)),
            properties=properties,
            collection=hint,
            storage=storage,
        )


def store_url(url: str, base: str, kind: str, storage: StorageOptions) -> tuple[str, str, StorageOptions]:
    """The URL and kind of a store from an fsspec URL, chained or not, and the options that
    read it (`storage`, with the credentials the URL held: see `StorageOptions.for_url`).

    Local cache layers (`simplecache::`) are dropped: the data is the URL beneath,
    and that is what readers of the catalogue open. `reference::URL` is a kerchunk
    reference at URL (JSON, or a parquet folder). Raises ValueError otherwise.
    """
    layers = url.split("::")
    while len(layers) > 1 and layers[0].split("://")[0] in CACHE_PROTOCOLS:
        layers = layers[1:]
    if len(layers) > 1:
        head = layers[0].split("://")[0]
        if head != "reference":
            raise ValueError(f"the fsspec chain {url!r} ({head}::) is not supported")
        layers, kind = layers[1:], KERCHUNK
        if len(layers) > 1:
            raise ValueError(f"the fsspec chain {url!r} has more than one layer below reference::")
    target = layers[0]
    for protocol in CACHE_PROTOCOLS:
        target = target.removeprefix(f"{protocol}://")
    target, storage = storage.for_url(target)  # before `resolve`: a query is no path to normalise
    if any(c in target for c in "*?[") and protocol_of(target) not in ("http", "https"):
        raise ValueError(f"{target!r} is a glob pattern, not a store")
    resolved = resolve(target, base)
    if kind == KERCHUNK and not resolved.endswith((".json", ".json.gz", ".json.zst")):
        kind = KERCHUNK_PARQUET
    return resolved, kind, storage
