"""Attacks on what zarr-stac serves and runs (issue 25: points 7 and 9, two Low items).

- One anonymous request must not hold the database: a huge body, a filter pgstac spends
  seconds translating, a query longer than the API allows (a live uvicorn over a real
  pgstac; the database's own pg_stat_activity says whether a backend was left busy).
- The local cluster's password goes to our cluster only: a foreign cluster, with
  log_connections on, listens where the code used to look, and must see no connection.
- A run that catalogued nothing is a failure; a weak write token refuses the start-up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pystac
import pytest
from pydantic import ValidationError

from stac_api.serving.settings import Settings
from zarr_stac.samples import era_like_daily, write_dataset
from zarr_stac.services import PostgresCluster, ensure_postgis, free_port
from zarr_stac.services.base import port_in_use
from zarr_stac.services.postgres import DEFAULT_PORT

from ..conftest import serve_api, wait_until_answering

ZARR_STAC = [sys.executable, "-m", "zarr_stac"]
MiB = 1024 * 1024


def zarr_stac(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real command line, as its own process (with the tree under test first on the path)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "ZARR_STAC_"))}
    environment.update(COLUMNS="200", **(env or {}))
    return subprocess.run([*ZARR_STAC, *args], env=environment, capture_output=True, text=True, timeout=timeout)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


# -- the API: bodies, filters and queries one request may not make unbounded ------------------
def a_collection(dsn: str) -> None:
    from stac_api.loading.ingest import load

    extent = pystac.Extent(pystac.SpatialExtent([[0.0, 0.0, 1.0, 1.0]]), pystac.TemporalExtent([[None, None]]))
    collection = pystac.Collection("c", "a collection", extent, license="CC0-1.0")
    items = [
        pystac.Item(
            f"i{n}",
            {"type": "Point", "coordinates": [0.5, 0.5]},
            [0.5, 0.5, 0.5, 0.5],
            None,
            {"n": n, "start_datetime": "2000-01-01T00:00:00Z", "end_datetime": "2000-12-31T00:00:00Z"},
            collection="c",
        )
        for n in range(20)
    ]
    load(dsn, [collection], items)


def or_filter(comparisons: int) -> dict:
    """`n = 0 OR n = 1 OR ...`: comparisons + 1 operators, each translated by pgstac in PL/pgSQL."""
    args = [{"op": "=", "args": [{"property": "n"}, i]} for i in range(comparisons)]
    return {"filter-lang": "cql2-json", "filter": {"op": "or", "args": args}, "limit": 5}


def active_backends(dsn: str) -> list[str]:
    """Queries running now in the database of `dsn`, other than this one."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT left(query, 80) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


