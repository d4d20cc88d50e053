"""`zarr-stac demo` (what `make demo` runs): reaches "serving", answers, stops cleanly, reruns."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from zarr_stac.services import free_port


def run_demo_until_serving(data_dir: Path, ports: dict[str, int]) -> tuple[subprocess.Popen, list[str]]:
    args = [sys.executable, "-m", "zarr_stac", "demo", "--data-dir", str(data_dir)]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    lines: list[str] = []
    deadline = time.monotonic() + 180
    for line in process.stdout:
        lines.append(line.rstrip())
        if line.strip() == "serving":
            return process, lines
        if time.monotonic() > deadline:
            break
    process.kill()
    pytest.fail("demo did not reach 'serving':\n" + "\n".join(lines))


def stop(process: subprocess.Popen, lines: list[str], how: signal.Signals = signal.SIGINT) -> int:
    process.send_signal(how)
    out, _ = process.communicate(timeout=60)
    lines.extend(out.splitlines())
    return process.returncode


def assert_everything_stopped(ports: dict[str, int]) -> None:
    """Nothing the demo started still listens: API, static server, S3 server, PostgreSQL."""
    for name, port in ports.items():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"the demo's {name} port {port} still answers"


def try_the_readme(ports: dict[str, int]) -> None:
    """What README.md shows, as printed, against the running demo."""
    import xarray as xr
    from pystac_client import Client

    client = Client.open(f"http://127.0.0.1:{ports['api']}")
    found = sorted(
        i.id
        for i in client.search(collections=["cmip6"], filter="variable_id = 'tas' AND experiment_id = 'ssp585'").items()
    )
    assert found == ["ModelA.ssp585.r1i1p1f1.tas.gn", "ModelB.ssp585.r1i1p1f1.tas.gn"]
    item = next(client.search(collections=["cmip6"], bbox=[-10, 40, 10, 50], datetime="2016").items())
    asset = item.assets["zarr"]
    ds = xr.open_dataset(
        asset.href,
        **asset.extra_fields["xarray:open_kwargs"],
        storage_options=asset.extra_fields["xarray:storage_options"],
    )
    assert ds.sizes["time"] == 72 and ds.attrs["experiment_id"] == "ssp585"
    for collection in client.get_collections():
        assert collection.title and collection.title != collection.id
        assert collection.license == "CC-BY-4.0"
    assert client.get_collection("cmip6").summaries.get_list("variable_id") == ["pr", "tas"]
    queryables = httpx.get(f"http://127.0.0.1:{ports['api']}/collections/cmip6/queryables").json()["properties"]
    assert queryables["variable_id"]["enum"] == ["pr", "tas"]
    endpoint = ["--endpoint-url", f"http://127.0.0.1:{ports['s3']}", "--anon"]
    zarr_stac = str(Path(sys.executable).with_name("zarr-stac"))
    crawled = subprocess.run(
        [zarr_stac, "crawl", "s3://zarr-stac-demo", *endpoint], capture_output=True, text=True, timeout=120
    )
    assert crawled.returncode == 0 and crawled.stdout.count("s3://zarr-stac-demo/") == 10, crawled.stderr
    inspected = subprocess.run(
        [zarr_stac, "inspect", "s3://zarr-stac-demo/ocean/north-atlantic-sst.zarr", *endpoint],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inspected.returncode == 0 and '"north-atlantic-sst"' in inspected.stdout, inspected.stderr


# A GET in moto's access log (werkzeug's, colours and all): the key and the status.
GET = re.compile(r'"(?:\x1b\[[\d;]*m)*GET /zarr-stac-demo/([^ ?]+)\S* HTTP/[\d.]+(?:\x1b\[[\d;]*m)*" (\d{3})')


def store_reads(log: Path, since: int) -> list[str]:
    """The stores' consolidated metadata and coordinate chunks the demo's S3 server served
    after byte `since` of its log: what a crawl reads (writing the samples reads neither)."""
    with log.open("rb") as handle:
        handle.seek(since)
        text = handle.read().decode(errors="replace")
    return [
        key
        for key, status in GET.findall(text)
        if status in ("200", "206") and (key.endswith("/.zmetadata") or re.search(r"/(c/)?\d+(\.\d+)*$", key))
    ]


@pytest.fixture
def data_dir():
    # Under /tmp: as root, the demo's PostgreSQL runs as the postgres user.
    path = Path(tempfile.mkdtemp(prefix="zarr-stac-demo-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.mark.timeout(600)  # three demo runs, each starting PostgreSQL and S3
@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.slow
def test_demo_serves_both_catalogues_and_reuses_its_cluster(data_dir):
    ports = {"api": free_port(), "static": free_port(), "s3": free_port(), "pg": free_port()}
    log = data_dir / "s3-server.log"
    process, lines = run_demo_until_serving(data_dir, ports)
    assert store_reads(log, 0), "the first start reads the samples (and the log shows it)"
    try:
        api = httpx.get(f"http://127.0.0.1:{ports['api']}/collections").json()
        assert sorted(c["id"] for c in api["collections"]) == ["cmip6", "ocean", "reanalysis"]
        static = httpx.get(f"http://127.0.0.1:{ports['static']}/catalog.json")
        assert static.headers["access-control-allow-origin"] == "*"
        assert len([link for link in static.json()["links"] if link["rel"] == "child"]) == 3
        try_the_readme(ports)
    finally:
        code = stop(process, lines, signal.SIGTERM)  # what docker stop and systemd send
    output = "\n".join(lines)
    assert code == 0, output
    assert "Traceback" not in output
    assert "creating the cluster" in output and output.rstrip().endswith("stopped")
    assert (data_dir / "postgres" / "password").read_text().strip() not in output
    assert_everything_stopped(ports)

    for how in (signal.SIGINT, signal.SIGHUP):  # Ctrl-C, and a closed terminal
        since = log.stat().st_size
        process, lines = run_demo_until_serving(data_dir, ports)
        code = stop(process, lines, how)
        output = "\n".join(lines)
        assert code == 0, output
        assert "reusing the cluster" in output
        # As `build` and `load` rerun: the ledgers say nothing changed, so no store is read, and
        # nothing is written (17 STAC objects and the ledger) or loaded.
        assert store_reads(log, since) == []
        assert "0 written, 18 unchanged" in output
        assert "0 items into pgstac, 10 unchanged" in output
        assert_everything_stopped(ports)
