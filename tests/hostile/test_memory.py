"""Attacks on memory (issue 25, point 4, and its Low items on hostile metadata): inputs that
ask for unbounded memory or time, and metadata crafted to be published wrong.

Each attack is made for real (the file, the table, the store in a real S3 server) and given
to the real `zarr-stac` in a child process whose address space is capped (RLIMIT_AS), so a
limit that is missing shows as a crash, not as luck. Each must end with its exit status, a
clear line naming the culprit and no traceback; a hostile store is that store's failure
(with its kind), and the other stores of the run are still catalogued.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from zarr_stac.services import LOCAL_CREDENTIALS

ZARR_STAC = str(Path(sys.executable).with_name("zarr-stac"))
# The CLI reserves about 1 GiB of address space for a small crawl (xarray, zarr, s3fs, their
# threads; measured as VmPeak: 0.98 GiB, 1.17 GiB without MALLOC_ARENA_MAX below): 2 GiB
# leaves room for real work, and none for any of these attacks (3 to 7 GiB before their limits).
MEMORY_CAP = 2 << 30
TIMEOUT = 240  # seconds: an attack that is not refused runs far longer, or dies
GIB = 1 << 30


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`zarr-stac ARGS` as a user runs it, its address space capped at MEMORY_CAP."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ZARR_STAC_"))}
    environment.update(
        LOCAL_CREDENTIALS,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        COLUMNS="250",
        # glibc gives each thread an arena of up to 64 MiB of address space (reserved, not
        # used): with the crawl's threads that alone could reach the cap, by chance.
        MALLOC_ARENA_MAX="2",
    )
    environment.update(env or {})
    return subprocess.run(
        [ZARR_STAC, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=cap_memory,
    )


def assert_refused_in_one_line(result: subprocess.CompletedProcess, status: int, *phrases: str) -> str:
    """Exit `status`, no traceback, one line on stderr holding every phrase."""
    output = result.stdout + result.stderr
    assert result.returncode == status, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output[-3000:]
    for phrase in phrases:
        assert phrase in lines[0], output[-3000:]
    return lines[0]


def skipped(result: subprocess.CompletedProcess) -> dict[str, str]:
    """{store URL: "kind: reason"} from a crawl's summary lines `skipped URL: kind: reason`."""
    found = {}
    for line in result.stderr.splitlines():
        if line.startswith("skipped "):
            url, _, rest = line.removeprefix("skipped ").partition(": ")
            found[url] = rest
    return found


def catalogued_ids(catalogue: Path) -> set[str]:
    """The ids of the Items a static catalogue holds (every JSON with type Feature)."""
    ids = set()
    for path in catalogue.rglob("*.json"):
        document = json.loads(path.read_text())
        if document.get("type") == "Feature":
            ids.add(document["id"])
    return ids


# -- stores -----------------------------------------------------------------------------------
def cf_dataset(lon: np.ndarray | None = None) -> xr.Dataset:
    """A small CF dataset any crawl catalogues: time, latitude, longitude, one variable."""
    lon = np.array([0.0, 10.0, 20.0]) if lon is None else lon
    lat = np.array([-10.0, 0.0, 10.0])
    time = pd.date_range("2000-01-01", periods=2, freq="D")
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), np.zeros((2, lat.size, lon.size), "f4"), {"units": "K"})},
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )


def good_store(path: Path, zarr_format: int = 2, consolidated: bool = True) -> Path:
    cf_dataset().to_zarr(path, mode="w", zarr_format=zarr_format, consolidated=consolidated)
    return path


def huge_coordinate_store(path: Path, chunk: int) -> Path:
    """A store whose time coordinate declares 3x10^8 float64 values (2.2 GiB) and holds none
    (no chunk written): reading it decodes 2.2 GiB of fill values from a few hundred bytes."""
    group = zarr.open_group(path, mode="w", zarr_format=2)
    time = group.create_array("time", shape=(300_000_000,), chunks=(chunk,), dtype="f8", fill_value=0.0)
    time.attrs.update(_ARRAY_DIMENSIONS=["time"], units="days since 2000-01-01", standard_name="time")
    for name, values, units in (("lat", [-10.0, 0.0, 10.0], "degrees_north"), ("lon", [0.0, 10.0], "degrees_east")):
        array = group.create_array(name, shape=(len(values),), dtype="f8")
        array[:] = values
        array.attrs.update(_ARRAY_DIMENSIONS=[name], units=units)
    zarr.consolidate_metadata(path)
    return path