def settled(dsn: str, seconds: float = 2.0) -> list[str]:
    """The active backends once they had `seconds` to finish (empty at once when all is well)."""
    deadline = time.monotonic() + seconds
    while (busy := active_backends(dsn)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return busy


@pytest.fixture(scope="module")
def search_dsn(pg_cluster) -> str:
    dsn = pg_cluster.copy_database("hostile_service")
    a_collection(dsn)
    return dsn


@pytest.fixture(scope="module")
def api(search_dsn) -> Iterator[str]:
    with serve_api(search_dsn) as live:
        yield live.url


def raw_request(url: str, head: bytes, body_parts: Iterator[bytes], read_seconds: float = 10) -> tuple[int, bytes]:
    """Send `head`, then body parts until the server answers; (body bytes sent, answer)."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    sent = 0
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head)
        for part in body_parts:
            if select.select([sock], [], [], 0.02)[0]:
                break  # the server answered: stop sending
            try:
                sock.sendall(part)
            except OSError:
                break
            sent += len(part)
        sock.settimeout(read_seconds)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:  # a reset once the answer is in, or silence until the timeout
            pass
    return sent, answer


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


SEARCH_HEAD = (
    b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nOrigin: https://browser.example\r\n"
)


@pytest.mark.parametrize(
    "framing",
    ["content-length", "chunked"],
    ids=["30 MB declared, 100 bytes sent: answered without waiting", "chunked body without length"],
)
def test_a_body_above_max_body_size_is_refused_before_it_is_read(api, framing):
    """Attack: a 30 MB POST /search body (declared or chunked) is read whole and parsed."""
    thirty_mb = 30 * MiB
    if framing == "content-length":
        head = SEARCH_HEAD + f"Content-Length: {thirty_mb}\r\n\r\n".encode()
        parts = iter([b"{" + b" " * 99])  # and nothing more: the server must not wait for it
    else:
        head = SEARCH_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        parts = (b"10000\r\n" + b" " * 0x10000 + b"\r\n" for _ in range(thirty_mb // 0x10000))
    started = time.monotonic()
    sent, answer = raw_request(api, head, parts)
    assert answer, "no answer: the server waited for the rest of the body"
    status, error = status_and_json(answer)
    assert status == 413, answer[:300]
    assert error["code"] == "ContentTooLarge" and "1048576 bytes" in error["description"]
    assert b"access-control-allow-origin: *" in answer.lower()  # a browser can read why
    assert sent < 8 * MiB, f"{sent} bytes of the body were taken before the answer"
    assert time.monotonic() - started < 10
    # An ordinary client gets the same answer, and a body within the limit is still served.
    json_type = {"Content-Type": "application/json"}
    big = httpx.post(f"{api}/search", content=b"{" + b" " * thirty_mb + b"}", headers=json_type)
    assert big.status_code == 413 and big.json()["code"] == "ContentTooLarge"
    padded = json.dumps({"collections": ["c"], "limit": 1}).encode().ljust(MiB - 10)
    within = httpx.post(f"{api}/search", content=padded, headers=json_type)
    assert within.status_code == 200 and len(within.json()["features"]) == 1


def test_max_body_size_is_a_setting(search_dsn):
    """Attack: a deployment cannot lower the body limit (1 MiB would be every API's bound)."""
    with serve_api(search_dsn, max_body_size=4096) as live:
        body = json.dumps({"ids": ["x" * 100] * 45}).encode()  # 4.6 KB
        refused = httpx.post(f"{live.url}/search", content=body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 413
        assert "4096 bytes" in refused.json()["description"]
        small = httpx.post(f"{live.url}/search", json={"ids": ["x"]})
        assert small.status_code == 200


def test_a_filter_pgstac_would_translate_for_seconds_is_refused_at_once(api, search_dsn):
    """Attack: 5,000 ORed comparisons (240 KB, within the body limit) keep pgstac busy ~6 s."""
    started = time.monotonic()
    response = httpx.post(f"{api}/search", json=or_filter(5000), timeout=60)
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.text[:300]
    assert "more than 1000 operators" in response.json()["description"]
    assert elapsed < 2, f"{elapsed:.1f} s: the filter reached the database"
    assert settled(search_dsn, 0) == []


def test_a_query_past_statement_timeout_is_stopped_and_frees_its_backend(search_dsn):
    """Attack: an allowed but slow search (1,000 operators) runs as long as pgstac takes."""
    slow = or_filter(999)  # 1,000 operators: the most a filter may have
    with serve_api(search_dsn, statement_timeout=10) as patient:  # the control: it is a valid search
        started = time.monotonic()
        answered = httpx.post(f"{patient.url}/search", json=slow, timeout=60)
        took = time.monotonic() - started
    assert answered.status_code == 200 and len(answered.json()["features"]) == 5
    assert took > 0.3, f"the search took {took:.2f} s: too fast to show a 0.1 s timeout"

    with serve_api(search_dsn, statement_timeout=0.1) as strict:
        started = time.monotonic()
        stopped = httpx.post(f"{strict.url}/search", json=slow, timeout=60)
        elapsed = time.monotonic() - started
        assert stopped.status_code == 503, stopped.text[:300]
        assert stopped.json()["code"] == "QueryTimeout" and "(0.1 s)" in stopped.json()["description"]
        assert "retry-after" not in stopped.headers  # the same search would be stopped again
        assert elapsed < took, "the query was not stopped early"
        assert settled(search_dsn, 0.5) == [], "a backend is still busy with the stopped query"
        # The connection went back to the pool in working order: the next search is served.
        assert httpx.post(f"{strict.url}/search", json={"ids": ["i1"]}).json()["features"][0]["id"] == "i1"


# -- the write token -------------------------------------------------------------------------
WEAK_TOKENS = {
    "one character": "x",
    "whitespace only": "   ",
    "short": "s3cr3t-15-chars",
    "padded with spaces": "  a-long-enough-token-0123456789  ",
    "a trailing newline (from a file)": "a-long-enough-token-0123456789\n",
}


@pytest.mark.parametrize("token", WEAK_TOKENS.values(), ids=WEAK_TOKENS.keys())
def test_a_weak_transactions_token_refuses_the_start_up(token):
    """Attack: a one-character or whitespace-only TRANSACTIONS_TOKEN guards the write routes."""
    dsn = "postgresql://u:p@127.0.0.1:9/db"
    Settings(database_url=dsn, enable_transactions_extensions=True, transactions_token="a-good-token-0123456789")
    with pytest.raises(ValidationError, match="TRANSACTIONS_TOKEN is too weak") as refused:
        Settings(database_url=dsn, enable_transactions_extensions=True, transactions_token=token)
    secret = token.strip()
    leaked = len(secret) >= 8 and secret in str(refused.value)  # (a 1-character token is in any text)
    assert not leaked
    result = zarr_stac(
        "serve",
        "--dsn",
        dsn,
        env={"ENABLE_TRANSACTIONS_EXTENSIONS": "true", "TRANSACTIONS_TOKEN": token},
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "TRANSACTIONS_TOKEN is too weak" in result.stderr
    no_traceback(result)
    assert not (len(secret) >= 8 and secret in result.stderr)


# -- a run that catalogued nothing -------------------------------------------------------------
def broken_stores(folder: Path) -> Path:
    """Two stores, neither catalogable: metadata that is not JSON, a group without coordinates."""
    (folder / "bad.zarr").mkdir(parents=True)
    (folder / "bad.zarr" / ".zgroup").write_text("not json")
    (folder / "empty.zarr").mkdir()
    (folder / "empty.zarr" / ".zgroup").write_text('{"zarr_format": 2}')
    return folder


def test_a_build_where_every_store_failed_exits_1(tmp_path):
    """Attack: every store fails and `build` says exit 0, so a cron job reports success."""
    stores, output = broken_stores(tmp_path / "stores"), tmp_path / "catalogue"
    for run in ("first", "rerun"):
        result = zarr_stac("build", str(stores), "-o", str(output))
        assert result.returncode == 1, f"{run}: {result.stderr}"
        assert "nothing catalogued: every store failed (2 skipped)" in result.stderr
        no_traceback(result)
    # One good store among them: a partial run succeeds without --strict, and so does a
    # rerun where nothing changed (its Item kept from the last run counts as catalogued).
    write_dataset(era_like_daily(), str(stores / "good.zarr"))
    for run in ("with a good store", "rerun, nothing changed"):
        result = zarr_stac("build", str(stores), "-o", str(output))
        assert result.returncode == 0, f"{run}: {result.stderr}"
        assert "nothing catalogued" not in result.stderr
    assert re.search(r"of which unchanged \(not re-read\)\s*│\s*1\b", result.stderr), result.stderr


def test_a_load_where_every_store_failed_exits_1(tmp_path, pgstac_dsn):
    """Attack: every store fails and `load` says exit 0 with nothing in pgstac."""
    result = zarr_stac("load", str(broken_stores(tmp_path / "stores")), "--dsn", pgstac_dsn)
    assert result.returncode == 1, result.stderr
    assert "nothing catalogued: every store failed (2 skipped)" in result.stderr
    no_traceback(result)


def test_a_load_of_a_static_catalogue_whose_every_item_is_refused_exits_1(tmp_path, pgstac_dsn):
    """Attack: a static catalogue whose only Item PostgreSQL refuses (a NUL in its title) loads "fine"."""
    extent = pystac.Extent(pystac.SpatialExtent([[0.0, 0.0, 1.0, 1.0]]), pystac.TemporalExtent([[None, None]]))
    catalog = pystac.Catalog("root", "root")
    collection = pystac.Collection("c", "c", extent, license="CC0-1.0")
    item = pystac.Item(
        "i",
        {"type": "Point", "coordinates": [0.5, 0.5]},
        [0.5, 0.5, 0.5, 0.5],
        None,
        {"title": "bad\x00title"},
        start_datetime=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
        end_datetime=dt.datetime(2000, 2, 1, tzinfo=dt.timezone.utc),
    )
    collection.add_item(item)
    catalog.add_child(collection)
    catalog.normalize_and_save(str(tmp_path / "static"), pystac.CatalogType.SELF_CONTAINED)
    result = zarr_stac("load", str(tmp_path / "static" / "catalog.json"), "--dsn", pgstac_dsn)
    assert result.returncode == 1, result.stderr
    assert "nothing loaded: every item was refused (1 skipped)" in result.stderr
    no_traceback(result)


# -- the local cluster: our password goes to our server only ----------------------------------
class Foreign:
    """Another PostgreSQL cluster (another user's, another project's), logging every connection."""

    def __init__(self, port: int) -> None:
        self.cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="zarr-stac-foreign-")), port=port, durable=False)
        self.cluster.init()
        with open(self.cluster.pgdata / "postgresql.auto.conf", "a") as conf:
            conf.write("log_connections = on\n")

    def move_to(self, port: int) -> None:
        self.cluster.stop()
        self.cluster.port = port
        self.cluster.start()

    def connections(self) -> int:
        return self.cluster.log_file.read_text(errors="replace").count("connection received")


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Path, int, Foreign]]:
    """Ours, started by `zarr-stac db start --port N`, and a foreign one on the port the
    commands used to take for ours (54329)."""
    ensure_postgis(install=False)
    if port_in_use(DEFAULT_PORT):
        pytest.skip(f"port {DEFAULT_PORT} is taken on this machine: the foreign cluster needs it")
    data_dir = Path(tempfile.mkdtemp(prefix="zarr-stac-ours-"))
    os.chmod(data_dir, 0o755)  # as root, the server runs as `postgres`, which must reach it
    foreign = Foreign(DEFAULT_PORT)
    ours = free_port()
    try:
        foreign.cluster.start()
        started = zarr_stac("db", "start", "--data-dir", str(data_dir), "--port", str(ours), timeout=300)
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{ours}/" in started.stderr
        yield data_dir, ours, foreign
    finally:
        zarr_stac("db", "stop", "--data-dir", str(data_dir), timeout=60)
        foreign.cluster.destroy()
        PostgresCluster(data_dir / "postgres", port=ours).destroy()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.postgres  # `clusters`: ours and a foreign one, started here
