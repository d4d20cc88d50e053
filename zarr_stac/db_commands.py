"""`zarr-stac db ...` (the local PostgreSQL cluster) and the database helpers of `load` and `serve`:
which database a command uses, whether it can be used, and one line when it fails mid-way.

Only typer and rich at import time (see `zarr_stac.cli`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .options import DEFAULT_DATA_DIR, DataDir, Dsn
from .reporting import console, err, escape

if TYPE_CHECKING:
    from .services.postgres import PostgresCluster

# An unexpected error prints a traceback, never its frames' local variables: they hold
# DSNs with passwords (older Typer releases show them by default).
db_app = typer.Typer(
    help="The project-managed PostgreSQL cluster (PostGIS + pgstac) on loopback.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

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
    """`--dsn` (or DATABASE_URL), else the local cluster under `data_dir` if it runs."""
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


def _cluster(data_dir: Path, port: int | None = None) -> PostgresCluster:
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
