"""A newcomer's first commands, run as a user runs them: the real `zarr-stac` console
script in its own process, relative paths from its working directory, and every
mistake answered by one line that says what to do (exit status, no traceback).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from zarr_stac.samples import write_samples
from zarr_stac.services import LOCAL_CREDENTIALS, free_port

from ..conftest import SCHEMA_DIR

ZARR_STAC = str(Path(sys.executable).with_name("zarr-stac"))
MAX_ERROR_LINES = 3


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ZARR_STAC, *args], cwd=cwd, env=env or user_env(), capture_output=True, text=True, timeout=timeout
    )


def user_env(*, credentials: bool = True) -> dict[str, str]:
    """The environment of a user's shell: keys in AWS_* (or none at all), no database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_URL", "ZARR_STAC_"))}
    # Without keys botocore would also ask the EC2 metadata service: never leave loopback.
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        COLUMNS="200",
    )
    if credentials:
        env.update(LOCAL_CREDENTIALS)
    return env


def assert_one_clear_line(result: subprocess.CompletedProcess, status: int, *expected: str) -> str:
    """Exit `status`, a few lines of stderr at most, no traceback, and each expected phrase."""
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= MAX_ERROR_LINES, output
    for phrase in expected:
        assert phrase in result.stderr, output
    return result.stderr


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def local_samples(tmp_path_factory) -> Path:
    """A working directory holding `src/`, the sample stores as local folders."""
    cwd = tmp_path_factory.mktemp("cwd")
    write_samples(str(cwd / "src"))
    return cwd


# -- 0. relative paths -------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["src", "./src/"])
def test_a_relative_source_and_destination_catalogue_everything(local_samples, tmp_path, spelling):
    result = run("build", spelling, "-o", "out-" + spelling.strip("./"), cwd=local_samples)
    assert result.returncode == 0, result.stderr
    catalogue = local_samples / ("out-" + spelling.strip("./"))
    root = json.loads((catalogue / "catalog.json").read_text())
    assert sorted(link["href"] for link in root["links"] if link["rel"] == "child")[0].startswith("./")
    items = list(catalogue.glob("*/*/*.json"))
    assert len(items) == 10, result.stderr
    validated = run("validate", "out-" + spelling.strip("./"), "--schemas", str(SCHEMA_DIR), cwd=local_samples)
    assert "14 object(s) checked, 0 invalid" in validated.stderr


def test_relative_lists_configurations_and_paths_inside_them(local_samples):
    (local_samples / "stores.txt").write_text(
        "src/ocean/north-atlantic-sst.zarr\n./src/reanalysis/era-like-daily.zarr\n"
    )
    listed = run("build", "stores.txt", "-o", "out-list", cwd=local_samples)
    assert listed.returncode == 0, listed.stderr
    assert len(list((local_samples / "out-list").glob("*/*/*.json"))) == 2
    (local_samples / "mapping.yaml").write_text(
        "sources:\n  - url: src/cmip6\n    path_template: "
        "'{source_id}/{experiment_id}/{member_id}/{variable_id}/{grid_label}.zarr'\n"
        "    collection: {id: cmip6}\n"
    )
    configured = run("build", "--config", "mapping.yaml", "-o", "out-config", cwd=local_samples)
    assert configured.returncode == 0, configured.stderr
    item = json.loads(next((local_samples / "out-config" / "cmip6").glob("*/*.json")).read_text())
    assert item["properties"]["variable_id"] in ("tas", "pr")
    crawled = run("crawl", "src", cwd=local_samples)
    assert crawled.stdout.count(str(local_samples / "src")) == 10


# -- 1. no credentials -------------------------------------------------------------------
@pytest.mark.parametrize("command", ["crawl", "build", "inspect"])
def test_no_credentials_is_one_line_that_suggests_anon(sample_bucket, s3_server, tmp_path, command):
    target = f"{sample_bucket}/ocean/north-atlantic-sst.zarr" if command == "inspect" else sample_bucket
    args = [command, target, "--endpoint-url", s3_server.endpoint_url, *(["-o", "out"] if command == "build" else [])]
    result = run(*args, cwd=tmp_path, env=user_env(credentials=False))
    assert_one_clear_line(result, 1, "--anon", "AWS_ACCESS_KEY_ID")
    assert not (tmp_path / "out").exists()


