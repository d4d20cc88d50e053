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
from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
    # What one store or input may cost, in MiB (see `loaders.limits`), refused beyond: a
    # metadata document of a store; an input file or kerchunk JSON reference read whole;
    # one coordinate decoded (an ICON R2B10 grid's cell vertices, 20 M x 3 float64, are 480).
    max_metadata_mb: float = Field(64, gt=0)
    max_input_mb: float = Field(256, gt=0)
    max_coordinate_mb: float = Field(512, gt=0)

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
        try:
            return fsspec.filesystem(protocol, **self.for_fsspec(url))
        except ValueError as exc:
            if "Protocol not known" in str(exc):
                raise UnknownProtocol(
                    f"{protocol}:// is not a storage protocol fsspec knows (s3://, gs://, https://, a folder, ...)"
                ) from None
            raise


# The environment variables that set the limits above for the command line.
LIMIT_VARIABLES = {
    "max_metadata_mb": "ZARR_STAC_MAX_METADATA_MB",
    "max_input_mb": "ZARR_STAC_MAX_INPUT_MB",
    "max_coordinate_mb": "ZARR_STAC_MAX_COORDINATE_MB",
}


def limits_from_environment() -> dict[str, float]:
    """The limits the environment sets ({field: MiB}); ValueError naming a variable that is
    not a positive number."""
    limits = {}
    for field, variable in LIMIT_VARIABLES.items():
        text = os.environ.get(variable, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            raise ValueError(f"{variable}={text[:20]!r} is not a positive number of MiB")
        limits[field] = value
    return limits


class UnknownProtocol(ValueError):
    """A URL whose scheme no installed fsspec filesystem handles."""


# What to do when an object store wants credentials that were not given.
CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / --profile), "
    "or pass --anon if the bucket is public"
)


def is_missing_credentials(exc: BaseException) -> bool:
    """botocore's NoCredentialsError (and its kin), anywhere in the chain of causes."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def bucket_of(url: str) -> str | None:
    """The bucket of an s3:// or gs:// URL (None for other protocols)."""
    protocol, path = split_protocol(strip_url(url))
    if protocol not in ("s3", "s3a", "gs", "gcs"):
        return None
    return path.lstrip("/").split("/", 1)[0] or None


def bucket_is_missing(url: str, storage: StorageOptions) -> bool:
    """True when the bucket of `url` does not exist (or may not be seen by these
    credentials); False when it exists or nothing can be said (one request)."""
    bucket = bucket_of(url)
    if bucket is None:
        return False
    try:
        return not storage.filesystem(url).exists(bucket)
    except Exception:  # noqa: BLE001 - a probe that fails says nothing
        return False


def protocol_of(url: str) -> str:
    protocol, _ = split_protocol(url)
    return protocol or "file"


def is_remote(url: str) -> bool:
    return protocol_of(url) in REMOTE_PROTOCOLS


def strip_url(url: str) -> str:
    """One spelling per location: `s3://bucket/a/b/` -> `s3://bucket/a/b`, and a local
    path made absolute (`src`, `./src/` -> `/cwd/src`): listings name local files by
    absolute path, so a relative root would match none of them."""
    if url and "://" not in url and "::" not in url:
        return os.path.abspath(os.path.expanduser(url))
    stripped = url.rstrip("/")
    return stripped if stripped and not url.endswith(":///") and not stripped.endswith(":") else url


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
    return path[len(prefix) :]


def basename(url: str) -> str:
    return posixpath.basename(split_protocol(strip_url(url))[1])
