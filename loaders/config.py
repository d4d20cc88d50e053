"""The mapping configuration: which stores go where in the catalogue, and how.

A YAML file (see docs/mapping-config.md for every field), validated on load with
errors that name the file and the field:

```yaml
catalog: {id: my-centre, title: My data centre}
sources:
  - url: s3://climate/cmip6/            # prefix, or a .txt/.csv/.json/.yaml input
    storage:                             # how to crawl; secrets from the environment
      endpoint_url: https://s3.example.org
      key: ${CMIP6_KEY}                  # secret: used to crawl, never published
      secret: ${CMIP6_SECRET}
      public_anon: true                  # readers need no keys
    public_href:                         # publish HTTPS, keep s3:// as an alternate
      prefix: s3://climate/
      public: https://objects.example.org/climate/
    path_template: "{source_id}/{experiment_id}/{member_id}/{table_id}/{variable_id}/{grid_label}/v{version}"
    item_id: "{source_id}.{experiment_id}.{member_id}.{table_id}.{variable_id}.{grid_label}"
    collection:
      id: cmip6-{table_id}
      title: CMIP6 {table_id}
      license: CC-BY-4.0
```

Without a configuration file every input is one source with the defaults: one
collection per top-level prefix, item ids from the path.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from zarr_stac.common.layout import STORE_SUFFIXES, Placement, default_placement, path_item_id, safe_id
from zarr_stac.common.stac import (
    DEFAULT_CATALOG_DESCRIPTION,
    DEFAULT_CATALOG_ID,
    DEFAULT_CATALOG_TITLE,
    RESERVED_PROPERTIES,
)
from zarr_stac.common.storage import StorageOptions, origin_of, redacted, relative_key, strip_url

from .limits import INPUT_SETTING, TooLarge, limit_bytes, load_yaml, read_bounded
from .vocabulary import CollectionHint

# What an `item_description` template may use besides the path-template fields.
ITEM_DESCRIPTION_FIELDS = ("title", "id", "href", "kind", "python")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    """An invalid mapping configuration; the message names the file and field."""


def template_fields(template: str) -> list[str]:
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    for name in fields:
        if not name.isidentifier():
            raise ValueError(f"template {template!r}: {{{name}}} is not a plain field name")
    return fields


class PathTemplate:
    """`{a}/{b}/v{version}` matched against a store path below its source."""

    def __init__(self, template: str):
        self.template = template.strip("/")
        self.fields = template_fields(self.template)
        if len(set(self.fields)) != len(self.fields):
            raise ValueError(f"path template {template!r} repeats a field")
        pattern = ""
        for literal, name, _, _ in string.Formatter().parse(self.template):
            pattern += re.escape(literal)
            if name is not None:
                pattern += f"(?P<{name}>[^/]+?)"  # lazy: a trailing .zarr is not part of the field
        self.regex = re.compile(pattern + "(?:" + "|".join(map(re.escape, STORE_SUFFIXES)) + ")?/?")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(path.strip("/"))
        return found.groupdict() if found else None


class Provider(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    roles: list[str] | None = None
    url: str | None = None
    description: str | None = None


class CollectionConfig(BaseModel):
    """Templates over path-template fields; unset fields default from CF/ACDD attributes."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    title: str | None = None
    description: str | None = None
    license: str | None = None
    keywords: list[str] | None = None
    providers: list[Provider] | None = None
    # Append to the description the lines of Python that open one of its stores.
    open_instructions: bool = True


class HrefRewrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = Field(description="Start of the crawled URL, e.g. s3://bucket/")
    public: str = Field(description="What readers use instead, e.g. https://objects.example.org/bucket/")
    name: str = Field("HTTPS", description="alternate:name of the public form")

    def apply(self, url: str) -> str | None:
        if not url.startswith(self.prefix):
            return None
        return self.public + url[len(self.prefix) :]


