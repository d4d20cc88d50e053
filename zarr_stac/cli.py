"""The `zarr-stac` command line: it composes loaders, static_catalog and stac_api."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape as escape_markup

# Only typer and rich at import time: `zarr-stac --help` (and every one-line error)
# must not wait for xarray, s3fs and pystac. Each command imports what it uses.
if TYPE_CHECKING:
    import pystac

    from zarr_stac.common.storage import StorageOptions
    from zarr_stac.loaders.config import MappingConfig
    from zarr_stac.loaders.running.crawl import CrawlResult, Scale

# An unexpected error prints a traceback, never its frames' local variables: they hold
# DSNs with passwords and keys (older Typer releases show them by default).
app = typer.Typer(
    help="Publish Zarr stores in object storage as a STAC catalogue (static JSON and a pgstac API).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(
    help="The project-managed PostgreSQL cluster (PostGIS + pgstac) on loopback.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_app, name="db")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

# -- options shared by commands that read object storage ------------------------------
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
        help="Mapping configuration (YAML): sources, templates, collections. Replaces URL.",
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
DEFAULT_DATA_DIR = Path(".data")


# Characters that would act on the terminal instead of being shown (escape sequences, bidi
# overrides, invisible format characters): store names and catalogue files are untrusted.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def terminal_safe(text: str) -> str:
    """`text` with every character that could act on the terminal written as its escape."""
    return _TERMINAL_UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def escape(text: str) -> str:
    """`text` as rich prints it literally: markup escaped, terminal controls made visible."""
    return escape_markup(terminal_safe(text))


def shown(text: str) -> str:
    """A URL, or a message quoting URLs, as printed: credentials hidden, markup escaped."""
    from zarr_stac.common.storage import redacted

    return escape(redacted(text))


def storage_options(
    endpoint_url: str | None,
    anon: bool,
    profile: str | None,
    region: str | None,
    public_anon: bool | None = None,
    timeout: float | None = None,
    retries: int | None = None,
) -> StorageOptions:
    # Keys are never flags (they would show in `ps`): botocore reads AWS_ACCESS_KEY_ID,
    # AWS_SECRET_ACCESS_KEY and profiles itself.
    from zarr_stac.common.storage import StorageOptions, limits_from_environment

    tuning = {name: value for name, value in (("timeout", timeout), ("retries", retries)) if value is not None}
    try:  # what one store or input may cost: ZARR_STAC_MAX_*_MB (see loaders.limits)
        tuning.update(limits_from_environment())
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(2) from None
    return StorageOptions(
        endpoint_url=endpoint_url, anon=anon, profile=profile, region=region, public_anon=public_anon, **tuning
    )


def mapping_config(
    url: str | None, config: Path | None, storage: StorageOptions, asset_column: str | None = None
) -> MappingConfig:
    """The sources to crawl: a configuration file, or one URL with the defaults. The limits the
    environment sets (in `storage`) apply to the file, and to its sources that set none."""
    from zarr_stac.common.storage import LIMIT_VARIABLES
    from zarr_stac.loaders.config import CatalogueConfig, ConfigError, default_config, load_config
    from zarr_stac.loaders.limits import limit_bytes

    if (url is None) == (config is None):
        err.print("[red]give either a URL to crawl or --config FILE (not both)[/]")
        raise typer.Exit(2)
    try:
        if config is None:
            return default_config(url, storage, CatalogueConfig(asset_column=asset_column))
        mapping = load_config(config, limit_bytes(storage.max_input_mb))
    except ConfigError as exc:
        err.print(f"[red]invalid configuration: {escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    limits = {name: getattr(storage, name) for name in LIMIT_VARIABLES if name in storage.model_fields_set}
    for source in mapping.sources:
        unset = {name: value for name, value in limits.items() if name not in source.storage.model_fields_set}
        if unset:
            source.storage = source.storage.model_copy(update=unset)
    if asset_column:  # for the sources whose configuration does not name one
        for source in mapping.sources:
            if source.catalogue.asset_column is None:
                source.catalogue = source.catalogue.model_copy(update={"asset_column": asset_column})
    return mapping


def crawl_with_progress(
    config: MappingConfig,
    scale: Scale,
    sink: Callable[[pystac.Item], None],
    *,
    keep: Callable[[dict], None] | None = None,
    earlier_ledger: bytes | None = None,
    expect: Callable[[Iterable[tuple[str, str]]], None] | None = None,
) -> CrawlResult:
    """`loaders.running.crawl.Crawl` with a spinner while it discovers and a progress bar while it
    reads, each Item handed to `sink` as soon as it is made (and those of stores unchanged
    since `earlier_ledger` to `keep`; `expect` is told their ids first); exit 1 (nothing
    written yet) when a source cannot be read, a catalogue yields no store, there are no
    stores at all or a Dask Gateway cluster cannot be had."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from zarr_stac.loaders.running.crawl import Crawl
    from zarr_stac.loaders.running.executors import ClusterError
    from zarr_stac.loaders.running.ledger import Ledger

    previous = Ledger(earlier_ledger) if earlier_ledger is not None else None
    running = Crawl(config, scale=scale, previous=previous)
    where = ", ".join(source.url for source in config.sources)
    with err.status(f"discovering stores in {shown(where)}"):
        found = running.discover()
    stop_unless_usable(found, where, running.total)
    if expect is not None:
        expect(running.placements())
    columns = TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    try:
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task(f"reading {running.total} stores", total=running.total)
            result = running.run(sink, on_progress=lambda outcome: progress.advance(task), keep=keep)
    except ClusterError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    for note in result.notes:
        err.print(f"[yellow]{shown(note)}[/]", highlight=False)
    return result


