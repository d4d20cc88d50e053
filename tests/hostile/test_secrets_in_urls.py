"""Attacks with credentials written where a store is named: in its URL, and in a catalogue's
storage_options (issue 25, points 3 and 8).

A URL's userinfo (`http://USER:PASSWORD@host/x.zarr`, `s3://KEY:SECRET@bucket/x.zarr`) and
its credential-bearing query (`?token=`, signed URLs, SAS tokens) are used to read the
store, and written nowhere: not in STAC, the ledger, a skip line or an error. An intake
source's storage_options choose the endpoint and keys it is read with, and the operator's
keys (and the environment's) never go to an endpoint that only a catalogue file names.

Real parts: the CLI as a subprocess, an HTTP server that checks credentials, the moto S3
server behind recording proxies.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import pickle
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.config import MappingConfig, SourceConfig
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.loaders.running.executors import run_batch_with_secrets, withhold_secrets
from zarr_stac.loaders.running.jobs import Job
from zarr_stac.loaders.running.ledger import Ledger
from zarr_stac.loaders.vocabulary import StoreRef
from zarr_stac.samples import era_like_daily, write_dataset

from ..guarded_http import GuardedHTTP
from ..proxy import FaultProxy

ZARR_STAC = str(Path(sys.executable).with_name("zarr-stac"))


def a_secret(prefix: str) -> str:
    """A unique secret with `/` and `+`, as AWS secrets have (its URL-encoded form differs)."""
    return f"{prefix}{secrets.token_hex(8)}/{secrets.token_hex(4)}+{secrets.token_hex(4)}"


def leaks(text: str, planted: list[str]) -> list[str]:
    """The planted secrets found in `text`, raw or URL-encoded (masked in the report)."""
    return [f"{s[:6]}…" for s in planted if s in text or quote(s, safe="") in text]


def written_text(folder: Path) -> str:
    """Every file below `folder`, gzip files (the ledger) decompressed."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        parts.append((gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace"))
    return "\n".join(parts)