def infinite_latitude_store(path: Path) -> Path:
    """Latitudes stored as int16 with a scale_factor of 1e308: decoded, all but 0 are +-inf
    (and a bbox from the finite rest would be the equator)."""
    dataset = cf_dataset().drop_vars(["tas", "lat"])
    dataset["lat"] = ("lat", np.array([-60, -30, 0, 30, 60], "i2"), {"units": "degrees_north", "scale_factor": 1e308})
    dataset["tas"] = (("time", "lat", "lon"), np.zeros((2, 5, 3), "f4"))
    dataset.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


def replaced(path: Path, documents: dict[str, str], zarr_format: int, consolidated: bool) -> Path:
    """A good store with some of its metadata documents replaced by `documents`."""
    good_store(path, zarr_format, consolidated)
    for key, text in documents.items():
        (path / key).write_text(text)
    return path


# Metadata that is JSON but no JSON object: (store name, documents, zarr format, consolidated,
# what the reason says).
NOT_OBJECTS = [
    ("zmetadata-list", {".zmetadata": "[]"}, 2, True, ".zmetadata is a list, not a JSON object"),
    ("zmetadata-string", {".zmetadata": '"x"'}, 2, True, ".zmetadata is a string, not a JSON object"),
    ("zmetadata-number", {".zmetadata": "3"}, 2, True, ".zmetadata is a number, not a JSON object"),
    ("zmetadata-null", {".zmetadata": "null"}, 2, True, ".zmetadata is null, not a JSON object"),
    (
        "zmetadata-member-list",
        {".zmetadata": json.dumps({"metadata": {".zgroup": [], ".zattrs": {}}})},
        2,
        True,
        ".zmetadata: '.zgroup' is a list, not a JSON object",
    ),
    ("zattrs-list", {".zattrs": "[1, 2]"}, 2, False, ".zattrs is a list, not a JSON object"),
    ("zarray-list", {"lat/.zarray": "[]"}, 2, False, "lat/.zarray is a list, not a JSON object"),
    ("zarr-json-list", {"zarr.json": "[]"}, 3, True, "zarr.json is a list, not a JSON object"),
    ("array-zarr-json-list", {"lat/zarr.json": "[1, 2]"}, 3, False, "lat/zarr.json is a list, not a JSON object"),
]


def hostile_stores(root: Path) -> dict[str, str]:
    """Write the hostile stores (and one good one) below `root`: {store name: expected kind}."""
    good_store(root / "good.zarr")
    huge_coordinate_store(root / "huge-time-one-chunk.zarr", chunk=300_000_000)  # the fast path
    huge_coordinate_store(root / "huge-time-many-chunks.zarr", chunk=1_000_000)  # the lazy path
    infinite_latitude_store(root / "infinite-latitude.zarr")
    for name, documents, zarr_format, consolidated, _ in NOT_OBJECTS:
        replaced(root / f"{name}.zarr", documents, zarr_format, consolidated)
    expected = {"huge-time-one-chunk": "too-large", "huge-time-many-chunks": "too-large"}
    expected["infinite-latitude"] = "missing-coordinates"
    expected.update({name: "corrupt-metadata" for name, *_ in NOT_OBJECTS})
    return expected


@pytest.fixture(scope="module")
def bucket_crawl(s3_server, storage, tmp_path_factory) -> tuple[str, dict[str, str], subprocess.CompletedProcess, Path]:
    """One `build` of a bucket holding every hostile store and a good one."""
    local = tmp_path_factory.mktemp("hostile-stores")
    expected = hostile_stores(local)
    s3_server.create_bucket("hostile-memory")
    storage.filesystem("s3://hostile-memory").put(f"{local}/", "hostile-memory/", recursive=True)
    out = tmp_path_factory.mktemp("hostile-out") / "catalogue"
    result = run("build", "s3://hostile-memory", "-o", str(out), "--endpoint-url", s3_server.endpoint_url, cwd=local)
    return "s3://hostile-memory", expected, result, out


