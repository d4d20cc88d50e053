"""Attacks on the layout of a static catalogue, made with the names of stores.

Store names that take the place of the catalogue's own files, non-Latin, bidi and invisible
characters, names that differ only in case, and what `serve-static` hands out. Each attack
runs the real `zarr-stac` in its own process on stores in a local folder (a copy of a sample
store under the hostile name), and reads the catalogue as a reader does: pystac walking it
from `catalog.json`, the files on disk, the objects in the bucket, the answers of the server.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pystac
import pytest

from static_catalog.paths import (
    CATALOG_FILE,
    COLLECTION_FILE,
    GEOPARQUET_FILE,
    LEDGER_FILE,
    PENDING_FILE,
    collection_path,
    geoparquet_path,
    item_path,
)
from static_catalog.serve import serve_in_thread
from zarr_stac.common.layout import safe_id
from zarr_stac.samples import samples, write_dataset
from zarr_stac.services import free_port

from ..conftest import SCHEMA_DIR, serve_api, wait_until_answering
from ..zarr_stac.test_cli_errors import ZARR_STAC, user_env

SST = "ocean/north-atlantic-sst.zarr"


# -- helpers ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One small sample store (Zarr v3), copied under every hostile name."""
    folder = tmp_path_factory.mktemp("template")
    sample = next(s for s in samples() if s.path == SST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on consolidated metadata in v3
        write_dataset(sample.dataset, str(folder / "store.zarr"), zarr_format=sample.zarr_format)
    return folder / "store.zarr"


def plant(template: Path, src: Path, *names: str) -> None:
    for name in names:
        shutil.copytree(template, src / name)


def zarr_stac(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ZARR_STAC, *args], cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=300)


