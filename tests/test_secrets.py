"""Security: secrets never leak (issue 7).

Unique secrets are planted everywhere a user puts them: S3 keys and a session
token in the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`), other S3 keys as the secret storage options of a mapping
configuration file (one through `${VAR}`, one written in the file), the
PostgreSQL password (inside the DSN, by `--dsn` and `DATABASE_URL`), a wrong
PostgreSQL password, the transactions token and a wrong bearer token; and, where a
catalogue names its stores (issue 25), credentials in store URLs (an HTTP user name and
password, a `?token=`, an Azure SAS signature, an s3:// URL's KEY:SECRET, a wrong token, a
nested intake catalogue's URL) and an intake source's `storage_options` keys.

Every command of the real `zarr-stac` CLI then runs as a subprocess against the
real S3 server and PostgreSQL cluster, on the success paths and the error paths
(unreachable S3, an endpoint refusing the signature as AWS does, wrong and
unreachable databases, failing stores, bad configuration files, refused writes).
Everything they produce is collected: stdout and stderr, every file they write
(catalogue JSON, geoparquet, the ledger, the pending-deletes list, a catalogue written
to a bucket), the API's responses and its log, the PostgreSQL server log and every
row of the pgstac database. No secret may appear in any of it: raw,
URL-encoded, base64, hex, or cut into pieces (any 16 consecutive characters).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import psycopg
import pytest

from zarr_stac.common.storage import StorageOptions
from zarr_stac.samples import era_like_daily, write_dataset
from zarr_stac.services import free_port

from .conftest import SCHEMA_DIR, wait_until_answering
from .guarded_http import GuardedHTTP

ZARR_STAC = str(Path(sys.executable).with_name("zarr-stac"))
WINDOW = 16  # any this many consecutive characters of a secret count as a leak
PARALLEL = 8  # CLI processes at once (their time goes to imports, or to waiting for a database)


# -- the secrets and the scan ------------------------------------------------------------
def plant(prefix: str) -> str:
    """A unique secret; `/` and `+` (as in real AWS secrets) make its URL-encoded form differ."""
    return f"{prefix}{secrets.token_hex(10)}/{secrets.token_hex(6)}+{secrets.token_hex(6)}"


def forms(secret: str) -> dict[str, str]:
    """How a secret may show up in an output."""
    found = {
        "raw": secret,
        "url-encoded": quote(secret, safe=""),
        "url-encoded (+)": quote_plus(secret),
        "hex": secret.encode().hex(),
    }
    for pad in range(3):
        # The secret inside a longer base64 text (`user:secret`, a JSON document): its
        # encoding depends on its offset modulo 3; drop the groups it shares with neighbours.
        encoded = base64.b64encode(b"\0" * pad + secret.encode()).decode()
        inner = encoded[4 if pad else 0 : -4]
        found[f"base64 (offset {pad})"] = inner
        found[f"urlsafe base64 (offset {pad})"] = inner.replace("+", "-").replace("/", "_")
    return found


def pieces(secret: str) -> list[str]:
    return [secret[start : start + WINDOW] for start in range(len(secret) - WINDOW + 1)]


def scan(text: str, planted: dict[str, str]) -> list[str]:
    """Every secret found in `text`, with the form it was found in."""
    leaks = []
    for name, secret in planted.items():
        found = [form for form, value in forms(secret).items() if value in text]
        if not found:
            found = [f"part {piece!r}" for piece in pieces(secret) if piece in text][:1]
        leaks.extend(f"{name} ({form})" for form in found)
    return leaks


def masked_excerpt(text: str, planted: dict[str, str]) -> str:
    """The text around the first leak, the secret masked (a failure report must not leak)."""
    for secret in planted.values():
        for value in [*forms(secret).values(), *pieces(secret)]:
            at = text.find(value)
            if at >= 0:
                around = text[max(0, at - 300) : at + len(value) + 150]
                for other in planted.values():
                    for hidden in [*forms(other).values(), *pieces(other)]:
                        around = around.replace(hidden, "<SECRET>")
                return around
    return ""


# -- a wrong endpoint that answers as AWS S3 does to a wrong secret key ------------------
class SignatureMismatchS3(BaseHTTPRequestHandler):
    """403 SignatureDoesNotMatch, quoting (as AWS does) the access key id and the
    canonical request, session token included: a client must not print all of it."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key_id = re.search(r"Credential=([^/,]+)/", self.headers.get("Authorization", ""))
        token = self.headers.get("X-Amz-Security-Token", "")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
            "<Message>The request signature we calculated does not match the signature you provided. Check your "
            "key and signing method.</Message>"
            f"<AWSAccessKeyId>{key_id.group(1) if key_id else ''}</AWSAccessKeyId>"
            f"<CanonicalRequest>{self.command}\n{self.path}\nhost:{self.headers.get('Host')}\nx-amz-security-token:{token}</CanonicalRequest>"
            "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


