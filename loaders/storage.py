"""Where the Zarr stores live and how to reach them.

`StorageOptions` is the one place that knows which connection settings are secret
(keys, secrets, GCS tokens: used to crawl, never published) and which are public
(endpoint, region, anonymous access: copied into each asset's
`xarray:storage_options` so that users can open the data).
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

import fsspec
from fsspec.core import split_protocol
from pydantic import BaseModel, ConfigDict, SecretStr

REMOTE_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "http", "https", "az", "abfs"}


def _one_retry_layer() -> None:
    """s3fs retries whole calls (5 tries) on top of botocore's retries: 5x the
    attempts, minutes spent on a store that keeps failing, and `retries` meaning
    nothing. botocore's standard mode is the retry layer (see `retries` below); s3fs
    keeps one more try for what botocore cannot retry, a body cut off mid-read.
    A class attribute, not a constructor option, in s3fs 2026.9."""
    try:
        import s3fs
    except ImportError:
        return
    s3fs.S3FileSystem.retries = 2


_one_retry_layer()


def _gcs_json_api_only() -> None:
    """gcsfs 2026.10 makes gs:// its ExtendedGcsFileSystem unless GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT
    is false: before its first read of a bucket it asks Google's gRPC Storage Control API for the
    bucket's layout, and against an emulator or a private endpoint (no gRPC there) each of those
    calls waits 60 s and is tried again. The JSON-API filesystem reads standard and hierarchical
    buckets alike; whoever sets the variable themselves keeps gcsfs's choice."""
    if "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT" in os.environ:
        return
    for protocol in ("gs", "gcs"):  # by name: gcsfs is imported only when gs:// is used
        fsspec.register_implementation(protocol, "gcsfs.core.GCSFileSystem", clobber=True, errtxt="pip install gcsfs")


_gcs_json_api_only()


class StorageOptions(BaseModel):
    """Connection settings for one object store, as s3fs users know them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_url: str | None = None
    region: str | None = None
    anon: bool = False
    profile: str | None = None
    key: SecretStr | None = None
    secret: SecretStr | None = None
    # GCS: an OAuth access token or the path of a credentials JSON file (gcsfs's `token`).
    token: SecretStr | None = None
    # What readers of the catalogue should use; defaults to `anon`.
    public_anon: bool | None = None
    # Seconds before a connection or read is abandoned, and how often a failed
    # request is retried (exponential backoff with jitter: botocore's standard
    # mode) before the store is reported. None: the client library's defaults.
    timeout: float | None = 30.0
    retries: int | None = 5

    def for_fsspec(self, url: str) -> dict[str, Any]:
        """Everything fsspec needs to read `url`, secrets included: never publish this."""
        protocol = protocol_of(url)
        if protocol in ("s3", "s3a"):
            # max_concurrency=1: s3fs would otherwise HEAD every object before its GET,
            # to split big downloads; metadata and coordinate chunks are small.
            options: dict[str, Any] = {"anon": self.anon, "max_concurrency": 1}
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            if self.profile:
                options["profile"] = self.profile
            if self.key is not None:
                options["key"] = self.key.get_secret_value()
            if self.secret is not None:
                options["secret"] = self.secret.get_secret_value()
            if self.region:
                options["client_kwargs"] = {"region_name": self.region}
            config: dict[str, Any] = {}
            if self.timeout is not None:
                config.update(connect_timeout=self.timeout, read_timeout=self.timeout)
            if self.retries is not None:
                # botocore's standard mode: exponential backoff with jitter on
                # throttling, 5xx, resets and timeouts.
                config["retries"] = {"mode": "standard", "total_max_attempts": self.retries + 1}
            if config:
                options["config_kwargs"] = config
            return options
        if protocol in ("gs", "gcs"):
            # No token: gcsfs finds Google's default credentials itself.
            options = {"token": "anon"} if self.anon else {"token": self.token.get_secret_value()} if self.token else {}
            if self.endpoint_url:  # an emulator or a private GCS endpoint
                options["endpoint_url"] = self.endpoint_url
            return options
        return {}

    def public(self, url: str) -> dict[str, Any]:
        """The options a reader needs to open `url`; safe to publish in STAC."""
        protocol = protocol_of(url)
        if protocol in ("s3", "s3a"):
            options: dict[str, Any] = {"anon": self.anon if self.public_anon is None else self.public_anon}
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            if self.region:
                options["client_kwargs"] = {"region_name": self.region}
            return options
        if protocol in ("gs", "gcs"):
            anon = self.anon if self.public_anon is None else self.public_anon
            options = {"token": "anon"} if anon else {}
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            return options
        return {}

    def filesystem(self, url: str) -> fsspec.AbstractFileSystem:
        protocol = protocol_of(url)
        return fsspec.filesystem(protocol, **self.for_fsspec(url))


def protocol_of(url: str) -> str:
    protocol, _ = split_protocol(url)
    return protocol or "file"


def is_remote(url: str) -> bool:
    return protocol_of(url) in REMOTE_PROTOCOLS


def strip_url(url: str) -> str:
    """`s3://bucket/a/b/` -> `s3://bucket/a/b`: one spelling per location."""
    return url.rstrip("/") if url.rstrip("/") else url


def relative_key(root: str, url: str) -> str:
    """The part of `url` below `root` (all of its path when `root` is empty)."""
    if not root:
        return split_protocol(strip_url(url))[1].lstrip("/")
    root_path = split_protocol(strip_url(root))[1]
    path = split_protocol(strip_url(url))[1]
    if path == root_path:
        return ""
    prefix = root_path.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{url} is not below {root}")
    return path[len(prefix):]


def basename(url: str) -> str:
    return posixpath.basename(split_protocol(strip_url(url))[1])