# -- 2. and 6. validate ------------------------------------------------------------------
def test_validate_a_missing_catalogue(tmp_path):
    assert_one_clear_line(run("validate", "/nonexistent", cwd=tmp_path), 1, "cannot read /nonexistent: no such file")
    assert_one_clear_line(
        run("validate", "x", "--schemas", "/nonexistent", cwd=tmp_path), 2, "--schemas /nonexistent: no such folder"
    )
    (tmp_path / "notstac.json").write_text('{"a": 1}')
    assert_one_clear_line(run("validate", "notstac.json", cwd=tmp_path), 1, "not a STAC catalogue")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/unreachable/v1.0.0/schema.json"  # nothing listens there


def test_an_unreachable_schema_is_not_an_invalid_object(local_samples, tmp_path):
    built = run("build", str(local_samples / "src" / "ocean"), "-o", "out", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (item_path,) = (tmp_path / "out").glob("*/*/*.json")
    item = json.loads(item_path.read_text())
    schema = closed_port_url()
    item["stac_extensions"].append(schema)
    item_path.write_text(json.dumps(item))
    result = run("validate", "out", "--schemas", str(SCHEMA_DIR), cwd=tmp_path)  # the others offline
    assert result.returncode == 3, result.stderr
    assert "0 invalid, 1 unchecked" in result.stderr and schema in result.stderr and "--schemas" in result.stderr
    assert "Traceback" not in result.stderr
    # An invalid object is still invalid (status 1), whatever else could not be checked.
    item["properties"]["datetime"] = "not a date"
    item_path.write_text(json.dumps(item))
    assert run("validate", "out", "--schemas", str(SCHEMA_DIR), cwd=tmp_path).returncode in (1, 3)


# -- 3. a source that cannot be listed ---------------------------------------------------
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/nonexistent", "cannot read /nonexistent: no such prefix or folder"),
        ("empty", "no Zarr stores found in"),
        ("missing.txt", "missing.txt: no such file"),
    ],
)
@pytest.mark.parametrize("strict", [[], ["--strict"]], ids=["", "strict"])
def test_a_source_that_cannot_be_listed_writes_nothing(local_samples, tmp_path, source, message, strict):
    (tmp_path / "empty").mkdir()
    assert run("build", str(local_samples / "src" / "ocean"), "-o", "dest", cwd=tmp_path).returncode == 0
    before = files_of(tmp_path / "dest")
    result = run("build", source, "-o", "dest", *strict, cwd=tmp_path)
    assert_one_clear_line(result, 1, message)
    assert files_of(tmp_path / "dest") == before
    assert_one_clear_line(run("build", source, "-o", "never", cwd=tmp_path), 1)
    assert not (tmp_path / "never").exists()


def test_a_missing_bucket_cannot_be_listed(s3_server, tmp_path):
    result = run("build", "s3://no-such-bucket", "-o", "out", "--endpoint-url", s3_server.endpoint_url, cwd=tmp_path)
    assert_one_clear_line(result, 1, "cannot read s3://no-such-bucket: no such bucket")


# -- 5. a missing bucket is not a missing store ------------------------------------------
def test_inspect_tells_a_missing_bucket_from_a_missing_store(sample_bucket, s3_server, tmp_path):
    endpoint = ["--endpoint-url", s3_server.endpoint_url]
    missing_bucket = run("inspect", "s3://no-such-bucket/x.zarr", *endpoint, cwd=tmp_path)
    assert_one_clear_line(missing_bucket, 1, "not-found", "bucket 'no-such-bucket' does not exist")
    missing_store = run("inspect", f"{sample_bucket}/no-such-store.zarr", *endpoint, cwd=tmp_path)
    stderr = assert_one_clear_line(missing_store, 1, "not-found")
    assert "bucket" not in stderr