# -- running the real CLI and collecting what it produces ----------------------------------
@dataclass
class Run:
    label: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0


@dataclass
class Outputs:
    planted: dict[str, str]
    runs: dict[str, Run] = field(default_factory=dict)
    # Not secrets but never in STAC: an endpoint used only to crawl (logs may name it).
    crawl_only: dict[str, str] = field(default_factory=dict)
    public_endpoint: str = ""
    mirror_bucket: str = ""
    # The HTTP server whose stores need the credentials their URLs hold, and its URL.
    guarded: GuardedHTTP | None = None
    guarded_url: str = ""
    texts: dict[str, str] = field(default_factory=dict)  # where -> what was produced there
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, where: str, text: str) -> None:
        with self.lock:
            assert where not in self.texts, where
            self.texts[where] = text


def in_parallel(*jobs: Callable[[], object]) -> None:
    with ThreadPoolExecutor(PARALLEL) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def read_tree(root: Path) -> dict[str, str]:
    """Every file below `root` (parquet also as its rows)."""
    import pyarrow.parquet as pq

    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", errors="replace")  # the ledger
        if path.suffix == ".parquet":
            text += "\n" + json.dumps(pq.read_table(path).to_pylist(), default=str)
        found[str(path.relative_to(root))] = text
    return found


