"""Where the Zarr stores live and how to reach them.

`StorageOptions` is the one place that knows which connection settings are secret
(keys, secrets, GCS tokens, credentials written in a URL: used to crawl, never
published) and which are public (endpoint, region, anonymous access: copied into
each asset's `xarray:storage_options` so that users can open the data).

A URL may hold credentials too: userinfo (`https://USER:PASSWORD@host/...`,
`s3://KEY:SECRET@bucket/...`) and credential-bearing query parameters (`?token=`,
signed URLs, SAS tokens). `StorageOptions.for_url` moves them into the options that
read the URL and gives the URL that may be published (`public_url`); `redacted`
hides them in anything printed.
"""

from __future__ import annotations

import base64
import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import fsspec
from fsspec.core import split_protocol
from pydantic import BaseModel, ConfigDict, Field, SecretStr

# Imported for their effect, before any filesystem is made: one retry layer (s3fs), the
# JSON-API filesystem for gs:// (gcsfs).
from .library_fixes import gcsfs as _gcsfs_fixes  # noqa: F401
from .library_fixes import s3fs as _s3fs_fixes  # noqa: F401

REMOTE_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "http", "https", "az", "abfs"}


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
    # S3: the session token of temporary keys (s3fs's `token`).
    session_token: SecretStr | None = None
    # HTTP(S): basic-auth credentials and a query string sent with every request, only to
    # `http_origin` (scheme://host[:port]; a source's own URL when unset). `for_url` takes
    # them from a URL's `USER:PASSWORD@` and `?...`.
    http_username: SecretStr | None = None
    http_password: SecretStr | None = None
    http_query: SecretStr | None = None
    http_origin: str | None = None
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
            if self.session_token is not None:
                options["token"] = self.session_token.get_secret_value()
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
        if protocol in ("http", "https") and self._http_credentials_for(url):
            options = {}
            if self.http_username is not None or self.http_password is not None:
                # A header of the session: aiohttp drops it on a redirect to another origin.
                login, password = (v.get_secret_value() if v else "" for v in (self.http_username, self.http_password))
                basic = base64.b64encode(f"{login}:{password}".encode()).decode()
                options["client_kwargs"] = {"headers": {"Authorization": f"Basic {basic}"}}
            if self.http_query is not None:
                # Request parameters, not a URL suffix: zarr appends its keys to the store's URL.
                options["params"] = parse_qsl(self.http_query.get_secret_value(), keep_blank_values=True)
            return options
        return {}

    def _http_credentials_for(self, url: str) -> bool:
        """Whether the HTTP credentials held here may be sent with requests for `url`."""
        return self.http_origin is not None and origin_of(url) == self.http_origin

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
        if protocol in ("http", "https") and self.http_query is not None and self._http_credentials_for(url):
            query = self.http_query.get_secret_value()
            if not holds_credentials(query):  # a query that is no secret: readers need it too
                return {"params": dict(parse_qsl(query, keep_blank_values=True))}
        return {}

    def for_url(self, url: str) -> tuple[str, StorageOptions]:
        """(`url` as it may be published, these options completed to read it).

        The credentials `url` holds move into the options: its userinfo as an s3:// URL's
        KEY:SECRET or HTTP basic auth, an HTTP query (all of it: zarr appends its keys to a
        store's URL) as parameters of every request. HTTP credentials go to their own origin
        only: those held here for another one (the input file that lists this URL) are
        dropped. Raises ValueError (saying why, without the URL) for credentials that no
        filesystem of this protocol takes.
        """
        if "@" not in url and "?" not in url and self.http_origin is None:
            return url, self  # nothing to move, nothing to drop: most URLs, one test
        parts = _url_parts(url)
        if parts is None:
            return url, self
        public = public_url(url)
        protocol = protocol_of(url)
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
        update: dict[str, Any] = {}
        if protocol in ("http", "https"):
            origin = origin_of(public)
            if self.http_origin is not None and self.http_origin != origin:
                update.update(http_username=None, http_password=None, http_query=None, http_origin=None)
            if userinfo is not None:
                login, _, password = userinfo.partition(":")
                update.update(http_username=SecretStr(unquote(login)), http_password=SecretStr(unquote(password)))
            if parts.query:
                update["http_query"] = SecretStr(parts.query)
            if userinfo is not None or parts.query:
                update["http_origin"] = origin
        else:
            if holds_credentials(parts.query):
                raise ValueError(
                    f"a {protocol}:// URL cannot carry credentials in its query: give them as storage options"
                )
            if userinfo is not None:
                if protocol not in ("s3", "s3a"):
                    raise ValueError(f"a {protocol}:// URL cannot carry credentials: give them as storage options")
                key, colon, secret = userinfo.partition(":")
                if not (key and colon and secret):
                    raise ValueError("the credentials of an s3:// URL are KEY:SECRET@bucket")
                update.update(key=SecretStr(unquote(key)), secret=SecretStr(unquote(secret)), anon=False)
                update.update(session_token=None)
        return public, (self.model_copy(update=update) if update else self)

    def with_catalogue_options(self, options: Mapping[str, Any], url: str) -> StorageOptions:
        """These options completed with a catalogue entry's fsspec `storage_options` for `url`
        (an intake source's: s3fs's and gcsfs's words), as intake would open the entry.

        Taken: `endpoint_url` (or `client_kwargs.endpoint_url`), `client_kwargs.region_name`,
        `anon`, `key`, `secret` and `token` (S3: the session token; GCS: the credentials, or
        "anon"). An entry that names an endpoint other than these options' is read with the
        keys it gives, or anonymously: these options' credentials, a profile's and the
        environment's only ever go to the endpoint the operator named. Raises ValueError
        (saying which option, never its value) for options of the wrong type.
        """
        protocol = protocol_of(url)
        if not options or protocol not in ("s3", "s3a", "gs", "gcs"):
            return self
        client_kwargs = options.get("client_kwargs") or {}
        if not isinstance(client_kwargs, Mapping):
            raise ValueError("storage_options.client_kwargs is not a mapping")
        endpoint = _option(options, "endpoint_url", str) or _option(
            client_kwargs, "endpoint_url", str, "client_kwargs."
        )
        region = _option(client_kwargs, "region_name", str, "client_kwargs.")
        anon = _option(options, "anon", bool)
        key, secret, token = (_option(options, name, str) for name in ("key", "secret", "token"))
        own: dict[str, Any] = {}
        if protocol in ("s3", "s3a"):
            if (key is None) != (secret is None):
                raise ValueError("storage_options gives one of 'key' and 'secret' without the other")
            if key is not None:
                own = {"key": SecretStr(key), "secret": SecretStr(secret), "session_token": None}
                if token is not None:
                    own["session_token"] = SecretStr(token)
        elif token == "anon":
            anon = True
        elif token is not None:
            own = {"token": SecretStr(token)}
        named = endpoint is None or same_endpoint(endpoint, self.endpoint_url)
        update: dict[str, Any] = {}
        if not named:  # nothing of the operator's: not its keys, nor a profile's, nor the environment's
            update.update(dict.fromkeys(("key", "secret", "session_token", "token", "profile", "public_anon")))
            update["anon"] = True
        if endpoint is not None:
            update["endpoint_url"] = endpoint
        if region is not None:
            update["region"] = region
        if own:
            update.update(own, anon=bool(anon))
        elif anon is not None and named:
            update["anon"] = anon
        return self.model_copy(update=update)

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


