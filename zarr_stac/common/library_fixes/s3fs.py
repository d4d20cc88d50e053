"""s3fs: one retry layer. Applied on import (by zarr_stac.common.storage)."""

from __future__ import annotations

CHECKED_WITH = "2026.9.0"


def one_retry_layer() -> None:
    """s3fs retries whole calls (5 tries) on top of botocore's retries: 5x the
    attempts, minutes spent on a store that keeps failing, and `retries` meaning
    nothing. botocore's standard mode is the retry layer (`StorageOptions.retries`); s3fs
    keeps one more try for what botocore cannot retry, a body cut off mid-read.
    A class attribute, not a constructor option, in s3fs 2026.9."""
    try:
        import s3fs
    except ImportError:
        return
    s3fs.S3FileSystem.retries = 2


one_retry_layer()
