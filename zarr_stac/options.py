"""The command line's options, each defined once, and what they become.

Each flag is an `Annotated` type (its names, environment variables, help). Flags that
commands take together are an option group (`ReadFlags`, `StorageFlags`, `ScaleFlags`): a
command names the group once (`storage: StorageFlags`), `grouped` gives typer the group's
flags in its place and hands the command the group, built from them, with the names of the
flags typed on the command line. What the flags become: `StorageFlags.options()` (a
`StorageOptions`), `ScaleFlags.scale()` (a crawl's `Scale`), `mapping_config` (the sources:
a URL, or a configuration file completed by the flags).

Only typer and click at import time (see `zarr_stac.cli`).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from typer.models import OptionInfo

from .reporting import err, escape

if TYPE_CHECKING:
    from zarr_stac.common.storage import StorageOptions
    from zarr_stac.loaders.config import MappingConfig
    from zarr_stac.loaders.running.crawl import Scale

# -- object storage ----------------------------------------------------------------------
EndpointUrl = Annotated[
    Optional[str],
    typer.Option(
        "--endpoint-url",
        envvar=["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
        help="S3-compatible endpoint (MinIO, Ceph, Swift's S3 API, ...).",
    ),
]
Anon = Annotated[bool, typer.Option("--anon", help="Read without credentials (public buckets).")]
PublicAnon = Annotated[
    Optional[bool],
    typer.Option(
        "--public-anon/--no-public-anon",
        help="What the published assets tell readers to use (default: same as --anon).",
    ),
]
Profile = Annotated[
    Optional[str], typer.Option("--profile", envvar="AWS_PROFILE", help="Named profile from ~/.aws/config.")
]
Region = Annotated[
    Optional[str], typer.Option("--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], help="Region of the bucket.")
]
Timeout = Annotated[
    Optional[float],
    typer.Option(
        "--timeout",
        envvar="ZARR_STAC_TIMEOUT",
        min=0.1,
        help="Seconds per object-store connection or read before a retry (default 30).",
        show_default=False,
    ),
]
Retries = Annotated[
    Optional[int],
    typer.Option(
        "--retries",
        envvar="ZARR_STAC_RETRIES",
        min=0,
        help="Retries per object-store request, with exponential backoff and jitter (default 5).",
        show_default=False,
    ),
]

# -- scale -------------------------------------------------------------------------------
Workers = Annotated[int, typer.Option("--workers", min=1, help="Prefixes listed at once during discovery.")]
Concurrency = Annotated[
    int,
    typer.Option("--concurrency", min=1, help="Stores read at once per process (their requests are issued together)."),
]
Processes = Annotated[
    Optional[int],
    typer.Option(
        "--processes",
        min=1,
        help="Worker processes for the mapping, which is CPU-bound (default: one per CPU on large crawls).",
    ),
]
DaskScheduler = Annotated[
    Optional[str],
    typer.Option(
        "--dask-scheduler",
        envvar="DASK_SCHEDULER_ADDRESS",
        help="Run the crawl on this Dask cluster (e.g. tcp://scheduler:8786).",
    ),
]
DaskGateway = Annotated[
    Optional[str],
    typer.Option(
        "--dask-gateway",
        help=(
            "Run the crawl on a cluster created on this Dask Gateway (its URL, or 'config' for dask's "
            "gateway.address, e.g. DASK_GATEWAY__ADDRESS); auth from dask config "
            "(DASK_GATEWAY__AUTH__TYPE, JUPYTERHUB_API_TOKEN)."
        ),
        show_default=False,
    ),
]
# Not --workers, which is discovery's listing threads: these are Dask worker processes.
GatewayWorkers = Annotated[int, typer.Option("--gateway-workers", min=1, help="Workers of the --dask-gateway cluster.")]

# -- the database ------------------------------------------------------------------------
Dsn = Annotated[
    Optional[str],
    typer.Option(
        "--dsn",
        envvar="DATABASE_URL",
        help=(
            "postgresql://USER:PASSWORD@HOST:PORT/DB of a pgstac database (default: the local cluster under "
            "--data-dir)."
        ),
        show_default=False,
    ),
]
DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="ZARR_STAC_DATA_DIR", help="Where the local cluster and demo files live.")
]
DEFAULT_DATA_DIR = Path(".data")

# -- what to crawl -----------------------------------------------------------------------
AssetColumn = Annotated[
    Optional[str],
    typer.Option(
        "--asset-column",
        help="CSV inputs: the column of store URLs (default zstore; an intake-esm JSON names its own).",
    ),
]
Config = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        "-c",
        envvar="ZARR_STAC_CONFIG",
        help=(
            "Mapping configuration (YAML): sources, templates, collections. Replaces URL; storage flags given "
            "with it apply to the sources that do not set them."
        ),
    ),
]
Full = Annotated[
    bool,
    typer.Option(
        "--full",
        help=(
            "Re-read every store. By default a store whose metadata document is unchanged since the last run "
            "(same MD5, same configuration) keeps its Item without being read."
        ),
    ),
]
Strict = Annotated[bool, typer.Option("--strict", help="Exit with status 1 when any store was skipped.")]


# -- option groups -----------------------------------------------------------------------
class OptionGroup:
    """Flags several commands take together: a dataclass whose fields annotated with a
    `typer.Option` are the flags (see `grouped`); `given` names those typed on the command line."""

    given: frozenset[str]


# zarr-stac's own variables count as given: they are meant for every source (the AWS_* ones
# botocore reads itself, for an S3 source that sets nothing).
OWN_VARIABLES = frozenset({"timeout", "retries"})


@dataclasses.dataclass(frozen=True)
class ReadFlags(OptionGroup):
    """How to reach object storage."""

    endpoint_url: EndpointUrl = None
    anon: Anon = False
    profile: Profile = None
    region: Region = None
    timeout: Timeout = None
    retries: Retries = None
    given: frozenset[str] = frozenset()

    def options(self) -> StorageOptions:
        """These settings as `StorageOptions`, with the limits the environment sets (ZARR_STAC_MAX_*_MB);
        a limit that is not a positive number: one line, exit status 2."""
        # Keys are never flags (they would show in `ps`): botocore reads AWS_ACCESS_KEY_ID,
        # AWS_SECRET_ACCESS_KEY and profiles itself.
        from zarr_stac.common.storage import StorageOptions, limits_from_environment

        settings = {name: getattr(self, name) for name in _flags_of(type(self))}
        for name in ("timeout", "retries"):  # unset: the defaults of StorageOptions
            if settings[name] is None:
                del settings[name]
        try:  # what one store or input may cost: see loaders.limits
            settings.update(limits_from_environment())
        except ValueError as exc:
            err.print(f"[red]{escape(str(exc))}[/]", highlight=False)
            raise typer.Exit(2) from None
        return StorageOptions(**settings)


@dataclasses.dataclass(frozen=True)
class StorageFlags(ReadFlags):
    """How to reach object storage, and what published assets tell readers."""

    public_anon: PublicAnon = None


@dataclasses.dataclass(frozen=True)
class ScaleFlags(OptionGroup):
    """How a crawl is spread."""

    workers: Workers = 16
    concurrency: Concurrency = 64
    processes: Processes = None
    dask_scheduler: DaskScheduler = None
    dask_gateway: DaskGateway = None
    gateway_workers: GatewayWorkers = 2
    given: frozenset[str] = frozenset()

    def scale(self) -> Scale:
        from zarr_stac.loaders.running.crawl import Scale

        return Scale(
            self.workers, self.concurrency, self.processes, self.dask_scheduler, self.dask_gateway, self.gateway_workers
        )


def _flags_of(group: type[OptionGroup]) -> dict[str, tuple[Any, Any]]:
    """{field: (its Annotated type, default)} of the fields of `group` that are flags."""
    hints = typing.get_type_hints(group, include_extras=True)
    return {
        field.name: (hints[field.name], field.default)
        for field in dataclasses.fields(group)  # type: ignore[arg-type]
        if any(isinstance(meta, OptionInfo) for meta in getattr(hints[field.name], "__metadata__", ()))
    }


Command = TypeVar("Command", bound=Callable[..., Any])


def grouped(command: Command) -> Command:
    """`command` as typer sees it: each parameter whose type is an `OptionGroup` stands for the
    group's flags; the command is called with the group, made of them."""
    signature = inspect.signature(command, eval_str=True)
    groups: dict[str, tuple[type[OptionGroup], list[str]]] = {}
    # typer hands the click context to a parameter of this type: it says where each value came from.
    parameters = [inspect.Parameter(_CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
    for parameter in signature.parameters.values():
        group = parameter.annotation
        if not (isinstance(group, type) and issubclass(group, OptionGroup)):
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            continue
        flags = _flags_of(group)
        groups[parameter.name] = (group, list(flags))
        parameters += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, (annotation, default) in flags.items()
        ]

    def run(**values: Any) -> Any:
        context: typer.Context = values.pop(_CONTEXT)
        for name, (group, flags) in groups.items():
            settings = {flag: values.pop(flag) for flag in flags}
            given = frozenset(flag for flag in flags if _given(context, flag))
            values[name] = group(**settings, given=given)  # type: ignore[call-arg]
        return command(**values)

    # typer reads the parameters from the signature and their types from the annotations.
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    run.__name__, run.__qualname__, run.__doc__ = command.__name__, command.__qualname__, command.__doc__
    run.__module__ = command.__module__
    return typing.cast(Command, run)


_CONTEXT = "_typer_context"


def _given(context: typer.Context, flag: str) -> bool:
    """Whether the command was given `flag`: typed on the command line, or one of zarr-stac's own
    variables (`OWN_VARIABLES`). (Compared by name: typer's click is its own.)"""
    source = context.get_parameter_source(flag)
    name = source.name if source is not None else None
    return name == "COMMANDLINE" or (flag in OWN_VARIABLES and name == "ENVIRONMENT")


# -- what to crawl -----------------------------------------------------------------------
def mapping_config(
    url: str | None,
    config: Path | None,
    storage: StorageOptions,
    asset_column: str | None = None,
    given: Collection[str] = (),
) -> MappingConfig:
    """The sources to crawl: a configuration file, or one URL with the defaults.

    A configuration's sources take the storage settings the command was `given` (flags typed on
    the command line, zarr-stac's own variables) and the limits the environment sets (in
    `storage`), each where the source's own `storage` does not set it."""
    from zarr_stac.common.storage import LIMIT_VARIABLES
    from zarr_stac.loaders.config import CatalogueConfig, ConfigError, default_config, load_config
    from zarr_stac.loaders.limits import limit_bytes

    if (url is None) == (config is None):
        err.print("[red]give either a URL to crawl or --config FILE (not both)[/]")
        raise typer.Exit(2)
    try:
        if config is None:
            assert url is not None  # one of the two, checked above
            return default_config(url, storage, CatalogueConfig(asset_column=asset_column))
        mapping = load_config(config, limit_bytes(storage.max_input_mb))
    except ConfigError as exc:
        err.print(f"[red]invalid configuration: {escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    names = set(given) | {name for name in LIMIT_VARIABLES if name in storage.model_fields_set}
    settings = {name: getattr(storage, name) for name in sorted(names)}
    for source in mapping.sources:
        unset = {name: value for name, value in settings.items() if name not in source.storage.model_fields_set}
        if unset:
            source.storage = source.storage.model_copy(update=unset)
    if asset_column:  # for the sources whose configuration does not name one
        for source in mapping.sources:
            if source.catalogue.asset_column is None:
                source.catalogue = source.catalogue.model_copy(update={"asset_column": asset_column})
    return mapping