def dump_database(dsn: str) -> str:
    """Every row of every pgstac (and public) table, as JSON."""
    lines = []
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables "
            "WHERE table_schema IN ('pgstac', 'public', 'zarr_stac') AND table_type = 'BASE TABLE' AND table_name <> "
            "'spatial_ref_sys'"
        ).fetchall()
        for (table,) in tables:
            lines.extend(f"{table}: {row}" for (row,) in conn.execute(f"SELECT row_to_json(t)::text FROM {table} t"))
        if ("zarr_stac.ledger",) in tables:  # the crawl's ledger, gzip-compressed
            for sources, data in conn.execute("SELECT sources, data FROM zarr_stac.ledger"):
                lines.append(f"zarr_stac.ledger {sources}: {gzip.decompress(data).decode('utf-8', 'replace')}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def outputs(s3_server, sample_bucket, pg_cluster, tmp_path_factory) -> Outputs:
    tmp = tmp_path_factory.mktemp("secrets")
    planted = {
        "AWS_ACCESS_KEY_ID": "ZSENVKEY" + secrets.token_hex(12).upper(),
        "AWS_SECRET_ACCESS_KEY": plant("zsEnvSecret"),
        "AWS_SESSION_TOKEN": plant("zsEnvToken"),
        "config key (${VAR})": "ZSCFGKEY" + secrets.token_hex(12).upper(),
        "config secret (in the file)": plant("zsCfgSecret"),
        "PostgreSQL password": pg_cluster.password,
        "wrong PostgreSQL password": plant("zsWrongPg"),
        "TRANSACTIONS_TOKEN": plant("zsTxToken"),
        "wrong bearer token": plant("zsWrongBearer"),
        "URL user name": "zsUrlUser" + secrets.token_hex(10),
        "URL password": plant("zsUrlPassword"),
        "URL token": plant("zsUrlToken"),
        "URL SAS signature": plant("zsUrlSas"),
        "wrong URL token": plant("zsWrongUrlToken"),
        "s3:// URL key": "ZSURLKEY" + secrets.token_hex(12).upper(),
        "s3:// URL secret": plant("zsS3UrlSecret"),
        "intake storage_options key": "ZSINTAKEKEY" + secrets.token_hex(12).upper(),
        "intake storage_options secret": plant("zsIntakeSecret"),
    }
    out = Outputs(planted)
    endpoint = s3_server.endpoint_url
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PG", "DATABASE_URL", "ZARR_STAC_", "ENABLE_TRANSACTIONS", "TRANSACTIONS_TOKEN"))
    }
    env.update(
        AWS_ACCESS_KEY_ID=planted["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=planted["AWS_SECRET_ACCESS_KEY"],
        AWS_SESSION_TOKEN=planted["AWS_SESSION_TOKEN"],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
        CFG_KEY=planted["config key (${VAR})"],
        S3FS_LOGGING_LEVEL="DEBUG",  # the verbose log there is: s3fs's, of every S3 call
        COLUMNS="400",  # rich wraps nothing (the scan would still find pieces of a secret)
        PYTHONWARNINGS="default",
    )

    def run(
        label: str, *args: str, expect: int | None = 0, extra_env: dict[str, str] | None = None, timeout: float = 120
    ) -> Run:
        """Run `zarr-stac ARGS`; `expect=None`: any failure status."""
        started = time.monotonic()
        result = subprocess.run(
            [ZARR_STAC, *args],
            env={**env, **(extra_env or {})},
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        done = Run(label, result.returncode, result.stdout, result.stderr, time.monotonic() - started)
        with out.lock:
            out.runs[label] = done
        out.add(f"{label}: stdout", result.stdout)
        out.add(f"{label}: stderr", result.stderr)
        # (the failure message masks the secrets: it is an output too)
        assert (result.returncode == expect) if expect is not None else (result.returncode != 0), (
            f"{label}: exit {result.returncode}\n"
            + masked(result.stdout[-3000:] + "\n" + result.stderr[-3000:], planted)
        )
        return done

    # A private bucket written with the configuration file's keys (moto accepts any):
    # two stores in one collection (one is removed between two builds), a broken one in another.
    bucket = f"s3://secrets-{secrets.token_hex(4)}"
    s3_server.create_bucket(bucket.removeprefix("s3://"))
    config_storage = StorageOptions(
        endpoint_url=endpoint, key=planted["config key (${VAR})"], secret=planted["config secret (in the file)"]
    )
    for name in ("keep", "drop"):
        write_dataset(era_like_daily(), f"{bucket}/era/{name}.zarr", config_storage)
    fs = config_storage.filesystem(bucket)
    fs.pipe(f"{bucket}/bad/broken.zarr/.zgroup", b"{not json")
    # A second source crawled, with the keys, through another spelling of the endpoint
    # (IPv4-mapped IPv6), whose readers are told the public one (public_storage_options):
    # where storage:schemes and xarray:storage_options would pick up a crawl endpoint.
    mirror = f"{bucket}-mirror"
    s3_server.create_bucket(mirror.removeprefix("s3://"))
    crawl_endpoint = endpoint.replace("127.0.0.1", "[::ffff:127.0.0.1]")
    assert crawl_endpoint != endpoint
    out.crawl_only["crawl-only endpoint"] = crawl_endpoint.removeprefix("http://")
    out.public_endpoint, out.mirror_bucket = endpoint, mirror.removeprefix("s3://")
    write_dataset(era_like_daily(), f"{mirror}/mirror/one.zarr", config_storage)

    # Stores named with credentials (issue 25): an HTTP server that serves its stores only to
    # requests with the password or a token, a list of URLs holding them (and an s3:// URL's
    # KEY:SECRET, and a wrong token), an intake catalogue with keys in its storage_options and a
    # nested catalogue on the server whose URL holds the password.
    guarded_root = tmp_path_factory.mktemp("guarded")
    for name in ("basic", "token", "sas"):
        write_dataset(era_like_daily(), str(guarded_root / "http" / f"{name}.zarr"))
    user, password = planted["URL user name"], planted["URL password"]
    guarded = GuardedHTTP(
        guarded_root,
        logins={(user, password)},
        queries=[{"token": planted["URL token"]}, {"sv": "2022-11-02", "sig": planted["URL SAS signature"]}],
    ).__enter__()
    http = out.guarded_url = guarded.url
    out.guarded = guarded
    with_password = f"http://{quote(user, safe='')}:{quote(password, safe='')}@{http.removeprefix('http://')}"
    (guarded_root / "nested.yaml").write_text(
        "sources:\n  basic:\n    driver: zarr\n    args: {urlpath: '{{ CATALOG_DIR }}/http/basic.zarr'}\n"
    )
    url_list = tmp / "urls.txt"
    url_list.write_text(
        f"{with_password}/http/basic.zarr\n"
        f"{http}/http/token.zarr?token={quote(planted['URL token'], safe='')}\n"
        f"{http}/http/sas.zarr?sv=2022-11-02&sig={quote(planted['URL SAS signature'], safe='')}\n"
        f"s3://{planted['s3:// URL key']}:{quote(planted['s3:// URL secret'], safe='')}@"
        f"{bucket.removeprefix('s3://')}/era/keep.zarr\n"
        f"{http}/http/token.zarr?token={quote(planted['wrong URL token'], safe='')}\n"  # refused: a skip line
    )
    intake_keys = {"key": planted["intake storage_options key"], "secret": planted["intake storage_options secret"]}
    entries = tmp / "entries.yaml"
    entries.write_text(
        json.dumps(
            {
                "sources": {
                    "era": {
                        "driver": "zarr",
                        "args": {
                            "urlpath": f"{bucket}/era/keep.zarr",
                            "storage_options": {"client_kwargs": {"endpoint_url": endpoint}, **intake_keys},
                        },
                    },
                    "unreachable": {
                        "driver": "zarr",
                        "args": {
                            "urlpath": f"{bucket}/era/keep.zarr",
                            "storage_options": {"endpoint_url": f"http://127.0.0.1:{free_port()}", **intake_keys},
                        },
                    },
                    "nested": {"driver": "yaml_file_cat", "args": {"path": f"{with_password}/nested.yaml"}},
                }
            }
        )
    )
    urls_out, entries_out = tmp / "urls", tmp / "entries"

    secret_in_file = planted["config secret (in the file)"]
    config = tmp / "mapping.yaml"
    config.write_text(
        f"""
catalog: {{id: secrets-check, title: Secrets check}}
sources:
  - url: {bucket}
    storage:
      endpoint_url: {endpoint}
      key: ${{CFG_KEY}}
      secret: "{secret_in_file}"
      public_anon: true
      retries: 1
  - url: {mirror}
    storage:
      endpoint_url: "{crawl_endpoint}"
      key: ${{CFG_KEY}}
      secret: "{secret_in_file}"
      retries: 1
    public_storage_options: {{anon: true, endpoint_url: "{endpoint}"}}
"""
    )
    dead_endpoint = f"http://127.0.0.1:{free_port()}"
    unreachable = tmp / "unreachable.yaml"
    unreachable.write_text(
        config.read_text().replace(endpoint, dead_endpoint).replace("retries: 1", "retries: 0\n      timeout: 2")
    )
    bad_configs = {
        "YAML syntax error on the secret's line": (
            f'sources:\n  - url: {bucket}\n    storage:\n      secret: "{secret_in_file}\n      key: x\n'
        ),
        "YAML tab after the secret": f"sources:\n  - url: {bucket}\n    storage:\n      secret: "
        f"{secret_in_file}\n\tkey: x\n",
        "unknown storage option holding a secret": f"sources:\n  - url: {bucket}\n    storage:\n      password: "
        f"{secret_in_file}\n",
        "secret of the wrong type": f"sources:\n  - url: {bucket}\n    storage:\n      secret: "
        f"['{secret_in_file}']\n      key: {{nested: '${{CFG_KEY}}'}}\n",
        "secret in a number field": f"sources:\n  - url: {bucket}\n    storage: "
        f"{{endpoint_url: {endpoint}, timeout: '{secret_in_file}'}}\n",
        "secret as the sources": f"sources: {secret_in_file}\n",
        "undefined variable": f"sources:\n  - url: {bucket}\n    storage: "
        f"{{key: '${{CFG_KEY}}', secret: '${{NOT_SET_{secrets.token_hex(3)}}}'}}\n",
    }
    bad_paths = {}
    for number, (name, text) in enumerate(bad_configs.items()):
        bad_paths[name] = tmp / f"bad-{number}.yaml"
        bad_paths[name].write_text(text)

    database = f"secrets_{secrets.token_hex(4)}"
    dsn = pg_cluster.copy_database(database)
    wrong_dsn = dsn.replace(quote(pg_cluster.password, safe=""), quote(planted["wrong PostgreSQL password"], safe=""))
    dead_dsn = dsn.replace(f":{pg_cluster.port}/", f":{free_port()}/")
    query_dsn = (
        f"postgresql://{pg_cluster.user}@{pg_cluster.host}:{pg_cluster.port}/{database}"
        f"?password={quote(pg_cluster.password, safe='')}"
    )
    assert len({dsn, wrong_dsn, dead_dsn, query_dsn}) == 4
    keyvalue_wrong_dsn = (
        f"host={pg_cluster.host} port={pg_cluster.port} dbname={database} user={pg_cluster.user} "
        f"password={planted['wrong PostgreSQL password']}"
    )
    without_pgstac = f"plain_{secrets.token_hex(4)}"
    with psycopg.connect(pg_cluster._dsn_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{without_pgstac}"')
    no_pgstac_dsn = pg_cluster._dsn_for(without_pgstac)

    wrong_secret = ThreadingHTTPServer(("127.0.0.1", 0), SignatureMismatchS3)
    threading.Thread(target=wrong_secret.serve_forever, daemon=True).start()
    wrong_endpoint = f"http://127.0.0.1:{wrong_secret.server_address[1]}"

    static, configured, bucket_catalog = tmp / "static", tmp / "configured", f"{bucket}/published"
    empty = tmp / "empty"
    empty.mkdir()
    try:
        # -- 1: everything that needs nothing before it (the slow database errors first) --
        in_parallel(
            lambda: run("db migrate with a wrong password", "db", "migrate", "--dsn", wrong_dsn, expect=None),
            lambda: run(
                "load --config with a wrong password (DATABASE_URL)",
                "load",
                "--config",
                str(config),
                extra_env={"DATABASE_URL": wrong_dsn},
                expect=None,
            ),
            lambda: run(
                "load into an unreachable database", "load", "--config", str(config), "--dsn", dead_dsn, expect=None
            ),
            lambda: run(
                "load --config with a wrong password (--dsn)",
                "load",
                "--config",
                str(config),
                "--dsn",
                wrong_dsn,
                expect=None,
            ),
            lambda: run(
                "load a missing bucket catalogue",
                "load",
                f"{sample_bucket}/no-such-catalogue/catalog.json",
                "--dsn",
                dsn,
                "--endpoint-url",
                endpoint,
                expect=None,
            ),
            lambda: run(
                "serve with a wrong password",
                "serve",
                "--port",
                str(free_port()),
                extra_env={"DATABASE_URL": wrong_dsn},
                expect=None,
                timeout=90,
            ),
            lambda: run(
                "serve an unreachable database",
                "serve",
                "--port",
                str(free_port()),
                extra_env={"DATABASE_URL": dead_dsn},
                expect=None,
                timeout=90,
            ),
            lambda: run(
                "serve with a wrong password (key=value DSN)",
                "serve",
                "--port",
                str(free_port()),
                "--dsn",
                keyvalue_wrong_dsn,
                expect=1,
            ),
            lambda: run(
                "load into a database without pgstac", "load", "--config", str(config), "--dsn", no_pgstac_dsn, expect=1
            ),
            lambda: run(
                "inspect in a missing bucket",
                "inspect",
                f"s3://no-such-bucket-{secrets.token_hex(3)}/x.zarr",
                "--endpoint-url",
                endpoint,
                expect=1,
            ),
            # (the password last: a message that quotes the settings' ends shows it)
            lambda: run(
                "serve with transactions but no token",
                "serve",
                "--port",
                str(free_port()),
                extra_env={"DATABASE_URL": query_dsn, "ENABLE_TRANSACTIONS_EXTENSIONS": "true"},
                expect=None,
            ),
            lambda: run("crawl", "crawl", sample_bucket, "--endpoint-url", endpoint),
            lambda: run(
                "build a list of URLs with credentials",
                "build",
                str(url_list),
                "-o",
                str(urls_out),
                "--endpoint-url",
                endpoint,
                "--geoparquet",
            ),
            lambda: run("crawl a list of URLs with credentials", "crawl", str(url_list), "--endpoint-url", endpoint),
            lambda: run("inspect a store with a password in its URL", "inspect", f"{with_password}/http/basic.zarr"),
            lambda: run(
                "inspect a store with a wrong token",
                "inspect",
                f"{http}/http/token.zarr?token={quote(planted['wrong URL token'], safe='')}",
                expect=1,
            ),
            lambda: run(
                "build an intake catalogue with keys in storage_options",
                "build",
                str(entries),
                "-o",
                str(entries_out),
                "--retries",
                "0",
                "--timeout",
                "2",
            ),
            lambda: run("crawl an intake catalogue with keys in storage_options", "crawl", str(entries)),
            lambda: run(
                "inspect", "inspect", f"{sample_bucket}/ocean/north-atlantic-sst.zarr", "--endpoint-url", endpoint
            ),
            lambda: run(
                "build (env keys)",
                "build",
                sample_bucket,
                "-o",
                str(static),
                "--endpoint-url",
                endpoint,
                "--geoparquet",
            ),
            lambda: run("build --config", "build", "--config", str(config), "-o", str(configured), "--geoparquet"),
            lambda: run("build to a bucket", "build", sample_bucket, "-o", bucket_catalog, "--endpoint-url", endpoint),
            lambda: run(
                "crawl, signature refused", "crawl", sample_bucket, "--endpoint-url", wrong_endpoint, expect=None
            ),
            lambda: run(
                "inspect, signature refused",
                "inspect",
                f"{sample_bucket}/ocean/north-atlantic-sst.zarr",
                "--endpoint-url",
                wrong_endpoint,
                expect=None,
            ),
            lambda: run(
                "build, signature refused",
                "build",
                sample_bucket,
                "-o",
                str(tmp / "refused"),
                "--endpoint-url",
                wrong_endpoint,
                "--strict",
                expect=None,
            ),
            lambda: run(
                "build to a bucket, signature refused",
                "build",
                str(empty),
                "-o",
                f"{bucket}/refused",
                "--endpoint-url",
                wrong_endpoint,
                expect=None,
            ),
            lambda: run(
                "build --config, S3 unreachable",
                "build",
                "--config",
                str(unreachable),
                "-o",
                str(tmp / "unreachable"),
                expect=None,
            ),
            lambda: run(
                "inspect a broken store",
                "inspect",
                f"{bucket}/bad/broken.zarr",
                "--endpoint-url",
                endpoint,
                expect=None,
            ),
            lambda: run(
                "validate a missing bucket catalogue",
                "validate",
                f"{bucket}/nothing/catalog.json",
                "--endpoint-url",
                endpoint,
                expect=None,
            ),
            *[
                (
                    lambda name=name, path=path, command=command: run(
                        f"{command} with a bad config: {name}",
                        command,
                        "--config",
                        str(path),
                        *(["-o", str(tmp / "never")] if command == "build" else ["--dsn", dsn]),
                        expect=2,
                    )
                )
                for (name, path), command in zip(bad_paths.items(), ["build", "load"] * len(bad_paths))
            ],
        )
        fs.rm(f"{bucket}/era/drop.zarr", recursive=True)
        # -- 2: what reads what stage 1 wrote --------------------------------------------
        in_parallel(
            lambda: run("validate", "validate", str(static), "--schemas", str(SCHEMA_DIR)),
            lambda: run(
                "validate a bucket catalogue",
                "validate",
                f"{bucket_catalog}/catalog.json",
                "--schemas",
                str(SCHEMA_DIR),
                "--endpoint-url",
                endpoint,
            ),
            lambda: run("load a static catalogue (--dsn)", "load", str(static), "--dsn", dsn),
            lambda: run(
                "build --config again (a store gone, one broken)",
                "build",
                "--config",
                str(config),
                "-o",
                str(configured),
                "--geoparquet",
                "--strict",
                expect=1,
            ),
        )
        run("load --config (DATABASE_URL)", "load", "--config", str(config), "--sync", extra_env={"DATABASE_URL": dsn})
        run("load a list of URLs with credentials", "load", str(url_list), "--dsn", dsn, "--endpoint-url", endpoint)
        run(
            "load an intake catalogue with keys in storage_options",
            "load",
            str(entries),
            "--dsn",
            dsn,
            "--retries",
            "0",
            "--timeout",
            "2",
        )
        # -- 3: the API --------------------------------------------------------------------
        serve(run, out, tmp, env, dsn, static)
    finally:
        wrong_secret.shutdown()
        guarded.__exit__()

    # -- files, objects and the database -----------------------------------------------------
    for where in (static, configured, urls_out, entries_out):
        for path, text in read_tree(where).items():
            out.add(f"file {where.name}/{path}", text)
    for key in fs.find(bucket_catalog):
        out.add(
            f"object s3://{key}",
            fs.cat_file(key).decode("utf-8", errors="replace") + json.dumps(fs.info(key), default=str),
        )
    for path in sorted(
        p
        for p in tmp.rglob("*")
        if p.is_file()
        and p.name not in ("urls.txt", "entries.yaml")  # the inputs, secrets and all
        and p.suffix != ".yaml"
        and not any(p.is_relative_to(tree) for tree in (static, configured, urls_out, entries_out))
    ):
        out.add(
            f"file {path.relative_to(tmp)}", path.read_bytes().decode("utf-8", errors="replace")
        )  # anything else a command wrote
    out.add("pgstac database", dump_database(dsn))
    if os.access(pg_cluster.log_file, os.R_OK):
        out.add("PostgreSQL server log", pg_cluster.log_file.read_text(errors="replace"))
    return out


def serve(run, out: Outputs, tmp: Path, env: dict[str, str], dsn: str, static: Path) -> None:
    """`zarr-stac serve` with transactions on: read everything, try writes, collect its log."""
    planted = out.planted
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [ZARR_STAC, "serve", "--port", str(port)],
        env={
            **env,
            "DATABASE_URL": dsn,
            "ENABLE_TRANSACTIONS_EXTENSIONS": "true",
            "TRANSACTIONS_TOKEN": planted["TRANSACTIONS_TOKEN"],
        },
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_answering(f"{api}/_mgmt/ping", server, seconds=90)
        item = json.loads(
            (
                static / "cmip6" / "ModelA.historical.r1i1p1f1.tas.gn" / "ModelA.historical.r1i1p1f1.tas.gn.json"
            ).read_text()
        )
        good, wrong = (
            {"Authorization": f"Bearer {planted[name]}"} for name in ("TRANSACTIONS_TOKEN", "wrong bearer token")
        )
        with httpx.Client(base_url=api, timeout=60) as client:
            responses = {
                "landing": client.get("/"),
                "conformance": client.get("/conformance"),
                "collections": client.get("/collections"),
                "collection": client.get("/collections/cmip6"),
                "items": client.get("/collections/cmip6/items", params={"limit": 100}),
                "item": client.get(f"/collections/cmip6/items/{item['id']}"),
                "search (GET)": client.get("/search", params={"limit": 100}),
                "search (POST)": client.post("/search", json={"limit": 100, "collections": ["cmip6"]}),
                "queryables": client.get("/collections/cmip6/queryables"),
                "api": client.get("/api"),
                "api.html": client.get("/api.html"),
                "health": client.get("/_mgmt/health"),
                "bad search": client.get("/search", params={"bbox": "not,a,bbox"}),
                "missing item": client.get("/collections/cmip6/items/nope"),
                "write without a token": client.post("/collections/cmip6/items", json=item),
                "write with a wrong token": client.post("/collections/cmip6/items", json=item, headers=wrong),
                "delete with a wrong token": client.delete(f"/collections/cmip6/items/{item['id']}", headers=wrong),
                "write with the token, invalid body": client.post(
                    "/collections/cmip6/items", json={"not": "an item"}, headers=good
                ),
                "write with the token": client.put(f"/collections/cmip6/items/{item['id']}", json=item, headers=good),
            }
        for name, response in responses.items():
            out.add(f"API {name}: {response.status_code}", f"{response.headers}\n{response.text}")
        out.runs["API"] = Run("API", 0, json.dumps({name: r.status_code for name, r in responses.items()}), "")
        run("validate the API", "validate", api, "--schemas", str(SCHEMA_DIR))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            stdout, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            stdout, stderr = server.communicate()
        out.add("serve: stdout", stdout)
        out.add("serve: stderr", stderr)
        out.runs["serve"] = Run("serve", server.returncode, stdout, stderr)


def masked(text: str, planted: dict[str, str]) -> str:
    for secret in planted.values():
        for hidden in [*forms(secret).values(), *pieces(secret)]:
            text = text.replace(hidden, "<SECRET>")
    return text


# -- the checks ------------------------------------------------------------------------
def test_the_scan_finds_a_planted_secret_in_any_form():
    planted = {"key": plant("zsControl"), "other": plant("zsOther")}
    secret = planted["key"]
    for control in (
        f"error: could not connect to postgresql://u:{quote(secret, safe='')}@h/db",
        f"postgresql://u:{quote_plus(secret)}@h/db",
        f"StorageOptions(key={secret!r})",
        json.dumps({"storage_options": {"secret": secret}}),
        "Authorization: Basic " + base64.b64encode(f"user:{secret}".encode()).decode(),
        "Authorization: Basic " + base64.b64encode(f"us:{secret}".encode()).decode(),
        "Authorization: Basic " + base64.b64encode(f"u:{secret}".encode()).decode(),
        base64.urlsafe_b64encode(f"x{secret}".encode()).decode(),
        secret.encode().hex(),
        f"secret={secret[:20]}…",  # truncated
        f"│ secret='{secret[:25]}\n│ {secret[25:]}'",  # wrapped by a traceback panel
    ):
        leaks = scan(control, planted)
        assert leaks and all(leak.startswith("key ") for leak in leaks), control
        assert scan(masked(control, planted), planted) == [], control
    assert scan(f"postgresql://u:***@h/db key=********** {secret[: WINDOW - 1]}", planted) == []


@pytest.mark.slow  # `outputs` runs every command
def test_every_command_ran_and_produced_something(outputs):
    runs, texts = outputs.runs, outputs.texts
    assert runs["crawl"].stdout.count("s3://samples/") == 10
    assert "CALL: list_objects_v2" in runs["crawl"].stderr, "s3fs's debug log was on"
    assert json.loads(runs["inspect"].stdout)["id"] == "north-atlantic-sst"
    assert "written" in runs["build (env keys)"].stderr and "written" in runs["build to a bucket"].stderr
    for label in ("validate", "validate a bucket catalogue", "validate the API"):
        assert ", 0 invalid" in runs[label].stderr and not runs[label].stderr.startswith("0 object"), label
    again = runs["build --config again (a store gone, one broken)"].stderr
    assert "corrupt-metadata" in again and "unlinked" in again
    assert "loaded 3 collection(s) and 10 item(s)" in runs["load a static catalogue (--dsn)"].stderr
    assert "loaded 2 collection(s) and 2 item(s)" in runs["load --config (DATABASE_URL)"].stderr
    assert any(where.endswith(".zarr-stac-pending-deletes.json") for where in texts), (
        "the pending-deletes list was collected"
    )
    assert sum(where.endswith("items.parquet") for where in texts) >= 4
    assert sum(where.startswith("object s3://") for where in texts) >= 10
    assert texts["pgstac database"].count('"collection":"cmip6"') >= 6
    # the access fields of issue 17 are in what the scan reads: the mirror's item names
    # the public endpoint only, and the scan below looks for the crawl endpoint too
    public, mirror = outputs.public_endpoint, outputs.mirror_bucket
    mirror_item = json.loads(next(text for where, text in texts.items() if where.endswith("mirror/one/one.json")))
    scheme_key = f"custom-s3-{public.removeprefix('http://')}-{mirror}"
    scheme = {"type": "custom-s3", "platform": public, "bucket": mirror}
    assert mirror_item["properties"]["storage:schemes"] == {scheme_key: scheme}
    assert mirror_item["assets"]["zarr"]["storage:refs"] == [scheme_key]
    assert mirror_item["assets"]["zarr"]["xarray:storage_options"] == {"anon": True, "endpoint_url": public}
    assert '"storage:schemes"' in texts["pgstac database"] and '"custom-s3"' in texts["pgstac database"]
    # stores named with credentials (issue 25) were read with them, so the scan below sees
    # every output they can reach: published from the list and from the intake catalogue
    http = outputs.guarded_url
    hrefs = {
        tree: sorted(
            document["assets"]["zarr"]["href"]
            for where, text in texts.items()
            if where.startswith(f"file {tree}/") and where.endswith(".json")
            if (document := json.loads(text)).get("type") == "Feature"
        )
        for tree in ("urls", "entries")
    }
    assert hrefs["urls"][:3] == [f"{http}/http/{name}.zarr" for name in ("basic", "sas", "token")]
    assert [href.split("/", 3)[-1] for href in hrefs["urls"][3:]] == ["era/keep.zarr"]
    assert hrefs["entries"][0] == f"{http}/http/basic.zarr" and hrefs["entries"][1].endswith("/era/keep.zarr")
    answered = {seen.path for seen in outputs.guarded.seen if seen.status == 200}
    assert {f"/http/{name}.zarr/.zmetadata" for name in ("basic", "token", "sas")} <= answered
    assert f"skipped {http}/http/token.zarr: " in runs["build a list of URLs with credentials"].stderr
    assert "and 4 item(s)" in runs["load a list of URLs with credentials"].stderr
    assert "and 2 item(s)" in runs["load an intake catalogue with keys in storage_options"].stderr
    assert "/era/keep.zarr: unavailable: " in runs["build an intake catalogue with keys in storage_options"].stderr
    assert "zarr_stac.ledger" in texts["pgstac database"], "the database's ledger was scanned"
    statuses = json.loads(runs["API"].stdout)
    assert {
        name: statuses[name]
        for name in (
            "landing",
            "collections",
            "items",
            "item",
            "search (GET)",
            "search (POST)",
            "api",
            "health",
            "queryables",
        )
    } == dict.fromkeys(
        ("landing", "collections", "items", "item", "search (GET)", "search (POST)", "api", "health", "queryables"), 200
    )
    assert {
        statuses["write without a token"],
        statuses["write with a wrong token"],
        statuses["delete with a wrong token"],
    } <= {401, 403}
    assert statuses["write with the token"] == 200
    assert "GET /search" in texts["serve: stderr"] + texts["serve: stdout"], "the access log was collected"
    for label, run in runs.items():
        assert run.stdout.strip() or run.stderr.strip(), f"{label} said nothing"
    # the error paths failed for the reason they were meant to
    for label in (
        "load --config with a wrong password (DATABASE_URL)",
        "serve with a wrong password",
        "serve with a wrong password (key=value DSN)",
    ):
        assert "failed while connecting: authentication failed" in runs[label].stderr, label
    assert "has no pgstac: run `zarr-stac db migrate`" in runs["load into a database without pgstac"].stderr
    assert "does not exist" in runs["inspect in a missing bucket"].stderr
    assert (
        "SignatureDoesNotMatch" in runs["inspect, signature refused"].stderr
        or "signature" in runs["inspect, signature refused"].stderr.lower()
    )
    assert (
        "not valid YAML: while scanning a quoted scalar (line 4, column"
        in runs["build with a bad config: YAML syntax error on the secret's line"].stderr
    )
    assert "valid string" in "".join(
        run.stderr for label, run in runs.items() if label.endswith("bad config: secret of the wrong type")
    )
    assert "TRANSACTIONS_TOKEN is not set" in runs["serve with transactions but no token"].stderr


@pytest.mark.slow  # `outputs` runs every command
def test_no_secret_in_any_output(outputs):
    planted = outputs.planted
    assert len(outputs.texts) > 100
    leaks = {where: found for where, text in outputs.texts.items() if (found := scan(text, planted))}
    report = "\n".join(
        f"- {where}: {', '.join(found)}\n    {masked_excerpt(outputs.texts[where], planted)!r}"
        for where, found in leaks.items()
    )
    assert not leaks, f"secrets leaked into {len(leaks)} output(s):\n{report}"


@pytest.mark.slow  # `outputs` runs every command
def test_no_crawl_only_endpoint_in_stac(outputs):
    """An endpoint only used to crawl is in no STAC object: files, objects, database, API."""
    where_stac_is = ("file ", "object ", "pgstac database", "API ")
    stac = {where: text for where, text in outputs.texts.items() if where.startswith(where_stac_is)}
    assert any("mirror/one" in text for text in stac.values()), "the mirror source was catalogued"
    leaks = {where: found for where, text in stac.items() if (found := scan(text, outputs.crawl_only))}
    assert not leaks, f"the crawl-only endpoint is in {sorted(leaks)}"