def stop_unless_usable(found: CrawlResult, where: str, total: int) -> None:
    """A source that cannot be read at all is a mistake to fix (a wrong path, no
    credentials), not a partial crawl: stop before anything is written or loaded."""
    unusable = {failure.url for failure in found.unusable_sources}
    for failure in found.unusable_sources:
        err.print(f"[red]cannot read {shown(failure.url)}: {shown(failure.reason)}[/]", highlight=False)
    entries = [url for url, _ in found.empty_inputs if url not in unusable]
    if entries and len(found.failures) > len(unusable):
        print_summary(found)  # why each entry of such a catalogue is not a store
    for url, reason in found.empty_inputs:  # a catalogue none of whose entries is a store
        if url not in unusable:
            err.print(f"[red]{shown(url)} yields no store: {shown(reason)}[/]", highlight=False)
    if found.unusable_sources or found.empty_inputs:
        raise typer.Exit(1)
    if not total:
        err.print(
            f"[red]no Zarr stores found in {shown(where)}: nothing catalogued, nothing written[/]", highlight=False
        )
        raise typer.Exit(1)


def print_summary(result: CrawlResult) -> None:
    from rich.table import Table

    table = Table(title="crawl summary", show_edge=False)
    table.add_column("outcome")
    table.add_column("stores", justify="right")
    table.add_row("catalogued", str(result.catalogued))
    if result.unchanged:
        table.add_row("  of which unchanged (not re-read)", str(result.unchanged))
    for kind, count in sorted(Counter(f.kind for f in result.failures).items()):
        table.add_row(f"skipped: {kind}", str(count))
    err.print(table)
    for failure in result.failures:
        err.print(f"[yellow]skipped[/] {shown(failure.url)}: {failure.kind}: {shown(failure.reason)}", highlight=False)


def finish(result: CrawlResult, strict: bool) -> None:
    """Exit status 1 when the run catalogued nothing (every store failed; a store kept
    unchanged from the last run counts as catalogued) and, with --strict, when any store
    was skipped (an input that yields no store stopped the command before anything was
    written: `stop_unless_usable`)."""
    if not result.catalogued and result.failures:
        err.print(f"[red]nothing catalogued: every store failed ({len(result.failures)} skipped)[/]")
        raise typer.Exit(1)
    if strict and result.failures:
        err.print(f"[red]--strict: {len(result.failures)} store(s) skipped[/]")
        raise typer.Exit(1)


