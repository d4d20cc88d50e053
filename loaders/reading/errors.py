"""Why a store could not be read, in one line and one failure kind (see `failures`)."""

from __future__ import annotations

import asyncio
import errno
import json

from zarr_stac.common.storage import CREDENTIALS_HINT, is_missing_credentials, redacted

from ..failures import (
    ACCESS_DENIED,
    CORRUPT_METADATA,
    NOT_FOUND,
    READ_ERROR,
    TIMEOUT,
    TOO_LARGE,
    UNAVAILABLE,
    UNDECODABLE_TIME,
    UNKNOWN_CODEC,
)
from ..limits import TooLarge
from .codecs import CodecUnavailable
from .metadata import CorruptMetadata


class StoreReadError(RuntimeError):
    """A store whose metadata could not be read; `reason` is one line for reports."""

    def __init__(self, url: str, kind: str, reason: str):
        super().__init__(f"{url}: {kind}: {reason}")
        self.url = url
        self.kind = kind
        self.reason = reason


def one_line(exc: BaseException) -> str:
    """An exception as one line for reports, the credentials of any URL it quotes hidden."""
    if isinstance(exc, TooLarge | CorruptMetadata):
        return redacted(str(exc))  # its own words are the whole reason
    if is_missing_credentials(exc):
        return f"no credentials to read it: {CREDENTIALS_HINT}"
    text = str(exc).strip().splitlines()
    return redacted(f"{type(exc).__name__}: {text[0]}") if text else type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "TimeoutError",
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "ServerTimeoutError",
            "ConnectTimeout",
            "ReadTimeout",
        }
    )


def _is_unavailable(exc: BaseException) -> bool:
    """Throttling, a 5xx or a dropped connection that outlasted the retries."""
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:  # s3fs's translation of 503 SlowDown
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {
        "ConnectionError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "EndpointConnectionError",
        "ConnectionClosedError",
    }:
        return True
    status = (
        getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if names & {"ClientError"}
        else None
    )
    return isinstance(status, int) and status >= 500


def classify(exc: BaseException | None) -> str:
    """The failure kind of an exception raised while opening a store."""
    from numcodecs.errors import UnknownCodecError

    seen = set()
    while exc is not None and id(exc) not in seen:  # look through chained causes
        seen.add(id(exc))
        if isinstance(exc, TooLarge):
            return TOO_LARGE
        if isinstance(exc, CorruptMetadata):
            return CORRUPT_METADATA
        message = str(exc).lower()
        unknown = "codec not available" in message or "unknown codec" in message
        if isinstance(exc, UnknownCodecError | CodecUnavailable) or unknown:
            return UNKNOWN_CODEC
        if "unable to decode time" in message or "decode_times" in message:
            return UNDECODABLE_TIME
        if (
            isinstance(exc, json.JSONDecodeError | UnicodeDecodeError)
            or type(exc).__name__ == "MetadataValidationError"
        ):
            return CORRUPT_METADATA
        if isinstance(exc, PermissionError) or is_missing_credentials(exc):
            return ACCESS_DENIED
        if _is_timeout(exc) or isinstance(exc, asyncio.TimeoutError):
            return TIMEOUT
        if _is_unavailable(exc):
            return UNAVAILABLE
        if isinstance(exc, FileNotFoundError) or type(exc).__name__ in ("GroupNotFoundError", "NodeNotFoundError"):
            return NOT_FOUND
        exc = exc.__cause__ or exc.__context__
    return READ_ERROR