def test_a_bucket_of_hostile_stores_still_catalogues_the_good_one(bucket_crawl):
    """The run survives every hostile store of its bucket and publishes the good store."""
    _, _, result, out = bucket_crawl
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert catalogued_ids(out) == {"good"}


@pytest.mark.parametrize(
    "name",
    [
        "huge-time-one-chunk",
        "huge-time-many-chunks",
        "infinite-latitude",
        *(name for name, *_ in NOT_OBJECTS),
    ],
)
def test_each_hostile_store_is_its_own_failure_with_its_kind(bucket_crawl, name):
    """A coordinate of 3x10^8 values is too-large (with its size); a latitude decoding to
    infinities is missing-coordinates; metadata that is no JSON object is corrupt-metadata."""
    bucket, expected, result, _ = bucket_crawl
    report = skipped(result).get(f"{bucket}/{name}.zarr", "")
    assert report.startswith(f"{expected[name]}: "), result.stderr[-3000:]
    reasons = {name: phrase for name, *_, phrase in NOT_OBJECTS}
    reasons["infinite-latitude"] = "coordinate 'lat' decodes to infinite values"
    reasons["huge-time-one-chunk"] = reasons["huge-time-many-chunks"] = (
        "coordinate 'time' declares 300,000,000 float64 values (2.2 GiB), more than the 512 MiB"
    )
    assert report.removeprefix(f"{expected[name]}: ").startswith(reasons[name]), report