RERUN_LOAD = (
    "Everything loaded so far was committed in whole batches; rerun the same command once the "
    "database is back to complete the load (it upserts: nothing is loaded twice)."
)


def check_database(dsn: str, *, pgstac: bool = True) -> None:
    """Before a crawl is spent on it: a database that cannot be used is one line, exit 1."""
    from stac_api.db import DatabaseProblem, check

    try:
        check(dsn, pgstac=pgstac)
    except DatabaseProblem as exc:
        err.print(f"[red]{escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None


@contextmanager
def database_errors(dsn: str, doing: str, advice: str = RERUN_LOAD) -> Iterator[None]:
    """A database that goes away (or refuses us) mid-way: one clear line, exit status 1."""
    import psycopg

    from stac_api.db import cause, is_transient, public_dsn

    try:
        yield
    except psycopg.OperationalError as exc:
        reason = cause(exc)
        # Rerunning helps when the database was away, not when it refuses these credentials.
        hint = f"\n{advice}" if is_transient(reason) else ""
        err.print(
            f"[red]the database at {escape(public_dsn(dsn))} failed while {doing}: {escape(reason)}[/]{hint}",
            highlight=False,
        )
        raise typer.Exit(1) from None


def resolve_dsn(dsn: str | None, data_dir: Path) -> str:
    if dsn:
        return dsn
    from .services.postgres import PostgresError

    cluster = _cluster(data_dir)
    if cluster.initialised() and cluster.password_file.exists():
        try:  # on the port our server listens on, and only if it runs: never another's
            local = cluster.running_dsn()
        except PostgresError as exc:
            err.print(f"[red]{escape(str(exc))}[/]", highlight=False)
            raise typer.Exit(1) from None
        err.print(f"using the local cluster {cluster.public_dsn}")
        return local
    err.print(
        "[red]no database: pass --dsn / set DATABASE_URL, or start the local cluster with `zarr-stac db start`[/]"
    )
    raise typer.Exit(2)


# -- commands -------------------------------------------------------------------------
@app.command("crawl")
def crawl_command(
    url: Annotated[
        str,
        typer.Argument(help="s3://bucket/prefix, gs://..., https://..., a folder, or a .txt/.csv/.json/.yaml input."),
    ],
    endpoint_url: EndpointUrl = None,
    anon: Anon = False,
    profile: Profile = None,
    region: Region = None,
    timeout: Timeout = None,
    retries: Retries = None,
    asset_column: AssetColumn = None,
) -> None:
    """List the stores found under URL or in an input file, one per line (reads no data).

    The output is itself a valid list input (`zarr-stac crawl s3://b > stores.txt`).
    Catalogue entries that are not stores are listed on stderr with the reason.
    """
    from zarr_stac.loaders.config import CatalogueConfig
    from zarr_stac.loaders.failures import StoreFailure
    from zarr_stac.loaders.finding.inputs import expand_input, iter_entries
    from zarr_stac.loaders.vocabulary import DiscoveryError, InputError

    storage = storage_options(endpoint_url, anon, profile, region, timeout=timeout, retries=retries)
    count = skipped = 0
    try:
        url, storage = storage.for_url(url)  # its credentials are used, never printed
    except ValueError as exc:
        err.print(f"[red]{shown(url)}: {escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(2) from None
    try:
        for entry in iter_entries(expand_input(url, storage, CatalogueConfig(asset_column=asset_column)), storage):
            if isinstance(entry, StoreFailure):
                err.print(
                    f"[yellow]skipped[/] {shown(entry.url)}: {entry.kind}: {shown(entry.reason)}", highlight=False
                )
                skipped += 1
                continue
            typer.echo(terminal_safe(entry.url))
            count += 1
    except (DiscoveryError, InputError) as exc:
        err.print(f"[red]{shown(str(exc))}[/]")
        raise typer.Exit(1) from None
    err.print(f"{count} store(s) in {shown(url)}" + (f", {skipped} entr(ies) skipped" if skipped else ""))


@app.command()
def inspect(
    url: Annotated[str, typer.Argument(help="One Zarr store, or a kerchunk reference file (.json).")],
    endpoint_url: EndpointUrl = None,
    anon: Anon = False,
    profile: Profile = None,
    region: Region = None,
    timeout: Timeout = None,
    retries: Retries = None,
    public_anon: PublicAnon = None,
    collection: Annotated[
        bool,
        typer.Option(
            "--collection",
            help=(
                "Print the Collection this store alone would form (its defaults from the dataset's CF/ACDD attributes)."
            ),
        ),
    ] = False,
) -> None:
    """Print the STAC Item (or with --collection, the Collection) that one store produces, or why it cannot."""
    from pydantic import ValidationError

    from zarr_stac.loaders.config import validation_problem
    from zarr_stac.loaders.failures import StoreFailure
    from zarr_stac.loaders.running.crawl import inspect_store

    try:
        outcome = inspect_store(
            url, storage_options(endpoint_url, anon, profile, region, public_anon, timeout, retries)
        )
    except ValidationError as exc:  # credentials in the URL that cannot be used
        err.print(f"[red]{shown(url)}: {escape(validation_problem(exc).removeprefix('(top level): '))}[/]")
        raise typer.Exit(2) from None
    if isinstance(outcome, StoreFailure):
        err.print(f"[red]{shown(outcome.url)}: {outcome.kind}: {shown(outcome.reason)}[/]")
        raise typer.Exit(1)
    for note in outcome.notes:  # values of the store that were dropped, replaced or renamed
        err.print(f"[yellow]{escape(note)}[/]", highlight=False)
    stac = outcome.item
    if collection:
        from zarr_stac.loaders.mapping.collections import build_collection

        stac = build_collection(
            outcome.item.collection_id or outcome.item.id, [outcome.item], fields=outcome.fields, attrs=[outcome.attrs]
        )
    console.print_json(json.dumps(stac.to_dict(include_self_link=False, transform_hrefs=False)))


@app.command()
def build(
    url: Annotated[
        Optional[str], typer.Argument(help="Where the Zarr stores are (prefix, folder or input file).")
    ] = None,
    *,
    output: Annotated[str, typer.Option("-o", "--output", help="Folder or object-store prefix for the catalogue.")],
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", help="Publish with absolute links under this URL.")
    ] = None,
    endpoint_url: EndpointUrl = None,
    anon: Anon = False,
    profile: Profile = None,
    region: Region = None,
    timeout: Timeout = None,
    retries: Retries = None,
    public_anon: PublicAnon = None,
    workers: Workers = 16,
    concurrency: Concurrency = 64,
    processes: Processes = None,
    dask_scheduler: DaskScheduler = None,
    dask_gateway: DaskGateway = None,
    gateway_workers: GatewayWorkers = 2,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with status 1 when any store was skipped.")] = False,
    config: Config = None,
    asset_column: AssetColumn = None,
    geoparquet: Annotated[
        bool,
        typer.Option(
            "--geoparquet",
            help="Also write each collection's items as stac-geoparquet, linked as a `stac-items` asset.",
        ),
    ] = False,
    delete_grace: Annotated[
        float,
        typer.Option(
            "--delete-grace",
            min=0,
            help="Seconds an unlinked object stays before it is deleted (readers mid-walk still find it).",
        ),
    ] = 600.0,
    full: Full = False,
) -> None:
    """Crawl URL (or the sources of --config) and write a static STAC catalogue to OUTPUT.

    Incremental: only the stores whose metadata changed since the last build are read
    (see --full), only changed objects are written. Items of stores that are gone are
    deleted only from collections whose stores were all read without error.
    """
    from static_catalog.catalog import StaticCatalog
    from static_catalog.destination import DestinationError
    from static_catalog.publication import Publication

    storage = storage_options(endpoint_url, anon, profile, region, public_anon, timeout, retries)
    mapping = mapping_config(url, config, storage, asset_column)
    if problem := local_destination_problem(output):
        err.print(f"[red]cannot write the catalogue to {shown(output)}: {escape(problem)}[/]", highlight=False)
        raise typer.Exit(1)
    catalog = StaticCatalog(
        output,
        storage=storage,  # the storage flags also reach an object-store OUTPUT
        base_url=base_url,
        geoparquet=geoparquet,
        delete_grace=delete_grace,
        catalog_id=mapping.catalog.id,
        title=mapping.catalog.title,
        description=mapping.catalog.description,
    )
    try:  # a missing output bucket is said before the crawl, not after it
        catalog.destination.check()
    except DestinationError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    # Items are written as the crawl makes them: memory does not grow with the stores.
    from zarr_stac.loaders.running.crawl import Scale  # here: a mistake above is said without importing xarray first

    try:
        with Publication(catalog) as publication:
            scale = Scale(workers, concurrency, processes, dask_scheduler, dask_gateway, gateway_workers)
            sources = " ".join(sorted(source.url for source in mapping.sources))
            earlier = None if full else publication.earlier_ledger(sources)
            result = crawl_with_progress(
                mapping,
                scale,
                sink=publication.add,
                keep=publication.keep,
                earlier_ledger=earlier,
                expect=publication.expect,
            )
            try:
                report = publication.finish(result.collections, may_delete=result.may_delete)
            finally:  # items the destination refused are their stores' failures
                result.reject(publication.report.rejected)
                print_summary(result)
            publication.keep_ledger(sources, result.ledger_data())
    except OSError as exc:  # a full disk, a read-only mount, a refused PUT: one line
        from zarr_stac.loaders.reading.errors import one_line

        err.print(f"[red]cannot write the catalogue to {shown(output)}: {escape(one_line(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None
    kept = f", {report.kept} kept from before (not re-read)" if report.kept else ""
    pending = f", {report.pending} unlinked (deleted after the grace period)" if report.pending else ""
    err.print(
        f"catalogue at {shown(output)}: {report.written} written, {report.unchanged} unchanged, "
        f"{report.deleted} deleted{kept}{pending}"
    )
    finish(result, strict)


def local_destination_problem(output: str) -> str | None:
    """Why a local catalogue folder could not be written, checked before the crawl
    (nothing is created yet: a run that stops early leaves no empty folder behind)."""
    from zarr_stac.common.storage import protocol_of

    if protocol_of(output) != "file":
        return None
    path = Path(output).absolute()
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        return f"{path} is a file, not a folder"
    if not os.access(path, os.W_OK):
        return f"no permission to write in {path}"
    return None


@app.command()
def load(
    source: Annotated[
        Optional[str],
        typer.Argument(
            help=(
                "Where the Zarr stores are (prefix, folder, input file), or a static catalogue (folder or "
                "catalog.json)."
            )
        ),
    ] = None,
    *,
    dsn: Dsn = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    endpoint_url: EndpointUrl = None,
    anon: Anon = False,
    profile: Profile = None,
    region: Region = None,
    timeout: Timeout = None,
    retries: Retries = None,
    public_anon: PublicAnon = None,
    workers: Workers = 16,
    concurrency: Concurrency = 64,
    processes: Processes = None,
    dask_scheduler: DaskScheduler = None,
    dask_gateway: DaskGateway = None,
    gateway_workers: GatewayWorkers = 2,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with status 1 when any store was skipped.")] = False,
    config: Config = None,
    asset_column: AssetColumn = None,
    sync: Annotated[
        bool,
        typer.Option(
            "--sync",
            help=(
                "Also delete the items of stores that are gone, from collections whose stores were all read "
                "without error."
            ),
        ),
    ] = False,
    full: Full = False,
) -> None:
    """Load Collections and Items into pgstac (upsert: safe to rerun).

    Incremental: only the stores whose metadata changed since the last load of the same
    sources are read and loaded again (see --full)."""
    from stac_api.loading.ingest import Ingest
    from stac_api.loading.ingest import load as load_into_pgstac

    target = resolve_dsn(dsn, data_dir)
    check_database(target)
    if source and Path(source).is_dir() and (Path(source) / "catalog.json").exists():
        source = str(Path(source) / "catalog.json")
    if source and source.endswith("catalog.json"):
        if sync:
            err.print("[red]--sync needs a crawl (a static catalogue does not say which stores were read)[/]")
            raise typer.Exit(2)
        from static_catalog.read import read_catalog

        try:
            collections, items = read_catalog(
                source, storage_options(endpoint_url, anon, profile, region, timeout=timeout, retries=retries)
            )
        except Exception as exc:  # noqa: BLE001 - missing, not STAC, unreachable: one line
            err.print(f"[red]cannot read {shown(source)}: {shown(unreadable(exc))}[/]", highlight=False)
            raise typer.Exit(1) from None
        with database_errors(target, "loading"):
            report = load_into_pgstac(target, collections, items)
        result = None
        for rejection in report.rejected:
            err.print(
                f"[yellow]skipped[/] item {escape(rejection.item_id)} of collection {escape(rejection.collection_id)}: "
                f"{rejection.kind}: {escape(rejection.reason)}",
                highlight=False,
            )
    else:
        mapping = mapping_config(
            source,
            config,
            storage_options(endpoint_url, anon, profile, region, public_anon, timeout, retries),
            asset_column,
        )
        from zarr_stac.common.stac import delete_nothing
        from zarr_stac.loaders.running.crawl import Scale

        # Items go to pgstac in batches as the crawl makes them.
        with database_errors(target, "loading"), Ingest(target) as ingest:
            scale = Scale(workers, concurrency, processes, dask_scheduler, dask_gateway, gateway_workers)
            sources = " ".join(sorted(source.url for source in mapping.sources))
            earlier = None if full else ingest.earlier_ledger(sources)
            result = crawl_with_progress(mapping, scale, sink=ingest.add, keep=ingest.keep, earlier_ledger=earlier)
            try:
                report = ingest.finish(result.collections, may_delete=result.may_delete if sync else delete_nothing)
            finally:  # items pgstac refused are their stores' failures
                result.reject(ingest.report.rejected)
                print_summary(result)
            ingest.keep_ledger(sources, result.ledger_data())
    deleted = f", deleted {report.deleted} item(s) of stores that are gone" if sync else ""
    kept = f", {report.kept} unchanged item(s) left as they were" if report.kept else ""
    err.print(f"loaded {report.collections} collection(s) and {report.items} item(s) into pgstac{kept}{deleted}")
    for note in report.notes:
        err.print(f"[yellow]{escape(note)}[/]")
    if result is not None:
        finish(result, strict)
    elif report.rejected and not report.items:
        err.print(f"[red]nothing loaded: every item was refused ({len(report.rejected)} skipped)[/]")
        raise typer.Exit(1)
    elif strict and report.rejected:
        err.print(f"[red]--strict: {len(report.rejected)} item(s) skipped[/]")
        raise typer.Exit(1)


@app.command()
def serve(
    dsn: Dsn = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    keep_alive: Annotated[
        int,
        typer.Option(
            "--timeout-keep-alive",
            help="Seconds an idle client connection stays open; keep it above your clients' and proxy's idle timeout.",
        ),
    ] = 75,
) -> None:
    """Serve the STAC API (stac-fastapi-pgstac) over the pgstac database."""
    import uvicorn
    from pydantic import ValidationError

    from stac_api.app import create_app
    from stac_api.serving.settings import Settings
    from zarr_stac.loaders.config import validation_problem

    target = resolve_dsn(dsn, data_dir)
    try:
        settings = Settings(database_url=target)
    except ValidationError as exc:
        err.print(f"[red]invalid API settings: {escape(validation_problem(exc))}[/]")
        raise typer.Exit(2) from None
    check_database(target)
    from .services.base import port_in_use

    if port_in_use(port, host):
        err.print(
            f"[red]port {port} on {escape(host)} is already in use: choose another with --port[/]", highlight=False
        )
        raise typer.Exit(1)
    # uvicorn's default keep-alive (5 s) equals httpx's and requests' pool expiry: the
    # server then closes idle connections just as clients reuse them (ReadError under load).
    uvicorn.run(
        create_app(settings), host=host, port=port, proxy_headers=True, timeout_keep_alive=keep_alive, log_level="info"
    )


@app.command("serve-static")
def serve_static(
    directory: Annotated[Path, typer.Argument(help="A static catalogue folder.", exists=True, file_okay=False)],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
) -> None:
    """Serve a static catalogue folder over HTTP with CORS (for stac-browser): its documents
    only, not the crawl's ledger, other files or folder listings (404)."""
    from static_catalog.serve import make_server

    from .services.base import port_in_use

    if port_in_use(port, host):
        err.print(
            f"[red]port {port} on {escape(host)} is already in use: choose another with --port[/]", highlight=False
        )
        raise typer.Exit(1)
    server = make_server(directory, host, port)
    err.print(f"serving {directory} on http://{host}:{port}/catalog.json (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


SCHEMAS_UNAVAILABLE = 3  # exit status: some objects could not be checked (no schema), none found invalid


@app.command()
def validate(
    href: Annotated[
        str,
        typer.Argument(
            help=(
                "A static catalogue (folder, catalog.json, s3://.../catalog.json, URL) or a STAC API's landing "
                "page URL."
            )
        ),
    ],
    schemas: Annotated[
        Optional[Path],
        typer.Option(
            "--schemas",
            envvar="ZARR_STAC_SCHEMAS",
            help="Folder of JSON schemas laid out by URL; validation is then offline.",
        ),
    ] = None,
    endpoint_url: EndpointUrl = None,
    anon: Anon = False,
    profile: Profile = None,
    region: Region = None,
) -> None:
    """Validate every Collection and Item of a static catalogue or a STAC API against the JSON schemas.

    Exit status: 0 all valid, 1 some invalid (or the catalogue cannot be read), 3 some
    objects unchecked because a schema could not be fetched (use --schemas offline).
    """
    from static_catalog.validate import OfflineValidator, validate_any

    target = str(Path(href) / "catalog.json") if Path(href).is_dir() else href
    if schemas is not None and not schemas.is_dir():
        err.print(f"[red]--schemas {escape(str(schemas))}: no such folder[/]", highlight=False)
        raise typer.Exit(2)
    try:
        report = validate_any(
            target, OfflineValidator(schemas) if schemas else None, storage_options(endpoint_url, anon, profile, region)
        )
    except Exception as exc:  # noqa: BLE001 - missing file, not STAC, unreachable: one line
        err.print(f"[red]cannot read {shown(target)}: {shown(unreadable(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None
    for where, message in report.errors:
        err.print(f"[red]invalid[/] {shown(where)}: {escape(message)}", highlight=False)
    unchecked = f", {len(report.unchecked)} unchecked" if report.unchecked else ""
    err.print(f"{report.checked} object(s) checked, {len(report.errors)} invalid{unchecked}")
    if report.unavailable_schemas:
        names = ", ".join(sorted(report.unavailable_schemas))
        err.print(
            f"[yellow]could not fetch {len(report.unavailable_schemas)} schema(s) ({escape(names)}): no internet? "
            "Validate offline with --schemas DIR (a folder of schemas laid out by URL)[/]",
            highlight=False,
        )
    if report.errors:
        raise typer.Exit(1)
    if report.unchecked:
        raise typer.Exit(SCHEMAS_UNAVAILABLE)


def unreadable(exc: BaseException) -> str:
    """Why a catalogue could not be read, in one line."""
    from zarr_stac.loaders.finding.prefixes import listing_problem

    if isinstance(exc, FileNotFoundError):
        return "no such file, folder or object"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg}, line {exc.lineno})"
    if type(exc).__name__ == "STACTypeError" or "'type' attribute is not set" in str(exc):
        return "not a STAC catalogue, collection or item"
    if type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout"):
        return f"unreachable ({type(exc).__name__})"
    if type(exc).__name__ == "HTTPStatusError":
        return f"the server answered {exc.response.status_code}"  # type: ignore[attr-defined]
    return listing_problem(exc)


@app.command()
def demo(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    api_port: Annotated[int, typer.Option(help="STAC API port.")] = 8080,
    static_port: Annotated[int, typer.Option(help="Static catalogue port.")] = 8081,
    s3_port: Annotated[int, typer.Option(help="Local S3 server port.")] = 8082,
    pg_port: Annotated[
        Optional[int],
        typer.Option(help="Local PostgreSQL port (default: the one it was last started on, else 54329)."),
    ] = None,
) -> None:
    """Start everything locally, catalogue sample Zarr stores, and serve both catalogues."""
    from .demo import Demo
    from .services import ServiceError

    try:
        Demo(
            data_dir=data_dir, api_port=api_port, static_port=static_port, s3_port=s3_port, pg_port=pg_port, console=err
        ).run()
    except ServiceError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None


# -- db ---------------------------------------------------------------------------------
def _cluster(data_dir: Path, port: int | None = None):
    from .services.postgres import PostgresCluster, PostgresError

    try:
        return PostgresCluster(data_dir / "postgres", port=port)
    except PostgresError as exc:  # its recorded port cannot be read
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None


PgPort = Annotated[
    Optional[int],
    typer.Option(
        "--port",
        min=1,
        max=65535,
        help="Port of the local cluster (default: the one it was last started on, else 54329).",
        show_default=False,
    ),
]


@db_app.command("start")
def db_start(data_dir: DataDir = DEFAULT_DATA_DIR, port: PgPort = None) -> None:
    """Create (first time) and start the local cluster, with pgstac installed."""
    from .services.postgres import PostgresError, ensure_postgis

    cluster = _cluster(data_dir, port)
    try:
        ensure_postgis()
        cluster.start()
        version = cluster.migrate()
    except PostgresError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    err.print(f"PostgreSQL running at {cluster.public_dsn} with pgstac {version}")
    err.print(f"password: {cluster.password_file}")


@db_app.command("ensure-postgis")
def db_ensure_postgis() -> None:
    """Make sure PostGIS is installed (with apt when root; else print the command)."""
    from .services.postgres import PostgresError, ensure_postgis

    try:
        ensure_postgis()
    except PostgresError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    err.print("PostGIS is installed")


@db_app.command("stop")
def db_stop(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop the local cluster (its data stays)."""
    cluster = _cluster(data_dir)
    if not cluster.initialised():
        err.print(f"no cluster under {escape(str(cluster.root))}: nothing to stop")
        return
    cluster.stop()
    err.print("PostgreSQL stopped")


@db_app.command("migrate")
def db_migrate(dsn: Dsn = None, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Install or upgrade pgstac in a database."""
    from stac_api.db import migrate

    target = resolve_dsn(dsn, data_dir)
    check_database(target, pgstac=False)
    with database_errors(
        target,
        "migrating",
        "Each pgstac migration runs in one transaction: rerun the command once the database answers.",
    ):
        version = migrate(target)
    err.print(f"pgstac {version}")


@db_app.command("status")
def db_status(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Whether the local cluster exists and runs, and on which port (connects to nothing)."""
    from .services.postgres import PostgresError

    cluster = _cluster(data_dir)
    try:  # our server's own postmaster.pid: whatever else listens on a port is not asked
        port = cluster.running_port() if cluster.initialised() else None
    except PostgresError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    if port is not None:
        cluster.port = port
    state = "running" if port is not None else ("stopped" if cluster.initialised() else "not created")
    console.print(f"{cluster.public_dsn}: {state}")
