"""A project-managed PostgreSQL cluster with PostGIS and pgstac, on loopback.

Used by `make demo` (under `.data/`) and by the tests (in a temporary folder).
PostgreSQL refuses to run as root, so when we are root the server runs as the
`postgres` system user; its data folder then belongs to that user.

The port a cluster was started on is recorded with it (`root/port`), and the server
is taken for ours only when its `postmaster.pid` (in our data folder) names a live
postmaster of that folder: whatever else listens on a port is never sent our password.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from .base import ServiceError, port_in_use

POSTGIS_PACKAGE = "postgresql-{major}-postgis-3"
DEFAULT_PORT = 54329  # not 5432: never collide with a system cluster

# pgstac keeps one partition per collection, and a query locks every partition it plans and
# each of their indexes (about 8 per partition) until it ends. The locks of all sessions share
# one table of max_locks_per_transaction x max_connections slots: 64 x 200 (the defaults)
# held one search over 1,000 collections, not over 10,000 ("out of shared memory"). 1024 x 200
# holds two searches over every partition of 10,000 collections at once, for ~60 MB of shared
# memory. The API narrows most searches to a few partitions; these are for those it cannot.
SERVER_SETTINGS = {"max_connections": "200", "max_locks_per_transaction": "1024"}


class PostgresError(ServiceError):
    pass


def find_bindir() -> Path:
    """The newest installed PostgreSQL server binaries (`ZARR_STAC_PG_BINDIR` overrides)."""
    if override := os.environ.get("ZARR_STAC_PG_BINDIR"):
        if not (Path(override) / "pg_ctl").is_file():
            raise PostgresError(f"ZARR_STAC_PG_BINDIR={override} holds no pg_ctl: point it at PostgreSQL's bin folder")
        return Path(override)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresError(
        "PostgreSQL server binaries not found: install them with `apt-get install -y postgresql` "
        "or set ZARR_STAC_PG_BINDIR to the folder holding initdb and pg_ctl"
    )


def major_version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1].split(".")[0])


def postgis_installed(bindir: Path) -> bool:
    sharedir = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True).stdout.strip()
    if not sharedir:
        sharedir = f"/usr/share/postgresql/{major_version(bindir)}"
    return Path(sharedir, "extension", "postgis.control").exists()


def ensure_postgis(bindir: Path | None = None, *, install: bool = True) -> None:
    """Install PostGIS with apt when we are root; otherwise say exactly what to run."""
    bindir = bindir or find_bindir()
    if postgis_installed(bindir):
        return
    package = POSTGIS_PACKAGE.format(major=major_version(bindir))
    command = f"apt-get update && apt-get install -y {package}"
    if not install or os.geteuid() != 0:
        raise PostgresError(f"PostGIS is not installed for PostgreSQL in {bindir}. Run as root:\n  {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    if not postgis_installed(bindir):
        raise PostgresError(f"{package} was installed but postgis.control is still missing")


@dataclass
class PostgresCluster:
    """A cluster under `root`: `root/pgdata` (the server's), `root/password` and
    `root/port` (ours). `port` None: the port it was last started on, else DEFAULT_PORT."""

    root: Path
    port: int | None = None  # an int after __post_init__
    host: str = "127.0.0.1"
    user: str = "zarr_stac"
    database: str = "zarr_stac"
    bindir: Path | None = None
    # Tests trade crash safety for speed; the demo's cluster keeps fsync on.
    durable: bool = True
    # PostgreSQL settings on top of SERVER_SETTINGS (applied when the server starts).
    settings: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self.bindir = self.bindir or find_bindir()
        if self.port is None:
            self.port = self.recorded_port() or DEFAULT_PORT

    def _program(self, name: str) -> str:
        assert self.bindir is not None  # found by __post_init__
        return str(self.bindir / name)

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    @property
    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def dsn(self) -> str:
        """Connection string, password included: a secret, never print or log it."""
        return self._dsn_for(self.database)

    @property
    def public_dsn(self) -> str:
        return f"postgresql://{self.user}:***@{self.host}:{self.port}/{self.database}"

    def _dsn_for(self, database: str) -> str:
        """The DSN of another database of this cluster: made from its parts, never by
        cutting up a DSN (`stac_api.db.parse_dsn` is the one parser of DSNs)."""
        password, database = quote(self.password, safe=""), quote(database, safe="")
        return f"postgresql://{self.user}:{password}@{self.host}:{self.port}/{database}"

    # -- running server binaries as the right user ------------------------------------
    def _as_server_user(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, **kwargs)

    def _check_reachable_by_postgres(self) -> None:
        if os.geteuid() != 0:
            return
        probe = self._as_server_user(["test", "-w", str(self.root)])
        if probe.returncode != 0:
            raise PostgresError(
                f"the postgres system user cannot write to {self.root} (PostgreSQL refuses to run as root "
                "and runs as `postgres` instead): put the data folder somewhere it can reach, e.g. under /tmp "
                "or /srv, with ZARR_STAC_DATA_DIR"
            )

    # -- lifecycle --------------------------------------------------------------------
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, user="postgres")
        self._check_reachable_by_postgres()
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24))
            os.chmod(self.password_file, 0o600)
            if os.geteuid() == 0:
                shutil.chown(self.password_file, user="postgres")
        result = self._as_server_user(
            [
                self._program("initdb"),
                "-D", str(self.pgdata),
                "-U", self.user,
                f"--pwfile={self.password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ]
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"initdb failed: {result.stderr.strip()}")

    def recorded_port(self) -> int | None:
        """The port the cluster was last started on (None: never started by this version)."""
        try:
            text = self.port_file.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PostgresError(f"cannot read {self.port_file}: {exc.strerror}") from None
        return int(text) if text.isdigit() else None

    def running_port(self) -> int | None:
        """The port our server listens on, or None when it does not run.

        Ours: `pgdata/postmaster.pid`, which the postmaster writes and removes, names a
        live process that is the postmaster of this data folder (its command line says
        so, where /proc tells). A stale file (a crash, a reused PID) is no server of ours.
        """
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PostgresError(f"cannot read {pid_file}: {exc.strerror}") from None
        if len(lines) < 4 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
            return None  # being written (starting) or cut short
        pid, port = int(lines[0]), int(lines[3])
        if pid <= 0:
            return None  # kill(0) would signal our own process group
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's (the postgres user when we are not root)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return port  # no /proc (macOS): the live PID is all there is to go by
        return port if os.fsencode(str(self.pgdata)) in command else None

    def running_dsn(self) -> str:
        """The DSN of our running server, on the port it listens on (a secret, like `dsn`).
        PostgresError when it does not run: nothing is sent to whatever else may listen."""
        port = self.running_port()
        if port is None:
            raise PostgresError(f"the local cluster in {self.root} is not running: start it with `zarr-stac db start`")
        self.port = port
        return self.dsn

    def is_running(self) -> bool:
        return self.running_port() is not None

    def start(self, timeout: float = 60) -> None:
        """Start the cluster (creating it first if needed) on `port`; idempotent."""
        if not self.initialised():
            self.init()
        running = self.running_port()
        assert self.port is not None  # chosen by __post_init__
        if running is not None and running != self.port:
            raise PostgresError(
                f"the cluster in {self.root} already runs on port {running}: stop it (`zarr-stac db stop`) "
                f"to start it on port {self.port}"
            )
        if running is None and port_in_use(self.port, self.host):
            raise PostgresError(
                f"port {self.port} on {self.host} is taken by another server: start the cluster on another "
                "port with --port"
            )
        if running is None:
            options = f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories=''"
            for name, value in {**SERVER_SETTINGS, **(self.settings or {})}.items():
                options += f" -c {name}={value}"
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            result = self._as_server_user(
                [
                    self._program("pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                ]
            )
            if result.returncode != 0:
                raise PostgresError(
                    f"PostgreSQL did not start on {self.host}:{self.port}: "
                    f"{result.stderr.strip() or result.stdout.strip()} (log: {self.log_file})"
                )
            self.port_file.write_text(f"{self.port}\n")
        self._wait_accepting(timeout)
        self._ensure_database()

    def stop(self) -> None:
        if self.initialised() and self.is_running():
            self._as_server_user([self._program("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.pgdata)])

    def _wait_accepting(self, timeout: float) -> None:
        """Until our server (checked before each try) takes our password. Waiting helps
        while it starts up, not when it refuses the password or has stopped."""
        deadline = time.monotonic() + timeout
        while True:
            if self.running_port() != self.port:
                raise PostgresError(f"PostgreSQL in {self.root} is not running (log: {self.log_file})")
            try:
                with psycopg.connect(self._dsn_for("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                reason = " ".join(str(exc).split())
                if "authentication failed" in reason or time.monotonic() > deadline:
                    raise PostgresError(
                        f"PostgreSQL on {self.host}:{self.port} does not accept connections: {reason}"
                    ) from None
                time.sleep(0.2)

    def _ensure_database(self) -> None:
        with psycopg.connect(self._dsn_for("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def migrate(self) -> str:
        """Install or upgrade pgstac (PostGIS included) with pypgstac; returns its version."""
        from stac_api.db import migrate

        return migrate(self.dsn)

    def copy_database(self, name: str) -> str:
        """A database `name` (replaced if it exists) copied from the migrated one: a
        fresh pgstac in milliseconds, for tests and benchmarks. Returns its DSN."""
        with psycopg.connect(self._dsn_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.database}"')
        return self._dsn_for(name)

    def destroy(self) -> None:
        self.stop()
        if os.geteuid() == 0:
            subprocess.run(["rm", "-rf", str(self.root)], check=False)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
