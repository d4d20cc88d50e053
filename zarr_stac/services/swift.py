"""A one-node OpenStack Swift with its S3 API (`s3api` + `tempauth`), on loopback.

Debian's `swift-*` packages provide the servers; this module writes their
configuration into a temporary folder (rings of one device each, built with
Swift's RingBuilder), starts memcached, the account, container and object
servers and the proxy on free ports, and stops all of them. The servers run as
the current user (`user = ...`), root included: Swift only switches to that user.

The S3 credentials are tempauth's: access key `ACCOUNT:USER`, secret the user's
key, as OpenStack clouds hand out EC2-style credentials for Keystone users.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .base import ServiceError, free_port

SWIFT_PACKAGES = ["swift", "swift-proxy", "swift-account", "swift-container", "swift-object", "memcached"]
SWIFT_PROGRAMS = [
    "swift-ring-builder",
    "swift-proxy-server",
    "swift-account-server",
    "swift-container-server",
    "swift-object-server",
    "memcached",
]
# tempauth's test user: not a secret, it exists only in the temporary Swift.
SWIFT_ACCOUNT, SWIFT_USER, SWIFT_KEY = "test", "tester", "testing"
SERVERS = ("account", "container", "object")


class SwiftError(ServiceError):
    pass


def _program_of(process: subprocess.Popen[bytes]) -> str:
    args = process.args  # a list here (see start), though Popen allows a plain string too
    return str(args[0] if isinstance(args, list | tuple) else args)


def missing_programs() -> list[str]:
    return [program for program in SWIFT_PROGRAMS if shutil.which(program) is None]


def ensure_swift(*, install: bool = True) -> None:
    """Install Swift and memcached with apt when we are root; otherwise say exactly what to run."""
    if not missing_programs():
        return
    command = f"apt-get update && apt-get install -y {' '.join(SWIFT_PACKAGES)}"
    if not install or os.geteuid() != 0:
        missing = ", ".join(missing_programs())
        raise SwiftError(f"OpenStack Swift is not installed ({missing} missing). Run as root:\n  {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *SWIFT_PACKAGES], check=True, env=env)
    if still_missing := missing_programs():
        raise SwiftError(f"{' '.join(SWIFT_PACKAGES)} were installed but {', '.join(still_missing)} are still missing")


def _server_env() -> dict[str, str]:
    # The servers are Debian's Python: nothing of our virtualenv may leak into them.
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _swift_python() -> str:
    """The interpreter Swift is installed for (Debian's), from the shebang of its commands."""
    with open(shutil.which("swift-ring-builder") or "/usr/bin/swift-ring-builder") as script:
        return script.readline()[2:].strip().split()[0]


@dataclass
class SwiftServer:
    """Swift under `root` (configuration, rings, one device, logs); `port` is the proxy's."""

    root: Path
    port: int = 0
    host: str = "127.0.0.1"
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self.port = self.port or free_port(self.host)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def access_key(self) -> str:
        return f"{SWIFT_ACCOUNT}:{SWIFT_USER}"

    @property
    def secret_key(self) -> str:
        return SWIFT_KEY

    # -- configuration ------------------------------------------------------------------
    def _common(self, port: int) -> str:
        return (
            "[DEFAULT]\n"
            f"bind_ip = {self.host}\nbind_port = {port}\nworkers = 0\n"
            f"user = {pwd.getpwuid(os.getuid()).pw_name}\nswift_dir = {self.root}\n"
            f"devices = {self.root / 'srv'}\nmount_check = false\nlog_level = WARNING\n"
        )

    def _write_config(self, ports: dict[str, int], memcached_port: int) -> None:
        (self.root / "srv" / "d1").mkdir(parents=True, exist_ok=True)
        (self.root / "swift.conf").write_text(
            "[swift-hash]\nswift_hash_path_suffix = zarr-stac-test\nswift_hash_path_prefix = zarr-stac-test\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        )
        for server in SERVERS:
            (self.root / f"{server}-server.conf").write_text(
                self._common(ports[server])
                + f"[pipeline:main]\npipeline = {server}-server\n"
                + f"[app:{server}-server]\nuse = egg:swift#{server}\n"
            )
        filters = {
            "catch_errors": "",
            "gatekeeper": "",
            "healthcheck": "",
            "proxy-logging": "",
            "cache": f"memcache_servers = {self.host}:{memcached_port}\n",
            "listing_formats": "",
            "s3api": "",
            "tempauth": f"user_{SWIFT_ACCOUNT}_{SWIFT_USER} = {SWIFT_KEY} .admin\n",
            "copy": "",
            "slo": "",
            "dlo": "",
        }
        egg = {"cache": "memcache", "proxy-logging": "proxy_logging"}
        # proxy-logging twice, as Swift's sample pipeline has it: client requests and subrequests.
        pipeline = " ".join([*filters, "proxy-logging", "proxy-server"])
        sections = "".join(
            f"[filter:{name}]\nuse = egg:swift#{egg.get(name, name)}\n{extra}" for name, extra in filters.items()
        )
        (self.root / "proxy-server.conf").write_text(
            self._common(self.port)
            + f"[pipeline:main]\npipeline = {pipeline}\n"
            + "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
            + sections
        )

    def _build_rings(self, ports: dict[str, int]) -> None:
        """One device per ring, as `swift-ring-builder X.builder create 4 1 1; add ...; rebalance`
        would build them, in one run of Swift's own RingBuilder (nine runs of the command take 15 s)."""
        script = (
            "import sys\nfrom swift.common.ring import RingBuilder\n"
            "for name, port in zip(sys.argv[2::2], sys.argv[3::2]):\n"
            "    builder = RingBuilder(4, 1, 1)\n"
            "    builder.add_dev({'region': 1, 'zone': 1, 'ip': sys.argv[1], 'port': int(port),\n"
            "                     'device': 'd1', 'weight': 1})\n"
            "    builder.rebalance()\n"
            "    builder.save(f'{name}.builder')\n"
            "    builder.get_ring().save(f'{name}.ring.gz')\n"
        )
        args = [item for server in SERVERS for item in (str(self.root / server), str(ports[server]))]
        command = [_swift_python(), "-c", script, self.host, *args]
        result = subprocess.run(command, capture_output=True, text=True, env=_server_env())
        if result.returncode != 0:
            raise SwiftError(f"building the Swift rings failed: {result.stderr.strip().splitlines()[-1:]}")

    # -- lifecycle ----------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - handed to the server, closed below
        self._processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_server_env()))
        log.close()

    def is_up(self) -> bool:
        try:
            return httpx.get(f"{self.endpoint_url}/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 180) -> SwiftServer:
        # About 20 s on an idle machine; the margin is for loaded CI machines.
        ensure_swift(install=False)
        self.root.mkdir(parents=True, exist_ok=True)
        ports = {server: free_port(self.host) for server in SERVERS}
        memcached_port = free_port(self.host)
        self._write_config(ports, memcached_port)
        self._build_rings(ports)
        user = pwd.getpwuid(os.getuid()).pw_name
        try:
            self._spawn("memcached", ["memcached", "-l", self.host, "-p", str(memcached_port), "-U", "0", "-u", user])
            for server in SERVERS:
                self._spawn(server, [f"swift-{server}-server", str(self.root / f"{server}-server.conf"), "-v"])
            self._spawn("proxy", ["swift-proxy-server", str(self.root / "proxy-server.conf"), "-v"])
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_up():
            for process in self._processes:
                if process.poll() is not None:
                    raise SwiftError(
                        f"{_program_of(process)} exited with status {process.returncode} (logs in {self.root})"
                    )
            if time.monotonic() > deadline:
                waited = f"{timeout:.0f} s"
                raise SwiftError(f"Swift did not answer on {self.endpoint_url} within {waited} (logs: {self.root})")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []

    def __enter__(self) -> SwiftServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def create_bucket(self, bucket: str) -> None:
        """Create `bucket` (a Swift container) through the S3 API, if missing."""
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=self.endpoint_url, key=self.access_key, secret=self.secret_key)
        if not fs.exists(bucket):
            fs.mkdir(bucket)


def main() -> None:
    """`python -m zarr_stac.services.swift`: install Swift when root (the Makefile's set-up step)."""
    try:
        ensure_swift()
    except SwiftError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
