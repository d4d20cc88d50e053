"""`zarr-stac demo` (what `make demo` runs): reaches "serving", answers, stops cleanly, reruns."""

import os
import signal
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
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
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


def stop(process: subprocess.Popen, lines: list[str]) -> int:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    lines.extend(out.splitlines())
    return process.returncode


@pytest.fixture
def data_dir():
    # Under /tmp: as root, the demo's PostgreSQL runs as the postgres user.
    path = Path(tempfile.mkdtemp(prefix="zarr-stac-demo-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_demo_serves_both_catalogues_and_reuses_its_cluster(data_dir):
    ports = {"api": free_port(), "static": free_port(), "s3": free_port(), "pg": free_port()}
    process, lines = run_demo_until_serving(data_dir, ports)
    try:
        api = httpx.get(f"http://127.0.0.1:{ports['api']}/collections").json()
        assert sorted(c["id"] for c in api["collections"]) == ["cmip6", "ocean", "reanalysis"]
        static = httpx.get(f"http://127.0.0.1:{ports['static']}/catalog.json")
        assert static.headers["access-control-allow-origin"] == "*"
        assert len([link for link in static.json()["links"] if link["rel"] == "child"]) == 3
    finally:
        code = stop(process, lines)
    output = "\n".join(lines)
    assert code == 0, output
    assert "Traceback" not in output
    assert "creating the cluster" in output and output.rstrip().endswith("stopped")
    assert (data_dir / "postgres" / "password").read_text().strip() not in output

    process, lines = run_demo_until_serving(data_dir, ports)
    code = stop(process, lines)
    output = "\n".join(lines)
    assert code == 0, output
    assert "reusing the cluster" in output
    assert "0 written, 17 unchanged" in output