def build(cwd: Path, *args: str, out: str = "out") -> subprocess.CompletedProcess:
    result = zarr_stac(cwd, "build", "src", "-o", out, "--delete-grace", "0", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output, output
    return result


def written(result: subprocess.CompletedProcess) -> int:
    return int(re.search(r"(\d+) written", result.stdout + result.stderr).group(1))


def skipped(result: subprocess.CompletedProcess) -> dict[str, str]:
    """{store folder below src/: failure kind} of the `skipped URL: KIND: reason` lines."""
    text = " ".join((result.stdout + result.stderr).split())
    return {url.split("/src/", 1)[1]: kind for url, kind in re.findall(r"skipped (\S+): ([a-z-]+):", text)}


def catalogued(href: str, stac_io: pystac.StacIO | None = None) -> set[tuple[str, str]]:
    """(collection id, item id) of every item a reader reaches from the root, following hrefs."""
    root = pystac.Catalog.from_file(href, stac_io=stac_io)
    return {(child.id, item.id) for child in root.get_children() for item in child.get_items()}


def assert_valid(cwd: Path, href: str = "out", *args: str) -> None:
    result = zarr_stac(cwd, "validate", href, "--schemas", str(SCHEMA_DIR), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 invalid" in result.stdout + result.stderr


def names_clash(paths: list[str]) -> list[str]:
    """What a filesystem blind to case could not hold, or no filesystem at all: two names
    that differ only in case, a file that is also a folder of another path."""
    problems = []
    spelled: dict[str, str] = {}
    files = set(paths)
    for path in paths:
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            head = "/".join(parts[:n])
            if n < len(parts) and head in files:
                problems.append(f"{head} is a file and a folder of {path}")
            other = spelled.setdefault(head.casefold(), head)
            if other != head:
                problems.append(f"{head} and {other} differ only in case")
    return problems


def files_below(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# -- 1. store names that take the place of the catalogue's own files ------------------------
OWN_FILE_NAMES = {
    "collection document": ("ocean/collection.json.zarr", ("ocean", "collection.json"), []),
    "root document": ("catalog.json/x.zarr", ("catalog.json", "x"), []),
    "geoparquet copy": ("ocean/items.parquet.zarr", ("ocean", "items.parquet"), ["--geoparquet"]),
    "root document, in other case": ("Catalog.JSON/x.zarr", ("Catalog.JSON", "x"), []),
}


@pytest.mark.parametrize(("store", "expected", "args"), OWN_FILE_NAMES.values(), ids=OWN_FILE_NAMES)
def test_a_store_named_like_a_file_of_the_catalogue_is_catalogued_beside_it(template, tmp_path, store, expected, args):
    """A store named `collection.json`, `catalog.json/`, `items.parquet`: its collection does not vanish."""
    plant(template, tmp_path / "src", store, "ocean/sst.zarr")

    first = build(tmp_path, *args)

    out = tmp_path / "out"
    assert catalogued(str(out / CATALOG_FILE)) == {("ocean", "sst"), expected}, first.stdout
    assert (out / "ocean" / "sst" / "sst.json").is_file(), "an ordinary name keeps its URL"
    assert names_clash(files_below(out)) == []
    assert_valid(tmp_path)
    again = build(tmp_path, *args)
    assert written(again) == 0, again.stdout
    assert catalogued(str(out / CATALOG_FILE)) == {("ocean", "sst"), expected}


def as_left_by_an_earlier_version(out: Path, collection: str, item: str) -> None:
    """What zarr-stac before this fix left: the item's folder where a file of the catalogue goes."""
    document = json.loads((out / "ocean" / "sst" / "sst.json").read_text())
    document.update(id=item, collection=collection)
    folder = out / collection / item
    folder.mkdir(parents=True)
    (folder / f"{item}.json").write_text(json.dumps(document))


@pytest.mark.parametrize("readable", [True, False], ids=["store still there", "store now unreadable"])
def test_a_catalogue_an_earlier_version_broke_is_repaired_by_a_rerun(template, tmp_path, readable):
    """An item folder `ocean/collection.json/` in an existing catalogue: the rerun repairs it, loses nothing."""
    src = tmp_path / "src"
    plant(template, src, "ocean/sst.zarr")
    build(tmp_path)
    out = tmp_path / "out"
    (out / "ocean" / COLLECTION_FILE).unlink()  # the folder took its place
    as_left_by_an_earlier_version(out, "ocean", "collection.json")
    plant(template, src, "ocean/collection.json.zarr")
    if not readable:  # then the item published before is kept, at its new place
        (src / "ocean" / "collection.json.zarr" / "zarr.json").write_text("{not json")

    result = build(tmp_path)

    assert catalogued(str(out / CATALOG_FILE)) == {("ocean", "sst"), ("ocean", "collection.json")}
    assert (out / "ocean" / COLLECTION_FILE).is_file()
    assert names_clash(files_below(out)) == []
    assert skipped(result) == ({} if readable else {"ocean/collection.json.zarr": "corrupt-metadata"})
    assert_valid(tmp_path)
    assert written(build(tmp_path)) == 0


def test_a_root_document_an_earlier_version_could_not_write_is_written(template, tmp_path):
    """`catalog.json/x/x.json` left by a run that died writing the root: no FileExistsError forever after."""
    plant(template, tmp_path / "src", "catalog.json/x.zarr", "ocean/sst.zarr")
    out = tmp_path / "out"
    (out / "ocean" / "sst").mkdir(parents=True)
    item = {"type": "Feature", "stac_version": "1.1.0", "id": "sst", "links": [], "assets": {}, "properties": {}}
    (out / "ocean" / "sst" / "sst.json").write_text(json.dumps(item))
    as_left_by_an_earlier_version(out, "catalog.json", "x")

    build(tmp_path)

    assert catalogued(str(out / CATALOG_FILE)) == {("ocean", "sst"), ("catalog.json", "x")}
    assert names_clash(files_below(out)) == []
    assert_valid(tmp_path)


# Names of the catalogue's own files, as ids (the ledger's and pending deletes' start with a dot,
# which no id keeps), and the same in other case.
HOSTILE_IDS = [
    "catalog.json",
    "collection.json",
    "items.parquet",
    "collection-0123456789abcdef.json",  # a snapshot's name
    "Catalog.JSON",
    "Collection.JSON",
    "ITEMS.PARQUET",
    ".zarr-stac-ledger.jsonl.gz",
    ".zarr-stac-pending-deletes.json",
]


def test_no_id_names_a_folder_where_the_catalogue_puts_a_file():
    """Each name of our files, as a collection id and as an item id: none of its folders is one of our files."""
    clashes = []
    for name in HOSTILE_IDS:
        for path in [collection_path(name), geoparquet_path(name), item_path(name, "x"), item_path("c", name)]:
            collection = path.split("/")[0]
            own = {CATALOG_FILE, LEDGER_FILE, PENDING_FILE, f"{collection}/{COLLECTION_FILE}"}
            own = {f.casefold() for f in own | {f"{collection}/{GEOPARQUET_FILE}"}}
            snapshot = re.compile(rf"{re.escape(collection.casefold())}/collection-[0-9a-f]{{16}}\.json")
            parts = path.split("/")
            for folder in ("/".join(parts[:n]).casefold() for n in range(1, len(parts))):
                if folder in own or snapshot.fullmatch(folder):
                    clashes.append(f"{name!r}: its folder {folder} (of {path}) is where one of our files goes")
    assert clashes == []


# -- 1b. the same names, published to a bucket that is later synced to a filesystem ----------
def test_a_catalogue_in_a_bucket_can_be_copied_to_a_filesystem(template, tmp_path, s3_server, storage, empty_bucket):
    """Hostile names in a bucket catalogue: no key is also a folder, no two keys differ only in case."""
    plant(template, tmp_path / "src", "catalog.json/x.zarr", "ocean/collection.json.zarr", "ocean/sst.zarr")
    plant(template, tmp_path / "src", "ocean/Tas.zarr", "ocean/tas.zarr")
    target = f"{empty_bucket}/cat"

    result = build(tmp_path, "--endpoint-url", s3_server.endpoint_url, out=target)

    fs = storage.filesystem(target)
    keys = sorted(k.removeprefix(target.removeprefix("s3://") + "/") for k in fs.find(target))
    assert names_clash(keys) == [], keys
    assert skipped(result) == {"ocean/tas.zarr": "duplicate-id"}
    copy = tmp_path / "synced"
    fs.get(f"{target}/", str(copy), recursive=True)  # what `aws s3 sync` makes of it
    expected = {("catalog.json", "x"), ("ocean", "collection.json"), ("ocean", "sst"), ("ocean", "Tas")}
    assert catalogued(str(copy / CATALOG_FILE)) == expected
    assert_valid(tmp_path, f"{target}/{CATALOG_FILE}", "--endpoint-url", s3_server.endpoint_url)


# -- 2. non-Latin, bidi and invisible characters ----------------------------------------------
# store folder below src/ -> (collection id, item id) as a reader should find it
UNICODE_STORES = {
    "ocean/数据.zarr": ("ocean", "数据"),
    "数据集/x.zarr": ("数据集", "x"),
    "ocean/cafe\u0301.zarr": ("ocean", "caf\u00e9"),  # decomposed on disk: one NFC id
    "ocean/é.zarr": ("ocean", "é"),
    "ocean/Ελληνικά.zarr": ("ocean", "Ελληνικά"),
    "ocean/हिन्दी.zarr": ("ocean", "हिन्दी"),  # vowel signs are combining marks: kept
    "ocean/evil\u202egnp.zarr": ("ocean", "evil-gnp"),  # right-to-left override: it would show as "evilpng"
    "ocean/in\u200bvisible.zarr": ("ocean", "in-visible"),  # zero-width space
    "ocean/sst.zarr": ("ocean", "sst"),
}


@pytest.fixture(scope="module")
def unicode_catalogue(template, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("unicode")
    plant(template, cwd / "src", *UNICODE_STORES, "ocean/\u3164.zarr")  # a Hangul filler: shows nothing
    first = build(cwd)
    assert skipped(first) == {"ocean/\u3164.zarr": "layout"}, first.stdout
    return cwd


def test_non_latin_names_are_catalogued_with_their_own_letters(unicode_catalogue):
    """`数据.zarr`, `café.zarr`, a bidi override, a zero-width space: Unicode ids, no invisible character."""
    out = unicode_catalogue / "out"
    assert catalogued(str(out / CATALOG_FILE)) == set(UNICODE_STORES.values())
    for collection, item in UNICODE_STORES.values():
        assert (out / collection / item / f"{item}.json").is_file()
        assert unicodedata.is_normalized("NFC", item)
        assert not any(unicodedata.category(c) == "Cf" for c in item)
    assert_valid(unicode_catalogue)
    assert written(build(unicode_catalogue)) == 0


def test_non_latin_names_resolve_over_http(unicode_catalogue):
    """Relative hrefs with non-Latin names: a reader over HTTP reaches every item."""
    port = free_port()
    server = serve_in_thread(unicode_catalogue / "out", port=port)
    try:
        assert catalogued(f"http://127.0.0.1:{port}/{CATALOG_FILE}") == set(UNICODE_STORES.values())
    finally:
        server.shutdown()
        server.server_close()


def test_non_latin_ids_in_pgstac_and_the_api(unicode_catalogue, pgstac_dsn):
    """The same ids loaded into pgstac: `/collections/数据集/items/x` and `/collections/ocean/items/数据` answer."""
    result = zarr_stac(unicode_catalogue, "load", "out", "--dsn", pgstac_dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    with serve_api(pgstac_dsn) as api, httpx.Client(base_url=api.url, timeout=30) as client:
        for collection, item in UNICODE_STORES.values():
            response = client.get(f"/collections/{collection}/items/{item}")
            assert response.status_code == 200, (collection, item, response.text)
            assert (response.json()["collection"], response.json()["id"]) == (collection, item)
        found = client.get("/search", params={"collections": "数据集"}).json()["features"]
        assert [f["id"] for f in found] == ["x"]


# name -> the id made of it
IDS = {
    # ASCII: as they always were
    "ModelA.historical.r1i1p1f1.tas.gn": "ModelA.historical.r1i1p1f1.tas.gn",
    "north-atlantic-sst": "north-atlantic-sst",
    "a b/c:d": "a-b-c-d",
    "--x..": "x",
    # letters, digits and marks of every script, in NFC
    "数据": "数据",
    "cafe\u0301": "caf\u00e9",
    "Ελληνικά": "Ελληνικά",
    "हिन्दी": "हिन्दी",
    # nothing invisible
    "evil\u202egnp": "evil-gnp",  # right-to-left override
    "a\u200d\u2066b\ufeff": "a-b",  # zero-width joiner, bidi isolate, byte order mark
    "\u0301x": "x",  # a combining mark on nothing
    "x\ufe0f": "x",  # a variation selector
    "\u3164x": "x",  # a Hangul filler (a letter that shows nothing)
    "a\udcffb": "a-b",  # an undecodable byte of a local file name
}


def test_an_id_keeps_letters_and_digits_of_every_script_and_nothing_invisible():
    """`数据`, `café`, `हिन्दी` stay; bidi overrides, zero-width and invisible characters do not; ASCII as before."""
    assert {name: safe_id(name) for name in IDS} == IDS


# -- 3. names that differ only in case --------------------------------------------------------
CASE_CLASHES = {
    "items": (["ocean/SST.zarr", "ocean/sst.zarr", "ocean/other.zarr"], {("ocean", "SST"), ("ocean", "other")}),
    "collections": (["Ocean/a.zarr", "ocean/b.zarr", "ocean/c.zarr", "land/d.zarr"], {("Ocean", "a"), ("land", "d")}),
}


@pytest.mark.parametrize(("stores", "expected"), CASE_CLASHES.values(), ids=CASE_CLASHES)
def test_names_that_differ_only_in_case_get_one_folder(template, tmp_path, stores, expected):
    """`SST.zarr` and `sst.zarr`: one is published (the same on every rerun), the other reported."""
    plant(template, tmp_path / "src", *stores)
    refused = {s: "duplicate-id" for s in stores if (s.split("/")[0], s.split("/")[1][:-5]) not in expected}

    first = build(tmp_path)

    out = tmp_path / "out"
    assert catalogued(str(out / CATALOG_FILE)) == expected
    assert names_clash(files_below(out)) == []
    assert skipped(first) == refused
    assert_valid(tmp_path)
    # The refused stores are read again first, the published ones come from the ledger: the same one wins.
    again = build(tmp_path)
    assert skipped(again) == refused
    assert written(again) == 0, again.stdout
    assert catalogued(str(out / CATALOG_FILE)) == expected


@pytest.mark.parametrize("batch", [500, 1], ids=["still in its batch", "written already"])
def test_a_larger_name_that_came_first_gives_way_to_the_smaller(tmp_path, monkeypatch, batch):
    """Items handed over in no particular order (a publisher not told what comes): `sst`, then `SST`."""
    import pyarrow.parquet as pq

    from static_catalog import publication
    from static_catalog.write import write_catalog

    from ..static_catalog.test_publish import synthetic

    monkeypatch.setattr(publication, "WRITE_BATCH", batch)  # 1: each item is written as it comes
    collections, items = synthetic(3, ("ocean",))
    for item, name in zip(items, ["sst", "SST", "other"], strict=True):
        item.id = name

    report = write_catalog(
        collections, items, str(tmp_path), geoparquet=True, may_delete=lambda c: True, delete_grace=0
    )

    assert catalogued(str(tmp_path / CATALOG_FILE)) == {("ocean", "SST"), ("ocean", "other")}
    assert [(r.collection_id, r.item_id, r.kind) for r in report.rejected] == [("ocean", "sst", "duplicate-id")]
    assert "'SST' has it" in report.rejected[0].reason
    assert sorted(pq.read_table(tmp_path / "ocean" / GEOPARQUET_FILE)["id"].to_pylist()) == ["SST", "other"]
    assert names_clash(files_below(tmp_path)) == []


def test_two_stores_of_one_id_give_it_to_the_same_store_on_every_run(template, tmp_path):
    """`ocean/a.b.zarr` and `ocean/a/b.zarr` both make item `a.b`: the first by URL has it, and a
    rerun (which reads the refused store again before it keeps the published one) agrees."""
    plant(template, tmp_path / "src", "ocean/a/b.zarr", "ocean/a.b.zarr")
    expected = {("ocean", "a.b")}

    first = build(tmp_path)
    item = tmp_path / "out" / item_path("ocean", "a.b")
    published = json.loads(item.read_text())["assets"]["zarr"]["href"]
    assert published.endswith("/src/ocean/a.b.zarr")  # '.' sorts before '/'
    assert skipped(first) == {"ocean/a/b.zarr": "duplicate-id"}

    again = build(tmp_path)
    assert skipped(again) == {"ocean/a/b.zarr": "duplicate-id"}
    assert written(again) == 0, again.stdout
    assert json.loads(item.read_text())["assets"]["zarr"]["href"] == published
    assert catalogued(str(tmp_path / "out" / CATALOG_FILE)) == expected


# -- 4. serve-static serves the catalogue's documents, nothing else ---------------------------
@pytest.fixture(scope="module")
def served(template, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    cwd = tmp_path_factory.mktemp("served")
    plant(template, cwd / "src", "ocean/sst.zarr")
    build(cwd, "--geoparquet")
    out = cwd / "out"
    (out / PENDING_FILE).write_text("{}")
    (out / "notes.txt").write_text("not published")
    (out / "ocean" / "sst" / ".tmp-0123456789abcdef-1").write_text("half written")
    outside = cwd / "secret.json"
    outside.write_text('{"secret": true}')
    (out / "ocean" / "link").mkdir()
    (out / "ocean" / "link" / "link.json").symlink_to(outside)
    port = free_port()
    process = subprocess.Popen(
        [ZARR_STAC, "serve-static", "out", "--port", str(port)], cwd=cwd, env=user_env(), stderr=subprocess.PIPE
    )
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/{CATALOG_FILE}", process)
        yield f"127.0.0.1:{port}", out
    finally:
        process.terminate()
        process.wait(10)


# path requested -> the status serve-static must answer (GET and HEAD)
SERVED = {
    # the catalogue's documents
    "/catalog.json": 200,
    "/ocean/collection.json": 200,
    "/ocean/sst/sst.json": 200,
    "/ocean/items.parquet": 200,
    # nothing else
    f"/{LEDGER_FILE}": 404,  # the crawl's ledger: every store's URL and attributes
    "/%2Ezarr-stac-ledger.jsonl.gz": 404,  # the same, percent-encoded
    f"/{PENDING_FILE}": 404,
    "/": 404,  # a listing of the root
    "/ocean/": 404,  # a listing of a collection
    "/ocean": 404,  # a folder without its slash
    "/notes.txt": 404,  # a file that is no document of ours
    "/ocean/sst/.tmp-0123456789abcdef-1": 404,  # a temporary file
    "/ocean/link/link.json": 404,  # a link to a file outside the folder
    "/../secret.json": 404,
    "/%2e%2e/secret.json": 404,
    "/ocean%2f..%2f..%2fsecret.json": 404,
}


def request(host: str, method: str, path: str) -> int:
    """The status of `path` sent as it is (httpx would normalise `..` away)."""
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request(method, path)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_serve_static_serves_the_catalogue_and_nothing_else(served, method):
    """The ledger, pending deletions, listings, other files, links out and traversal: 404."""
    host, _ = served
    assert {path: request(host, method, path) for path in SERVED} == SERVED


# -- 5. what the commands print --------------------------------------------------------------
TERMINAL_CONTROLS = ["\x1b", "\x07", "\u202e", "\u200f", "\x9b"]


def test_store_names_cannot_drive_the_terminal(template, tmp_path):
    """A store named with an escape sequence and a bidi override is printed with them made
    visible (`\\x1b`, `\\u202e`): it can neither recolour nor reorder the operator's terminal."""
    hostile = "ocean/a\x1b[31mRED\x07\u202ex\u200f\x9b.zarr"
    plant(template, tmp_path / "src", hostile)
    (tmp_path / "src" / hostile / "zarr.json").write_text("[]")  # so that its skip line is printed too

    built = zarr_stac(tmp_path, "build", "src", "-o", "out")
    listed = zarr_stac(tmp_path, "crawl", "src")

    for result in (built, listed):
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        assert not [c for c in TERMINAL_CONTROLS if c in output], repr(output)
    assert "a\\x1b[31mRED\\x07\\u202ex" in listed.stdout
    assert "\\u202e" in built.stderr