# -- 4. databases ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def database_without_pgstac(pg_cluster) -> str:
    dsn = pg_cluster._dsn_for("postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cli_without_pgstac")
        conn.execute("CREATE DATABASE cli_without_pgstac")
    return pg_cluster._dsn_for("cli_without_pgstac")


def dsn_cases(pg_cluster, plain: str) -> dict[str, tuple[str, str]]:
    good = pg_cluster._dsn_for(pg_cluster.database)
    host = f"127.0.0.1:{pg_cluster.port}"
    return {
        "wrong password": (
            good.replace(pg_cluster.password, "WRONG-planted-pw"),
            f"{host}/{pg_cluster.database} failed while connecting: authentication failed",
        ),
        "wrong password (key=value)": (
            f"host=127.0.0.1 port={pg_cluster.port} dbname={pg_cluster.database} user={pg_cluster.user} "
            f"password=WRONG-planted-pw",
            f"{host}/{pg_cluster.database} failed while connecting: authentication failed",
        ),
        "no such database": (
            good.rsplit("/", 1)[0] + "/nosuchdb",
            f"{host}/nosuchdb failed while connecting: no such database",
        ),
        "no pgstac": (plain, f"{host}/cli_without_pgstac has no pgstac: run `zarr-stac db migrate`"),
        "unreachable": (f"postgresql://u:WRONG-planted-pw@127.0.0.1:{free_port()}/db", "unreachable"),
    }


@pytest.mark.parametrize(
    "case", ["wrong password", "wrong password (key=value)", "no such database", "no pgstac", "unreachable"]
)
@pytest.mark.parametrize("command", ["load", "serve"])
def test_a_database_that_cannot_be_used_is_one_line(
    pg_cluster, database_without_pgstac, local_samples, tmp_path, case, command
):
    """Checked before a crawl is spent on it (load) or a server starts (serve)."""
    dsn, message = dsn_cases(pg_cluster, database_without_pgstac)[case]
    args = ["load", str(local_samples / "src")] if command == "load" else ["serve", "--port", str(free_port())]
    started = time.monotonic()
    result = run(*args, "--dsn", dsn, cwd=tmp_path, timeout=60)
    stderr = assert_one_clear_line(result, 1, message)
    assert time.monotonic() - started < 20, "reported at once, not after the pool's retries"
    assert "WRONG-planted-pw" not in result.stdout + stderr and pg_cluster.password not in stderr
    assert ("rerun" in stderr) == (case == "unreachable"), "a rerun helps only when the database was away"


def test_serve_takes_a_key_value_dsn(pg_cluster, tmp_path):
    from ..conftest import wait_until_answering

    port = free_port()
    dsn = (
        f"host=127.0.0.1 port={pg_cluster.port} dbname={pg_cluster.database} "
        f"user={pg_cluster.user} password={pg_cluster.password}"
    )
    server = subprocess.Popen(
        [ZARR_STAC, "serve", "--port", str(port), "--dsn", dsn],
        cwd=tmp_path,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # /collections, not just the landing page: the API reached the database with that DSN.
        wait_until_answering(f"http://127.0.0.1:{port}/collections", server)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "Traceback" not in stderr


# -- ports in use, unwritable destinations -------------------------------------------------
@pytest.mark.parametrize("command", ["serve", "serve-static"])
def test_a_port_in_use_is_one_line(pg_cluster, tmp_path, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["serve", "--dsn", pg_cluster.dsn] if command == "serve" else ["serve-static", str(tmp_path)]
        result = run(*args, "--port", str(port), cwd=tmp_path)
    assert_one_clear_line(result, 1, f"port {port} on 127.0.0.1 is already in use")


def test_an_unwritable_destination_is_one_line(local_samples, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = run("build", str(local_samples / "src" / "ocean"), "-o", "a-file/catalogue", cwd=tmp_path)
    assert_one_clear_line(result, 1, "cannot write the catalogue to a-file/catalogue")