def test_db_status_names_our_port_and_connects_to_nothing(clusters):
    """Attack: after `db start --port N`, `db status` calls the foreign cluster on 54329 ours."""
    data_dir, ours, foreign = clusters
    before = foreign.connections()
    result = zarr_stac("db", "status", "--data-dir", str(data_dir), timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"postgresql://zarr_stac:***@127.0.0.1:{ours}/zarr_stac: running"
    assert foreign.connections() == before


@pytest.fixture(scope="module")
def good_stores(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    write_dataset(era_like_daily(), str(folder / "era-like-daily.zarr"))
    return folder


@pytest.mark.postgres  # `clusters`: ours and a foreign one, started here
def test_commands_without_dsn_load_and_serve_our_cluster_and_never_call_another(clusters, good_stores):
    """Attack: `load` and `serve` without --dsn send our password to whatever listens on 54329."""
    data_dir, ours, foreign = clusters
    before = foreign.connections()
    migrated = zarr_stac("db", "migrate", "--data-dir", str(data_dir))
    assert migrated.returncode == 0, migrated.stderr
    loaded = zarr_stac("load", str(good_stores), "--data-dir", str(data_dir))
    assert loaded.returncode == 0, loaded.stderr
    assert f"using the local cluster postgresql://zarr_stac:***@127.0.0.1:{ours}/zarr_stac" in loaded.stderr
    password = (data_dir / "postgres" / "password").read_text().strip()
    with psycopg.connect(f"postgresql://zarr_stac:{password}@127.0.0.1:{ours}/zarr_stac") as conn:
        assert conn.execute("SELECT id FROM pgstac.items").fetchall() == [("era-like-daily",)]

    api_port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "ZARR_STAC_"))}
    server = subprocess.Popen(
        [*ZARR_STAC, "serve", "--data-dir", str(data_dir), "--port", str(api_port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_answering(f"http://127.0.0.1:{api_port}/", server)
        items = httpx.get(f"http://127.0.0.1:{api_port}/search").json()["features"]
        assert [item["id"] for item in items] == ["era-like-daily"]
    finally:
        server.terminate()
        server.wait(10)
    assert foreign.connections() == before, "the foreign cluster was called"


@pytest.mark.postgres  # `clusters`: ours and a foreign one, started here
def test_db_start_again_answers_in_seconds(clusters):
    """Attack: a second `db start` (no --port) waits 60 s on the foreign cluster's refusal."""
    data_dir, ours, foreign = clusters
    before = foreign.connections()
    started = time.monotonic()
    again = zarr_stac("db", "start", "--data-dir", str(data_dir), timeout=45)
    assert again.returncode == 0, again.stderr
    assert f"127.0.0.1:{ours}/" in again.stderr
    elsewhere = zarr_stac("db", "start", "--data-dir", str(data_dir), "--port", str(free_port()), timeout=45)
    assert elsewhere.returncode == 1
    assert f"already runs on port {ours}" in elsewhere.stderr
    no_traceback(elsewhere)
    assert time.monotonic() - started < 40
    assert foreign.connections() == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    "left_behind",
    [None, "a postmaster.pid naming a live process that is not our server"],
    ids=["stopped cleanly", "stale postmaster.pid, PID reused"],
)
def test_a_stopped_cluster_is_never_mistaken_for_the_server_on_its_port(clusters, good_stores, left_behind):
    """Attack: our cluster stopped, another server takes its port, and gets our password."""
    data_dir, ours, foreign = clusters
    stopped = zarr_stac("db", "stop", "--data-dir", str(data_dir), timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    pid_file = data_dir / "postgres" / "pgdata" / "postmaster.pid"
    foreign.move_to(ours)
    try:
        if left_behind:  # what a crash leaves when the PID then goes to another process
            pid_file.write_text(f"{os.getpid()}\n{pid_file.parent}\n0\n{ours}\n\n127.0.0.1\n0 0\nready\n")
        before = foreign.connections()
        status = zarr_stac("db", "status", "--data-dir", str(data_dir), timeout=30)
        assert status.stdout.strip().endswith(f"127.0.0.1:{ours}/zarr_stac: stopped"), status.stdout
        for command in (["load", str(good_stores)], ["db", "migrate"]):
            refused = zarr_stac(*command, "--data-dir", str(data_dir), timeout=30)
            assert refused.returncode == 1, refused.stderr
            assert "is not running: start it with `zarr-stac db start`" in refused.stderr
            no_traceback(refused)
        started = time.monotonic()
        taken = zarr_stac("db", "start", "--data-dir", str(data_dir), timeout=45)
        assert taken.returncode == 1, taken.stderr
        assert f"port {ours} on 127.0.0.1 is taken by another server" in taken.stderr
        assert time.monotonic() - started < 30
        assert foreign.connections() == before, "the foreign cluster was called"
    finally:
        if left_behind:
            pid_file.unlink(missing_ok=True)
        foreign.move_to(DEFAULT_PORT)
        restarted = zarr_stac("db", "start", "--data-dir", str(data_dir), timeout=120)
        assert restarted.returncode == 0, restarted.stderr