def zarr_stac(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ZARR_STAC_"))}
    base.update(COLUMNS="400", AWS_CONFIG_FILE=str(cwd / "none"), AWS_SHARED_CREDENTIALS_FILE=str(cwd / "none"))
    return subprocess.run(
        [ZARR_STAC, *args], env={**base, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def items_of(folder: Path) -> dict[str, dict]:
    found = {}
    for path in folder.rglob("*.json"):
        document = json.loads(path.read_text())
        if document.get("type") == "Feature":
            found[document["id"]] = document
    return found


# -- stores behind an HTTP server that wants credentials -----------------------------------
@dataclass
class Credentialed:
    """One way of writing a credential into a store URL, and what the server must then see."""

    url: str  # the store's URL as written in a list, credentials included
    published: str  # the store's URL as it may be published
    planted: list[str]  # what must never be written (the wrong credential of `refused_url` too)
    refused_url: str  # the same form with a wrong credential: refused by the server


@dataclass
class Server:
    http: GuardedHTTP
    forms: dict[str, Credentialed] = field(default_factory=dict)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("guarded")
    user, password = f"zsuser{secrets.token_hex(4)}", a_secret("zsPass")
    token, signature, sas = a_secret("zsToken"), a_secret("zsSig"), a_secret("zsSas")
    key_id = f"ZSAKIA{secrets.token_hex(8).upper()}"
    queries = {
        "token": {"token": token},
        "access_token": {"access_token": token},
        "aws-signed": {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{key_id}/20260101/us-east-1/s3/aws4_request",
            "X-Amz-Signature": signature,
        },
        "azure-sas": {"sv": "2022-11-02", "sp": "rl", "sig": sas},
    }
    with GuardedHTTP(root, logins={(user, password)}, queries=list(queries.values())) as http:
        server = Server(http)
        host = http.url.removeprefix("http://")
        write_dataset(era_like_daily(), str(root / "userinfo.zarr"))
        wrong = a_secret("zsWrong")
        server.forms["userinfo"] = Credentialed(
            url=f"http://{user}:{quote(password, safe='')}@{host}/userinfo.zarr",
            published=f"{http.url}/userinfo.zarr",
            planted=[password, user, wrong],
            refused_url=f"http://{user}:{quote(wrong, safe='')}@{host}/userinfo.zarr",
        )
        for name, query in queries.items():
            write_dataset(era_like_daily(), str(root / f"{name}.zarr"))
            wrong = a_secret("zsWrong")
            *rest, (credential, value) = query.items()  # the credential last: a wrong one is refused
            encoded = "&".join(f"{k}={quote(v, safe='')}" for k, v in rest)
            server.forms[name] = Credentialed(
                url=f"{http.url}/{name}.zarr?{encoded}&{credential}={quote(value, safe='')}".replace("?&", "?"),
                published=f"{http.url}/{name}.zarr",
                planted=[value, wrong, key_id] if name == "aws-signed" else [value, wrong],
                refused_url=f"{http.url}/{name}.zarr?{encoded}&{credential}={quote(wrong, safe='')}".replace("?&", "?"),
            )
        yield server


FORMS = ["userinfo", "token", "access_token", "aws-signed", "azure-sas"]


@pytest.mark.parametrize("form", FORMS)
def test_a_listed_store_url_s_credentials_read_it_and_are_written_nowhere(guarded, form, tmp_path):
    """Attack: `http://USER:PASS@host/x.zarr` or `x.zarr?token=...` in a list file (and one with a wrong credential)."""
    store = guarded.forms[form]
    listing = tmp_path / "stores.txt"
    listing.write_text(f"{store.url}\n{store.refused_url}\n")
    start = len(guarded.http.seen)
    build = zarr_stac("build", str(listing), "-o", str(tmp_path / "stac"), cwd=tmp_path)
    crawled = zarr_stac("crawl", str(listing), cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    # Read with its credential: every request for the store was answered, the path before the query.
    name = store.published.rsplit("/", 1)[1]
    requests = [seen for seen in guarded.http.seen[start:] if seen.path.startswith(f"/{name}/")]
    answered = [seen.path for seen in requests if seen.status == 200]
    assert f"/{name}/.zmetadata" in answered and any(path.startswith(f"/{name}/time/") for path in answered)
    assert f"skipped {store.published}: " in build.stderr  # the wrong credential: refused, and said so
    # Published without the credential, and the secrets nowhere.
    (item,) = items_of(tmp_path / "stac").values()
    assert item["assets"]["zarr"]["href"] == store.published
    assert "xarray:storage_options" not in item["assets"]["zarr"]
    assert [link["href"] for link in item["links"] if link["rel"] == "store"] == [store.published]
    outputs = {
        "catalogue and ledger": written_text(tmp_path / "stac"),
        "build": build.stdout + build.stderr,
        "crawl": crawled.stdout + crawled.stderr,
    }
    assert {where: found for where, text in outputs.items() if (found := leaks(text, store.planted))} == {}
    assert crawled.stdout.split() == [store.published, store.published]


def test_an_http_query_without_credentials_is_sent_and_published_as_request_parameters(guarded, tmp_path):
    """Attack: a store URL with a plain query (`?v=2`): zarr would read `x.zarr?v=2/.zmetadata`."""
    guarded.http.queries.append({"v": "2"})
    write_dataset(era_like_daily(), str(guarded.http.root / "plain.zarr"))
    listing = tmp_path / "stores.txt"
    listing.write_text(f"{guarded.http.url}/plain.zarr?v=2\n")
    build = zarr_stac("build", str(listing), "-o", str(tmp_path / "stac"), "--strict", cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    (item,) = items_of(tmp_path / "stac").values()
    # What xarray needs to open it: fsspec sends `params` with every request.
    assert item["assets"]["zarr"]["href"] == f"{guarded.http.url}/plain.zarr"
    assert item["assets"]["zarr"]["xarray:storage_options"] == {"params": {"v": "2"}}


def test_credentials_of_a_list_file_go_to_its_own_host_only(guarded, tmp_path):
    """Attack: a list at `http://USER:PASS@A/list.txt` names stores on A and on another host B."""
    store = guarded.forms["userinfo"]
    (tmp_path / "other").mkdir()
    with GuardedHTTP(tmp_path / "other") as other:
        write_dataset(era_like_daily(), str(tmp_path / "other" / "elsewhere.zarr"))
        (guarded.http.root / "list.txt").write_text(f"{store.published}\n{other.url}/elsewhere.zarr\n")
        user_and_password = store.url.split("//", 1)[1].split("@", 1)[0]
        listing = f"http://{user_and_password}@{guarded.http.url.removeprefix('http://')}/list.txt"
        build = zarr_stac("build", listing, "-o", str(tmp_path / "stac"), cwd=tmp_path)
        assert "userinfo" in items_of(tmp_path / "stac"), build.stderr[-2000:]  # its own host: read with them
        assert other.seen and not [seen.path for seen in other.seen if "Authorization" in seen.headers]
    assert leaks(build.stdout + build.stderr + written_text(tmp_path / "stac"), store.planted) == []


@pytest.fixture(scope="module")
def private_bucket(s3_server, storage) -> str:
    name = f"private-{secrets.token_hex(4)}"
    s3_server.create_bucket(name)  # anonymous reads refused: only keys read it
    write_dataset(era_like_daily(), f"s3://{name}/era/private.zarr", storage)
    return name


def test_keys_in_an_s3_url_read_a_private_bucket_and_are_written_nowhere(s3_server, private_bucket, tmp_path):
    """Attack: `s3://KEY:SECRET@bucket/x.zarr` in a list file, no other credentials anywhere."""
    key, secret = f"ZSURLKEY{secrets.token_hex(6).upper()}", a_secret("zsUrlSecret")
    listing = tmp_path / "stores.txt"
    listing.write_text(f"s3://{key}:{quote(secret, safe='')}@{private_bucket}/era/private.zarr\n")
    endpoint = ["--endpoint-url", s3_server.endpoint_url]
    build = zarr_stac("build", str(listing), "-o", str(tmp_path / "stac"), "--strict", *endpoint, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    (item,) = items_of(tmp_path / "stac").values()
    assert item["assets"]["zarr"]["href"] == f"s3://{private_bucket}/era/private.zarr"
    assert item["collection"] == "era"
    written = written_text(tmp_path / "stac") + build.stdout + build.stderr
    assert leaks(written, [key, secret]) == []
    # The keys were needed: without them the same store is refused.
    listing.write_text(f"s3://{private_bucket}/era/private.zarr\n")
    refused = zarr_stac("build", str(listing), "-o", str(tmp_path / "refused"), "--strict", *endpoint, cwd=tmp_path)
    assert refused.returncode == 1 and "no credentials" in refused.stderr


@pytest.mark.parametrize(
    "url, says",
    [
        ("gs://{user}:{secret}@bucket/x.zarr", "a gs:// URL cannot carry credentials"),
        ("s3://bucket/x.zarr?X-Amz-Signature={secret}", "a s3:// URL cannot carry credentials in its query"),
        ("s3://{user}@bucket/x.zarr", "KEY:SECRET@bucket"),
    ],
    ids=["userinfo-on-gcs", "signature-on-s3", "key-without-secret"],
)
def test_credentials_that_cannot_be_used_are_refused_by_name_not_printed(url, says, tmp_path):
    """Attack: credentials in URLs no filesystem takes them from, in a list and on the command line."""
    user, secret = f"zsuser{secrets.token_hex(6)}", a_secret("zsUnusable")
    url = url.format(user=user, secret=quote(secret, safe=""))
    listing = tmp_path / "stores.txt"
    listing.write_text(url + "\n")
    listed = zarr_stac("crawl", str(listing), cwd=tmp_path)
    direct = zarr_stac("build", url, "-o", str(tmp_path / "stac"), cwd=tmp_path)
    assert f": input: listed in {listing}: " in listed.stderr and says in listed.stderr
    assert direct.returncode == 2 and says in direct.stderr and "Traceback" not in direct.stderr
    assert leaks(listed.stdout + listed.stderr + direct.stdout + direct.stderr, [user, secret]) == []


def test_signed_urls_inside_a_kerchunk_reference_are_not_published(tmp_path):
    """Attack: a kerchunk reference whose chunks point at signed URLs (`data.nc?X-Amz-Signature=...`)."""
    signature = a_secret("zsRefSig")
    store = tmp_path / "source.zarr"
    write_dataset(era_like_daily(), str(store))
    refs: dict[str, object] = {}
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        key = path.relative_to(store).as_posix()
        if key.startswith("t2m/") and not key.endswith((".zarray", ".zattrs")):  # data: never read
            refs[key] = [f"https://data.example.org/t2m.nc?X-Amz-Signature={quote(signature, safe='')}", 0, 100]
        elif key.rsplit("/", 1)[-1].startswith("."):
            refs[key] = path.read_text()
        else:
            refs[key] = "base64:" + base64.b64encode(path.read_bytes()).decode()
    reference = tmp_path / "refs" / "era.json"
    reference.parent.mkdir()
    reference.write_text(json.dumps({"version": 1, "refs": refs}))
    result = crawl(str(reference))
    assert result.failures == []
    (item,) = result.items
    sources = [asset.href for key, asset in item.assets.items() if key.startswith("source-")]
    assert sources == ["https://data.example.org/t2m.nc"]
    assert leaks(json.dumps(item.to_dict()), [signature]) == []


def test_url_credentials_do_not_travel_in_dask_tasks(guarded, monkeypatch):
    """Attack: a store URL's credentials pickled into the tasks a Dask Gateway cluster is sent."""
    store = guarded.forms["userinfo"]
    source = SourceConfig(url=str(guarded.http.root / "list.txt"))
    url, storage = source.storage.for_url(store.url)
    job = Job(source, guarded.http.url, StoreRef(url=url, storage=storage))
    stripped, environment = withhold_secrets([[job]])
    assert leaks(repr(pickle.dumps(stripped)), store.planted) == []
    # A worker fills them in from its environment, and reads the store.
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ((jobs, slots),) = stripped
    (outcome,) = run_batch_with_secrets(jobs, slots, concurrency=4)
    assert outcome.item.assets["zarr"].href == store.published


# -- intake storage_options: which endpoint, which keys -------------------------------------
@dataclass
class RecordingS3Proxy(FaultProxy):
    """A real HTTP hop to the S3 server that notes, per request, the access key id that signed it."""

    signed: list[tuple[str, str | None]] = field(default_factory=list)  # (path, key id or None: anonymous)

    async def _handle(self, request):
        found = re.search(r"Credential=([^/,]+)/", request.headers.get("Authorization", ""))
        with self._lock:
            self.signed.append((request.path, found.group(1) if found else None))
        return await super()._handle(request)


@pytest.fixture(scope="module")
def public_bucket(s3_server, storage) -> str:
    name = f"entries-{secrets.token_hex(4)}"
    s3_server.create_bucket(name, public=True)  # anonymous reads allowed: who signs is what is checked
    for case in ("anon", "no-keys", "own-keys", "operator-endpoint", "no-options", "moved"):
        write_dataset(era_like_daily(), f"s3://{name}/{case}/store.zarr", storage)
    return name


@pytest.fixture
def proxies(s3_server):
    with (
        RecordingS3Proxy(s3_server.endpoint_url) as operator,
        RecordingS3Proxy(s3_server.endpoint_url) as catalogue,
        RecordingS3Proxy(s3_server.endpoint_url) as moved,
    ):
        yield operator, catalogue, moved


def intake_catalogue(path: Path, bucket: str, entries: dict[str, dict | None]) -> Path:
    sources = {}
    for case, options in entries.items():
        args = {"urlpath": f"s3://{bucket}/{case}/store.zarr"}
        if options is not None:
            args["storage_options"] = options
        sources[case] = {"driver": "zarr", "args": args}
    path.write_text(yaml.safe_dump({"sources": sources}))
    return path


def asked(proxy: RecordingS3Proxy, bucket: str) -> dict[str, set[str | None]]:
    """{case: the key ids that signed its requests (None: unsigned)} at this endpoint."""
    found: dict[str, set[str | None]] = {}
    for path, key_id in proxy.signed:
        parts = path.strip("/").split("/")
        if parts[0] == bucket and len(parts) > 1:
            found.setdefault(parts[1], set()).add(key_id)
    return found


def test_intake_storage_options_choose_the_endpoint_and_keys_never_the_operator_s_elsewhere(
    public_bucket, proxies, tmp_path, monkeypatch
):
    """Attack: an intake catalogue naming its own endpoint (with and without keys) while the environment holds keys."""
    operator, catalogue, _ = proxies
    environment_key = f"ZSENVKEY{secrets.token_hex(6).upper()}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", environment_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", a_secret("zsEnv"))
    entry_key = f"ZSENTRYKEY{secrets.token_hex(6).upper()}"
    path = intake_catalogue(
        tmp_path / "catalog.yaml",
        public_bucket,
        {
            "anon": {"client_kwargs": {"endpoint_url": catalogue.url}, "anon": True},
            "no-keys": {"endpoint_url": catalogue.url},
            "own-keys": {"endpoint_url": catalogue.url, "key": entry_key, "secret": a_secret("zsEntry")},
            "operator-endpoint": {"client_kwargs": {"endpoint_url": f"{operator.url}/"}},
            "no-options": None,
        },
    )
    source = SourceConfig(url=str(path), storage=StorageOptions(endpoint_url=operator.url))
    result = crawl(MappingConfig(sources=[source]))
    assert result.failures == []
    assert (asked(catalogue, public_bucket), asked(operator, public_bucket)) == (
        {"anon": {None}, "no-keys": {None}, "own-keys": {entry_key}},
        {"operator-endpoint": {environment_key}, "no-options": {environment_key}},
    )
    published = {item.id: item.assets["zarr"].extra_fields["xarray:storage_options"] for item in result.items}
    assert published == {
        "anon": {"anon": True, "endpoint_url": catalogue.url},
        "no-keys": {"anon": True, "endpoint_url": catalogue.url},
        "own-keys": {"anon": False, "endpoint_url": catalogue.url},
        "operator-endpoint": {"anon": False, "endpoint_url": f"{operator.url}/"},
        "no-options": {"anon": False, "endpoint_url": operator.url},
    }


def test_a_catalogue_s_new_endpoint_is_read_again_not_kept_from_the_ledger(public_bucket, proxies, tmp_path):
    """Attack: a catalogue entry moved to another endpoint between two crawls, its store unchanged."""
    operator, catalogue, moved = proxies
    path = tmp_path / "catalog.yaml"
    source = SourceConfig(url=str(path), storage=StorageOptions(endpoint_url=operator.url, anon=True))
    intake_catalogue(path, public_bucket, {"moved": {"endpoint_url": catalogue.url, "anon": True}})
    first = crawl(MappingConfig(sources=[source]))
    intake_catalogue(path, public_bucket, {"moved": {"endpoint_url": moved.url, "anon": True}})
    again = crawl(MappingConfig(sources=[source]), previous=Ledger(first.ledger_data()))
    assert [item.assets["zarr"].extra_fields["xarray:storage_options"] for item in again.items] == [
        {"anon": True, "endpoint_url": moved.url}
    ]
    assert again.unchanged == 0 and "moved" in asked(moved, public_bucket)


@pytest.mark.parametrize(
    "options, says",
    [
        ({"anon": "yes"}, "storage_options.anon is not a boolean"),
        ({"key": "{secret}"}, "one of 'key' and 'secret' without the other"),
        ({"key": {"nested": "{secret}"}, "secret": "x"}, "storage_options.key is not a string"),
        ({"client_kwargs": ["{secret}"]}, "storage_options.client_kwargs is not a mapping"),
    ],
    ids=["anon-not-a-boolean", "key-without-secret", "key-not-a-string", "client-kwargs-not-a-mapping"],
)
def test_malformed_storage_options_are_that_entry_s_failure_naming_the_option(
    public_bucket, options, says, tmp_path, s3_server
):
    """Attack: an intake entry whose storage_options are of the wrong shape (a secret among them)."""
    secret = a_secret("zsMalformed")
    options = json.loads(json.dumps(options).replace("{secret}", secret))
    path = intake_catalogue(tmp_path / "catalog.yaml", public_bucket, {"anon": options, "no-options": None})
    source = SourceConfig(url=str(path), storage=StorageOptions(endpoint_url=s3_server.endpoint_url, anon=True))
    result = crawl(MappingConfig(sources=[source]))
    assert [item.id for item in result.items] == ["no-options"]
    (failure,) = result.failures
    assert (failure.url, failure.kind) == (f"{path}#anon", "input") and says in failure.reason
    assert secret not in failure.reason
