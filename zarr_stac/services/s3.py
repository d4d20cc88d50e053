"""A local S3-compatible server (moto's `moto_server`) on loopback.

It runs in its own process, as a real HTTP server; state lives in memory, so
whoever starts it writes the data it needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .base import ServiceError

# moto accepts any credentials; these make botocore sign requests without
# looking for real ones (and are not secrets).
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "zarr-stac-local",
    "AWS_SECRET_ACCESS_KEY": "zarr-stac-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3ServerError(ServiceError):
    pass


@dataclass
class S3Server:
    port: int
    host: str = "127.0.0.1"
    log_file: Path | None = None
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _command(self) -> list[str]:
        script = Path(sys.executable).with_name("moto_server")
        base = [str(script)] if script.exists() else [sys.executable, "-c", "from moto.server import main; main()"]
        return [*base, "-H", self.host, "-p", str(self.port)]

    def is_up(self) -> bool:
        try:
            return httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30) -> S3Server:
        if self.is_up():
            raise S3ServerError(f"port {self.port} on {self.host} is already in use")
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 - handed to the server
        self._process = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **LOCAL_CREDENTIALS}
        )
        if not isinstance(log, int):
            log.close()  # the server holds its own copy
        deadline = time.monotonic() + timeout
        while not self.is_up():
            if self._process.poll() is not None:
                raise S3ServerError(f"moto_server exited with status {self._process.returncode} (log: {self.log_file})")
            if time.monotonic() > deadline:
                self.stop()
                raise S3ServerError(f"moto_server did not answer on {self.endpoint_url} within {timeout:.0f} s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def create_bucket(self, bucket: str, *, public: bool = False) -> None:
        """Create `bucket` (if missing); `public` lets anyone list and read it, anonymously."""
        import s3fs

        fs = s3fs.S3FileSystem(
            endpoint_url=self.endpoint_url,
            key=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        if not fs.exists(bucket):
            fs.mkdir(bucket)
        if public:
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:GetObject"],
                        "Resource": [f"arn:aws:s3:::{bucket}/*"],
                    },
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{bucket}"],
                    },
                ],
            }
            fs.call_s3("put_bucket_policy", Bucket=bucket, Policy=json.dumps(policy))