@pytest.fixture(scope="module")
def local_stores(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inspected")
    hostile_stores(root)
    return root


@pytest.mark.parametrize(
    ("name", "kind", "phrase"),
    [
        ("huge-time-one-chunk", "too-large", "coordinate 'time' declares 300,000,000 float64 values (2.2 GiB)"),
        ("huge-time-many-chunks", "too-large", "coordinate 'time' declares 300,000,000 float64 values (2.2 GiB)"),
        ("infinite-latitude", "missing-coordinates", "coordinate 'lat' decodes to infinite values"),
        ("zmetadata-list", "corrupt-metadata", ".zmetadata is a list, not a JSON object"),
        ("zmetadata-null", "corrupt-metadata", ".zmetadata is null, not a JSON object"),
        ("zattrs-list", "corrupt-metadata", ".zattrs is a list, not a JSON object"),
        ("zarr-json-list", "corrupt-metadata", "zarr.json is a list, not a JSON object"),
        ("array-zarr-json-list", "corrupt-metadata", "lat/zarr.json is a list, not a JSON object"),
    ],
)
def test_inspecting_a_hostile_store_is_one_line_naming_its_kind(local_stores, name, kind, phrase):
    """`inspect` (the lazy path, no prefetch) refuses the store before reading it: one line."""
    result = run("inspect", f"{name}.zarr", cwd=local_stores)
    assert_refused_in_one_line(result, 1, f"{name}.zarr: {kind}: ", phrase)


class EndlessMetadataServer(http.server.ThreadingHTTPServer):
    """Serves a folder over HTTP as simple servers do (no ranges), except that any
    `endless.zarr/.zmetadata` is an endless body of JSON whitespace."""

    daemon_threads = True

    def __init__(self, root: Path):
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                if not self.path.endswith("/endless.zarr/.zmetadata"):
                    return super().do_GET()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                blank = b" " * (1 << 20)
                try:
                    for _ in range(4 << 10):  # 4 GiB
                        self.wfile.write(blank)
                except OSError:  # the reader hung up: what a limit does
                    pass

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def endless_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    good_store(root / "good.zarr")
    (root / "endless.zarr").mkdir()
    server = EndlessMetadataServer(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, root
    server.shutdown()
    server.server_close()


def test_an_http_server_sending_endless_metadata_is_that_stores_failure(endless_server):
    """A .zmetadata served as an endless body (HTTP servers may ignore ranges): too-large, the others catalogued."""
    server, root = endless_server
    (root / "stores.txt").write_text(f"{server.url}/good.zarr\n{server.url}/endless.zarr\n")
    result = run("build", "stores.txt", "-o", "out-http", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    report = skipped(result)[f"{server.url}/endless.zarr"]
    assert report.startswith("too-large: .zmetadata is larger than 64 MiB, the limit"), report
    assert catalogued_ids(root / "out-http") == {"good"}


def test_inspecting_a_store_whose_http_server_sends_endless_metadata_is_one_line(endless_server):
    """`inspect` of that store (the lazy path): one line, too-large."""
    server, root = endless_server
    result = run("inspect", f"{server.url}/endless.zarr", cwd=root)
    assert_refused_in_one_line(result, 1, "endless.zarr: too-large: .zmetadata is larger than 64 MiB")


# -- inputs: YAML -----------------------------------------------------------------------------
def billion_laughs(levels: int = 10) -> str:
    """An anchor of 9 aliases of an anchor of 9 aliases ...: 9^levels nodes from ~1 kB."""
    lines = ['l0: &l0 ["lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines)


def indented(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


def intake_catalogue(extra: str = "", options: str = "{}") -> str:
    return (
        f"metadata:\n{indented(extra) if extra else '  {}'}\n"
        "sources:\n  good:\n    driver: zarr\n    args:\n      urlpath: '{{ CATALOG_DIR }}/good.zarr'\n"
        f"      storage_options: {options}\n"
    )


YAML_ATTACKS = {
    "billion-laughs": (intake_catalogue(billion_laughs(), "*l9"), "aliases expand it to more than 250,000 nodes"),
    "endless-alias": (intake_catalogue("loop: &loop [*loop]", "*loop"), "endless"),
    "nested-too-deeply": (intake_catalogue("deep: " + "[" * 50_000 + "]" * 50_000), "nested too deeply"),
}


@pytest.fixture(scope="module")
def inputs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    good_store(root / "good.zarr")
    return root


@pytest.mark.parametrize("command", ["crawl", "build"])
@pytest.mark.parametrize("attack", sorted(YAML_ATTACKS))
def test_a_yaml_bomb_as_intake_catalogue_is_refused_in_one_line(inputs_dir, attack, command):
    """A billion-laughs, self-referring or deeply nested intake catalogue: refused, named, exit 1."""
    text, phrase = YAML_ATTACKS[attack]
    (inputs_dir / f"{attack}.yaml").write_text(text)
    args = [command, f"{attack}.yaml"] + (["-o", f"out-{attack}"] if command == "build" else [])
    result = run(*args, cwd=inputs_dir)
    assert_refused_in_one_line(result, 1, f"{attack}.yaml", phrase)


def test_a_nested_yaml_bomb_is_that_entrys_failure(inputs_dir):
    """A catalogue that includes a billion-laughs catalogue: the bomb is reported, the good store published."""
    (inputs_dir / "bomb.yaml").write_text(YAML_ATTACKS["billion-laughs"][0])
    (inputs_dir / "including.yaml").write_text(
        "sources:\n"
        "  good:\n    driver: zarr\n    args: {urlpath: '{{ CATALOG_DIR }}/good.zarr'}\n"
        "  bomb:\n    driver: yaml_file_cat\n    args: {path: '{{ CATALOG_DIR }}/bomb.yaml'}\n"
    )
    result = run("build", "including.yaml", "-o", "out-including", cwd=inputs_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert skipped(result)[str(inputs_dir / "bomb.yaml")].startswith("input: refused: its aliases expand it")
    assert catalogued_ids(inputs_dir / "out-including") == {"good"}


def mapping_config(extra: str = "", properties: str = "{}") -> str:
    return f"{extra}\nsources:\n  - url: good.zarr\n    properties: {properties}\n"


CONFIG_ATTACKS = {
    "billion-laughs": (mapping_config("x:\n" + indented(billion_laughs()), "{p: *l9}"), "aliases expand it"),
    "endless-alias": (mapping_config("x: &x [*x]", "{p: *x}"), "endless"),
    "nested-too-deeply": (mapping_config("x: " + "[" * 50_000 + "]" * 50_000), "nested too deeply"),
}


@pytest.mark.parametrize("attack", sorted(CONFIG_ATTACKS))
def test_a_yaml_bomb_as_mapping_configuration_is_refused_in_one_line(inputs_dir, attack):
    """A billion-laughs, self-referring or deeply nested --config: refused, named, exit 2."""
    text, phrase = CONFIG_ATTACKS[attack]
    (inputs_dir / f"config-{attack}.yaml").write_text(text)
    result = run("build", "--config", f"config-{attack}.yaml", "-o", "out", cwd=inputs_dir)
    assert_refused_in_one_line(result, 2, f"config-{attack}.yaml: refused: ", phrase)


@pytest.mark.parametrize(
    ("name", "make", "phrase"),
    [
        ("a-folder", lambda path: path.mkdir(), "is a folder, not a configuration file"),
        ("binary.yaml", lambda path: path.write_bytes(bytes(range(256)) * 64), "not a text file"),
    ],
)
def test_a_folder_or_a_binary_file_as_configuration_is_one_line(tmp_path, name, make, phrase):
    """--config naming a folder or a binary file: one line naming it, exit 2."""
    make(tmp_path / name)
    result = run("build", "--config", name, "-o", "out", cwd=tmp_path)
    assert_refused_in_one_line(result, 2, f"{name}: {phrase}")


# -- inputs: tables -----------------------------------------------------------------------------
def gzip_bomb(path: Path, header: bytes, gigabytes: float) -> None:
    """A .csv.gz that inflates to `header` and then one line of `gigabytes` GiB of zeros (a few
    MB on disk: one compressed MiB of zeros, repeated as gzip members)."""
    member = gzip.compress(b"0" * (1 << 20), compresslevel=9)
    with path.open("wb") as handle:
        handle.write(gzip.compress(header))
        for _ in range(int(gigabytes * 1024)):
            handle.write(member)


def wide_header(path: Path, columns: int) -> None:
    names = ",".join(f"c{i}" for i in range(columns))
    path.write_text(f"zstore,{names}\ngood.zarr,{','.join('v' * 1 for _ in range(columns))}\n")


def big_field(path: Path, size: int) -> None:
    path.write_text(f"zstore,note\ngood.zarr,{'x' * size}\n")


TABLE_ATTACKS = {
    "a million columns": ("wide.csv", lambda p: wide_header(p, 1_000_000), "line 1 is longer than 1 MiB"),
    "2,000 columns": ("columns.csv", lambda p: wide_header(p, 2_000), "2,001 columns, more than the 1,000"),
    "a 10 MB field": ("field.csv", lambda p: big_field(p, 10_000_000), "line 2 is longer than 1 MiB"),
    "a 200 kB field": ("kb.csv", lambda p: big_field(p, 200_000), "field larger than field limit (131072)"),
    "a gzip bomb": ("bomb.csv.gz", lambda p: gzip_bomb(p, b"zstore,a\n", 2), "line 2 is longer than 1 MiB"),
}


@pytest.mark.parametrize("attack", sorted(TABLE_ATTACKS))
def test_a_hostile_csv_input_is_refused_in_one_line(inputs_dir, attack):
    """A CSV whose header or a line is too wide (plain or a gzip bomb): refused, named, exit 1."""
    name, make, phrase = TABLE_ATTACKS[attack]
    make(inputs_dir / name)
    result = run("build", name, "-o", f"out-{name}", cwd=inputs_dir)
    line = assert_refused_in_one_line(result, 1, name, phrase)
    assert "catalogue.max_row_kb" in line or "catalogue.max_columns" in line or "field limit" in line
    assert not (inputs_dir / f"out-{name}").exists()


def test_a_deeply_nested_esm_collection_is_refused_in_one_line(inputs_dir):
    """An intake-esm JSON nested 200,000 lists deep: refused, named, exit 1."""
    (inputs_dir / "deep.json").write_text('{"esmcat_version": "0.1.0", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    result = run("crawl", "deep.json", cwd=inputs_dir)
    assert_refused_in_one_line(result, 1, "deep.json: refused: it is nested too deeply")


# -- limits are settings ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Path:
    """Stores and inputs beyond limits lowered to 1 MiB (ZARR_STAC_MAX_*_MB=1), and a good store."""
    root = tmp_path_factory.mktemp("limited")
    good_store(root / "stores" / "good.zarr")
    fat = good_store(root / "stores" / "fat-zmetadata.zarr")
    zarr.open_group(fat, mode="a", zarr_format=2).attrs["blob"] = "x" * 2_000_000
    zarr.consolidate_metadata(fat)
    good_store(root / "stores" / "fat-zattrs.zarr", consolidated=False)
    zarr.open_group(root / "stores" / "fat-zattrs.zarr", mode="a", zarr_format=2).attrs["blob"] = "x" * 2_000_000
    # 300,000 longitudes: 2.3 MiB decoded.
    cf_dataset(lon=np.linspace(0, 359.9, 300_000)).to_zarr(root / "stores" / "wide-lon.zarr", zarr_format=2)
    reference = {"version": 1, "refs": {".zgroup": '{"zarr_format": 2}', ".zattrs": json.dumps({"x": "x" * 2_000_000})}}
    (root / "stores" / "fat-reference.json").write_text(json.dumps(reference))
    return root


LIMITS = {"ZARR_STAC_MAX_METADATA_MB": "1", "ZARR_STAC_MAX_INPUT_MB": "1", "ZARR_STAC_MAX_COORDINATE_MB": "1"}


@pytest.mark.parametrize(
    ("store", "phrase"),
    [
        ("fat-zmetadata.zarr", ".zmetadata is larger than 1 MiB, the limit (storage.max_metadata_mb"),
        ("fat-zattrs.zarr", ".zattrs is larger than 1 MiB, the limit (storage.max_metadata_mb"),
        ("wide-lon.zarr", "coordinate 'lon' declares 300,000 float64 values (2.3 MiB), more than the 1 MiB"),
        ("fat-reference.json", "the reference is larger than 1 MiB, the limit (storage.max_input_mb"),
    ],
)
def test_limits_lowered_in_the_environment_refuse_each_store_beyond_them(limited, store, phrase):
    """ZARR_STAC_MAX_{METADATA,INPUT,COORDINATE}_MB: a store beyond one is too-large, the others catalogued."""
    out = limited / f"out-{store}"
    result = run("build", "stores", "-o", str(out), cwd=limited, env=LIMITS)
    assert result.returncode == 0, result.stderr[-3000:]
    report = skipped(result)[str(limited / "stores" / store)]
    assert report.startswith(f"too-large: {phrase}"), report
    assert catalogued_ids(out) == {"good"}


def test_a_configuration_may_raise_a_limit_the_environment_lowers(limited):
    """storage.max_coordinate_mb in --config wins over ZARR_STAC_MAX_COORDINATE_MB (which applies where unset)."""
    (limited / "raised.yaml").write_text(
        "sources:\n  - url: stores/wide-lon.zarr\n    storage: {max_coordinate_mb: 4}\n  - url: stores/good.zarr\n"
    )
    (limited / "unset.yaml").write_text("sources:\n  - url: stores/wide-lon.zarr\n  - url: stores/good.zarr\n")
    env = {"ZARR_STAC_MAX_COORDINATE_MB": "1"}
    raised = run("build", "--config", "raised.yaml", "-o", "out-raised", cwd=limited, env=env)
    unset = run("build", "--config", "unset.yaml", "-o", "out-unset", cwd=limited, env=env)
    assert raised.returncode == 0 and unset.returncode == 0, raised.stderr[-2000:] + unset.stderr[-2000:]
    assert catalogued_ids(limited / "out-raised") == {"good", "wide-lon"}
    assert catalogued_ids(limited / "out-unset") == {"good"}
    assert skipped(unset)[str(limited / "stores" / "wide-lon.zarr")].startswith("too-large: coordinate 'lon'")


@pytest.mark.parametrize("value", ["lots", "-1", "0", "inf"])
def test_a_limit_that_is_no_positive_number_is_one_line(limited, value):
    """ZARR_STAC_MAX_COORDINATE_MB=lots: exit 2 naming the variable, before anything is read."""
    result = run("build", "stores", "-o", "out-bad", cwd=limited, env={"ZARR_STAC_MAX_COORDINATE_MB": value})
    assert_refused_in_one_line(result, 2, "ZARR_STAC_MAX_COORDINATE_MB", "not a positive number of MiB")
    assert not (limited / "out-bad").exists()
