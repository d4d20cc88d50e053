"""gcsfs: gs:// read through the JSON API. Applied on import (by zarr_stac.common.storage)."""

from __future__ import annotations

import os

import fsspec

CHECKED_WITH = "2026.10.1"


def json_api_only() -> None:
    """gcsfs 2026.10 makes gs:// its ExtendedGcsFileSystem unless GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT
    is false: before its first read of a bucket it asks Google's gRPC Storage Control API for the
    bucket's layout, and against an emulator or a private endpoint (no gRPC there) each of those
    calls waits 60 s and is tried again. The JSON-API filesystem reads standard and hierarchical
    buckets alike; whoever sets the variable themselves keeps gcsfs's choice."""
    if "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT" in os.environ:
        return
    for protocol in ("gs", "gcs"):  # by name: gcsfs is imported only when gs:// is used
        fsspec.register_implementation(protocol, "gcsfs.core.GCSFileSystem", clobber=True, errtxt="pip install gcsfs")


json_api_only()
