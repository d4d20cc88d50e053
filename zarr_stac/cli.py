"""The `zarr-stac` command line: it composes loaders, static_catalog and stac_api.

Each command turns its flags into options (`options`), runs (`publish` for `build` and
`load`: the one path from the sources to a publisher) and prints (`reporting`); the `db`
group is `db_commands`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .db_commands import check_database, database_errors, db_app, resolve_dsn
from .options import (
    DEFAULT_DATA_DIR,
    AssetColumn,
    Config,
    DataDir,
    Dsn,
    Full,
    ReadFlags,
    ScaleFlags,
    StorageFlags,
    Strict,
    grouped,
    mapping_config,
)

if TYPE_CHECKING:  # pystac is imported by the commands that use it: --help stays fast
    import pystac

from .reporting import CrawlProgress, console, err, escape, exit_if_failed, shown, stop, terminal_safe, unreadable

# Only typer and rich at import time: `zarr-stac --help` (and every one-line error)
# must not wait for xarray, s3fs and pystac. Each command imports what it uses.

# An unexpected error prints a traceback, never its frames' local variables: they hold
# DSNs with passwords and keys (older Typer releases show them by default).
app = typer.Typer(
    help="Publish Zarr stores in object storage as a STAC catalogue (static JSON and a pgstac API).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_app, name="db")


@app.command("crawl")
@grouped
def crawl_command(
    url: Annotated[
        str,
        typer.Argument(help="s3://bucket/prefix, gs://..., https://..., a folder, or a .txt/.csv/.json/.yaml input."),
    ],
    storage: ReadFlags,
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

    options = storage.options()
    count = skipped = 0
    try:
        url, options = options.for_url(url)  # its credentials are used, never printed
    except ValueError as exc:
        err.print(f"[red]{shown(url)}: {escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(2) from None
    try:
        for entry in iter_entries(expand_input(url, options, CatalogueConfig(asset_column=asset_column)), options):
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
@grouped
def inspect(
    url: Annotated[str, typer.Argument(help="One Zarr store, or a kerchunk reference file (.json).")],
    storage: StorageFlags,
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
        outcome = inspect_store(url, storage.options())
    except ValidationError as exc:  # credentials in the URL that cannot be used
        err.print(f"[red]{shown(url)}: {escape(validation_problem(exc).removeprefix('(top level): '))}[/]")
        raise typer.Exit(2) from None
    if isinstance(outcome, StoreFailure):
        err.print(f"[red]{shown(outcome.url)}: {outcome.kind}: {shown(outcome.reason)}[/]")
        raise typer.Exit(1)
    for note in outcome.notes:  # values of the store that were dropped, replaced or renamed
        err.print(f"[yellow]{escape(note)}[/]", highlight=False)
    stac: pystac.Item | pystac.Collection = outcome.item
    if collection:
        from zarr_stac.loaders.mapping.collections import build_collection

        stac = build_collection(
            outcome.item.collection_id or outcome.item.id, [outcome.item], fields=outcome.fields, attrs=[outcome.attrs]
        )
    console.print_json(json.dumps(stac.to_dict(include_self_link=False, transform_hrefs=False)))


@app.command()
@grouped
def build(
    url: Annotated[
        Optional[str], typer.Argument(help="Where the Zarr stores are (prefix, folder or input file).")
    ] = None,
    *,
    output: Annotated[str, typer.Option("-o", "--output", help="Folder or object-store prefix for the catalogue.")],
    base_url: Annotated[
        Optional[str], typer.Option("--base-url", help="Publish with absolute links under this URL.")
    ] = None,
    storage: StorageFlags,
    scale: ScaleFlags,
    strict: Strict = False,
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

    options = storage.options()
    mapping = mapping_config(url, config, options, asset_column, storage.given)
    if problem := local_destination_problem(output):
        err.print(f"[red]cannot write the catalogue to {shown(output)}: {escape(problem)}[/]", highlight=False)
        raise typer.Exit(1)
    catalog = StaticCatalog(
        output,
        storage=options,  # the storage flags also reach an object-store OUTPUT
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
    # Here: a mistake above is said without importing xarray first.
    from zarr_stac.loaders.running.executors import ClusterError
    from zarr_stac.publish import NothingToPublish, publish

    try:  # Items are written as the crawl makes them: memory does not grow with the stores.
        run = publish(Publication(catalog), mapping, scale.scale(), prune=True, full=full, watcher=CrawlProgress())
    except NothingToPublish as nothing:
        raise stop(nothing) from None
    except ClusterError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    except OSError as exc:  # a full disk, a read-only mount, a refused PUT: one line
        from zarr_stac.loaders.reading.errors import one_line

        err.print(f"[red]cannot write the catalogue to {shown(output)}: {escape(one_line(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None
    report = run.report
    kept = f", {report.kept} kept from before (not re-read)" if report.kept else ""
    pending = f", {report.pending} unlinked (deleted after the grace period)" if report.pending else ""
    err.print(
        f"catalogue at {shown(output)}: {report.written} written, {report.unchanged} unchanged, "
        f"{report.deleted} deleted{kept}{pending}"
    )
    exit_if_failed(run.result, strict)


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
@grouped
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
    storage: StorageFlags,
    scale: ScaleFlags,
    strict: Strict = False,
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
    target = resolve_dsn(dsn, data_dir)
    check_database(target)
    if source and Path(source).is_dir() and (Path(source) / "catalog.json").exists():
        source = str(Path(source) / "catalog.json")
    if source and source.endswith("catalog.json"):
        if sync:
            err.print("[red]--sync needs a crawl (a static catalogue does not say which stores were read)[/]")
            raise typer.Exit(2)
        load_static_catalogue(source, target, storage, strict)
        return
    from stac_api.loading.ingest import Ingest
    from zarr_stac.loaders.running.executors import ClusterError
    from zarr_stac.publish import NothingToPublish, publish

    mapping = mapping_config(source, config, storage.options(), asset_column, storage.given)
    try:  # Items go to pgstac in batches as the crawl makes them.
        with database_errors(target, "loading"):
            run = publish(Ingest(target), mapping, scale.scale(), prune=sync, full=full, watcher=CrawlProgress())
    except NothingToPublish as nothing:
        raise stop(nothing) from None
    except ClusterError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    report = run.report
    deleted = f", deleted {report.deleted} item(s) of stores that are gone" if sync else ""
    kept = f", {report.kept} unchanged item(s) left as they were" if report.kept else ""
    err.print(f"loaded {report.collections} collection(s) and {report.items} item(s) into pgstac{kept}{deleted}")
    for note in report.notes:
        err.print(f"[yellow]{escape(note)}[/]")
    exit_if_failed(run.result, strict)


def load_static_catalogue(source: str, target: str, storage: StorageFlags, strict: bool) -> None:
    """`load` of a static catalogue (no crawl: its Collections and Items as they are)."""
    from stac_api.loading.ingest import load as load_into_pgstac
    from static_catalog.read import read_catalog

    try:
        collections, items = read_catalog(source, storage.options())
    except Exception as exc:  # noqa: BLE001 - missing, not STAC, unreachable: one line
        err.print(f"[red]cannot read {shown(source)}: {shown(unreadable(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None
    with database_errors(target, "loading"):
        report = load_into_pgstac(target, collections, items)
    for rejection in report.rejected:
        err.print(
            f"[yellow]skipped[/] item {escape(rejection.item_id)} of collection {escape(rejection.collection_id)}: "
            f"{rejection.kind}: {escape(rejection.reason)}",
            highlight=False,
        )
    kept = f", {report.kept} unchanged item(s) left as they were" if report.kept else ""
    err.print(f"loaded {report.collections} collection(s) and {report.items} item(s) into pgstac{kept}")
    for note in report.notes:
        err.print(f"[yellow]{escape(note)}[/]")
    if report.rejected and not report.items:
        err.print(f"[red]nothing loaded: every item was refused ({len(report.rejected)} skipped)[/]")
        raise typer.Exit(1)
    if strict and report.rejected:
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
@grouped
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
    *,
    storage: ReadFlags,
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
        report = validate_any(target, OfflineValidator(schemas) if schemas else None, storage.options())
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