class CatalogueConfig(BaseModel):
    """How catalogue inputs (intake YAML, intake-esm JSON, CSV) become collections and items."""

    model_config = ConfigDict(extra="forbid")
    # intake: a collection per catalogue that holds the sources (`leaf`), per entry of the
    # input catalogue (`top`), or the default placement by path (`none`).
    collections: Literal["leaf", "top", "none"] = "leaf"
    # ESM/CSV: the columns whose values name a row's collection (default: the ESM's
    # aggregation_control.groupby_attrs; [] for the default placement by path).
    groupby: list[str] | None = None
    # CSV: the column of store URLs (default `zstore`; an ESM JSON names its own).
    asset_column: str | None = None
    max_depth: int = Field(16, ge=1, description="Nested catalogues followed this deep at most")
    max_expansions: int = Field(1000, ge=1, description="Stores one templated entry may expand to at most")
    # CSV and ESM tables are untrusted (see limits): a wider header, or a longer line (a gzip
    # bomb of one endless line), refuses the table.
    max_columns: int = Field(1000, ge=1, description="Columns a table may have at most")
    max_row_kb: int = Field(1024, ge=1, description="KiB one line of a table may hold at most")


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    # What serves `url` when it is not a plain store or prefix: `xpublish` lists the
    # server's /datasets (detected without this, when the URL is no Zarr store).
    server: Literal["xpublish"] | None = None
    storage: StorageOptions = StorageOptions()
    # Published as the asset's xarray:storage_options instead of the derived ones.
    public_storage_options: dict[str, Any] | None = None
    public_href: HrefRewrite | None = None
    path_template: str | None = None
    item_id: str | None = None
    collection: CollectionConfig = CollectionConfig()
    properties: dict[str, Any] = Field(default_factory=dict, description="Added to every item")
    # Each Item's markdown description (stac-browser shows it): true, the lines of Python
    # that open the store; false, none; a string, a template (see docs/mapping-config.md).
    item_description: bool | str = True
    catalogue: CatalogueConfig = CatalogueConfig()

    @field_validator("properties")
    @classmethod
    def _no_reserved_properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The Item's own fields are the mapping's (its id, its times): a property may not say otherwise.
        if reserved := sorted(set(value) & RESERVED_PROPERTIES):
            raise ValueError(f"{reserved[0]!r} is a field of every Item, not a property that may be set")
        return value

    @field_validator("path_template")
    @classmethod
    def _check_path_template(cls, value: str | None) -> str | None:
        if value is not None:
            PathTemplate(value)
        return value

    @model_validator(mode="after")
    def _credentials_out_of_the_url(self) -> SourceConfig:
        """A URL's credentials are used to read it, never published: they move into `storage`
        (see `StorageOptions.for_url`); HTTP credentials configured go to this URL's origin only."""
        url, storage = self.storage.for_url(self.url)
        if storage.http_origin is None and any(
            getattr(storage, name) is not None for name in ("http_username", "http_password", "http_query")
        ):
            storage = storage.model_copy(update={"http_origin": origin_of(url)})
        if url != self.url or storage is not self.storage:
            self.url, self.storage = url, storage
        return self

    @model_validator(mode="after")
    def _templates_use_known_fields(self) -> SourceConfig:
        known = set(PathTemplate(self.path_template).fields) if self.path_template else set()
        description = self.item_description if isinstance(self.item_description, str) else None
        templates = (
            ("item_id", self.item_id),
            ("collection.id", self.collection.id),
            ("collection.title", self.collection.title),
            ("collection.description", self.collection.description),
            ("item_description", description),
        )
        for where, template in templates:
            if template is None:
                continue
            allowed = known | set(ITEM_DESCRIPTION_FIELDS) if where == "item_description" else known
            unknown = [f for f in template_fields(template) if f not in allowed]
            if unknown:
                defined = ", ".join(sorted(allowed)) or "none: set path_template"
                raise ValueError(
                    f"{where} uses {{{unknown[0]}}}, which path_template does not define (defined: {defined})"
                )
        return self

    @property
    def template(self) -> PathTemplate | None:
        return PathTemplate(self.path_template) if self.path_template else None

    def place(
        self, root: str, url: str, name: str | None = None, hint: CollectionHint | None = None
    ) -> tuple[Placement, dict[str, str]]:
        """Collection id, item id and path-template properties of one store.

        `hint` is the collection a catalogue input suggests; `collection.id` overrides it.
        Raises ValueError when the store's path does not fit the template.
        """
        default = default_placement(root, url)
        if hint is not None:
            default = Placement(safe_id(hint.id), path_item_id(root, url))
        if name:
            default = Placement(default.collection_id, safe_id(name))
        fields: dict[str, str] = {}
        if self.template is not None:
            path = relative_key(root, url)
            matched = self.template.match(path)
            if matched is None:
                raise ValueError(f"path {path!r} does not match path_template {self.template.template!r}")
            fields = matched
        if self.collection.id:
            collection_id = safe_id(self.collection.id.format(**fields))
            # The first path segment no longer names the collection: keep it in the id.
            default = Placement(collection_id, safe_id(name) if name else path_item_id(root, url))
        collection_id = default.collection_id
        item_id = safe_id(self.item_id.format(**fields)) if self.item_id else default.item_id
        return Placement(collection_id, item_id), fields


class CatalogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = DEFAULT_CATALOG_ID
    title: str = DEFAULT_CATALOG_TITLE
    description: str = DEFAULT_CATALOG_DESCRIPTION


class MappingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    catalog: CatalogConfig = CatalogConfig()
    sources: list[SourceConfig] = Field(min_length=1)


def _interpolate(value: Any, where: str) -> Any:
    """Replace ${VAR} with the environment's value (so files need not hold secrets)."""
    if isinstance(value, str):

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with a YAML file and where, without PyYAML's quote of the offending
    lines: they may hold a secret (`secret: "...` with its closing quote missing)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    parts = []
    for what, mark in ((exc.context, exc.context_mark), (exc.problem, exc.problem_mark)):
        if what:
            what = re.sub(r"'(?!<)[^']{5,}'", "'...'", what)  # a tag or alias name may be a secret
            parts.append(f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else what)
    return ": ".join(parts) or "syntax error"


def load_config(path: str | Path, max_bytes: int | None = None) -> MappingConfig:
    """The configuration in the YAML file `path` (read at most `max_bytes` far: by default
    `storage.max_input_mb`); ConfigError, one line naming the file, if it is unusable."""
    path = Path(path)
    limit = max_bytes or limit_bytes(StorageOptions().max_input_mb)
    try:
        with path.open("rb") as handle:
            text = read_bounded(handle, limit, "it", INPUT_SETTING).decode("utf-8")
        raw = load_yaml(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a configuration file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8): is it the configuration?") from None
    except TooLarge as exc:
        raise ConfigError(f"{path}: refused: {exc}") from None
    except OSError as exc:  # permission denied, a device, ...
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or type(exc).__name__}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'sources' list at the top")
    try:
        return MappingConfig.model_validate(_interpolate(raw, path.name))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problem(exc)}") from None


def validation_problem(exc: ValidationError) -> str:
    """The first problem pydantic found, as `where: message (and N more)`: the location
    and pydantic's message only, never the offending value (it may be a secret)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}"


def default_config(
    url: str, storage: StorageOptions | None = None, catalogue: CatalogueConfig | None = None
) -> MappingConfig:
    """One source with the defaults; raises ConfigError (the URL redacted) for credentials in
    the URL that cannot be used."""
    try:
        source = SourceConfig(
            url=strip_url(url), storage=storage or StorageOptions(), catalogue=catalogue or CatalogueConfig()
        )
    except ValidationError as exc:
        raise ConfigError(f"{redacted(url)}: {validation_problem(exc).removeprefix('(top level): ')}") from None
    return MappingConfig(sources=[source])