# The fields above that are secrets: withheld wherever options travel (see loaders.running.executors).
SECRET_FIELDS = ("key", "secret", "token", "session_token", "http_username", "http_password", "http_query")


def _option(options: Mapping[str, Any], name: str, kind: type, where: str = "") -> Any:
    value = options.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"storage_options.{where}{name} is not a {'boolean' if kind is bool else 'string'}")
    return value


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Whether two endpoint URLs name the same server (scheme, host and port; case and a
    trailing slash aside)."""
    if a is None or b is None:
        return a is b
    return origin_of(a) == origin_of(b) and urlsplit(a).path.rstrip("/") == urlsplit(b).path.rstrip("/")


def origin_of(url: str) -> str:
    """scheme://host[:port] of an HTTP(S) URL, lower-cased and without userinfo."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


# Query parameters that carry credentials (their name, case aside): tokens, keys, passwords
# and signatures, hence those of AWS and GCS signed URLs (X-Amz-Signature, X-Amz-Credential,
# X-Amz-Security-Token, X-Goog-Signature, ...) and Azure SAS tokens (sig), and the key ids
# of the older signatures (AWSAccessKeyId, GoogleAccessId).
_CREDENTIAL_PARAMETER = re.compile(
    r"(token|sig|signature|secret|password|passwd|pwd|apikey|credential|credentials|auth|authorization)$"
    r"|(^|[-_.])key$|^(awsaccesskeyid|googleaccessid)$",
    re.IGNORECASE,
)


def is_credential_parameter(name: str) -> bool:
    return bool(_CREDENTIAL_PARAMETER.search(name.strip()))


def holds_credentials(query: str) -> bool:
    """Whether a URL's query holds a credential: a parameter named as one, or a bare value
    (`?s3cr3t`). A signed URL's other parameters belong to its signature: the whole query is
    then the secret."""
    if not query:
        return False
    for part in re.split(r"[&;]", query):
        name, equals, _ = part.partition("=")
        if part and (not equals or is_credential_parameter(unquote(name))):
            return True
    return False


def _url_parts(url: str):
    """urlsplit of a URL with a scheme (None for a local path, or a URL that does not parse)."""
    if "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    return parts


def public_url(url: str) -> str:
    """`url` as it may be published and printed: without userinfo, and without its query when
    that is how the store is read (HTTP: see `StorageOptions.for_url`) or holds a credential.
    The layers of an fsspec chain (`simplecache::https://...`) each."""
    if "::" in url:
        return "::".join(public_url(layer) for layer in url.split("::"))
    if "@" not in url and "?" not in url:
        return url
    parts = _url_parts(url)
    if parts is None:
        return redacted(url) if "://" in url else url
    netloc = parts.netloc.rpartition("@")[2]
    drop_query = protocol_of(url) in ("http", "https") or holds_credentials(parts.query)
    query = "" if drop_query else parts.query
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#@'\"<>]+)@")
_PARAMETER = re.compile(r"(?P<before>[?&;](?P<name>[^=&;\s'\"#<>]+)=)(?P<value>[^&;\s'\"#<>]*)")


def redacted(text: str) -> str:
    """`text` (a URL, or a message quoting URLs) for display: every URL's userinfo and the
    values of credential-bearing query parameters replaced by `***`."""
    if "://" not in text and "=" not in text:
        return text

    def userinfo(match: re.Match) -> str:
        if match["userinfo"].endswith(":***"):  # already redacted (a DSN's `user:***@`)
            return match[0]
        return f"{match['scheme']}***@"

    def parameter(match: re.Match) -> str:
        if not is_credential_parameter(unquote(match["name"])) or match["value"] == "***":
            return match[0]
        return f"{match['before']}***"

    return _PARAMETER.sub(parameter, _USERINFO.sub(userinfo, text))


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


def is_missing_credentials(exc: BaseException | None) -> bool:
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
