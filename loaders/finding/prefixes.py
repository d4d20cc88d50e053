"""Find the Zarr stores under a prefix of an object store or a local folder.

Discovery lists "directories" level by level and stops at the first level that
holds Zarr group metadata, so it never lists (let alone reads) the chunks inside
a store. A folder named `*.zarr` is taken to be a store without listing it (one
request fewer per store); reading its metadata tells its Zarr format.

Kerchunk references are stores too (see `references`): a folder named `*.parq`,
or one whose `.zmetadata` has a `record_size` key and no `.zgroup` beside it, is a
parquet reference set; a `*.json` file at a level without Zarr markers is a JSON
reference when its first bytes say so (other JSON files are not stores and are
passed over).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from zarr_stac.common.storage import (
    CREDENTIALS_HINT,
    StorageOptions,
    is_missing_credentials,
    protocol_of,
    redacted,
    strip_url,
)

from ..limits import METADATA_SETTING, TooLarge, cat_bounded_sync, limit_bytes
from ..reading.metadata import is_parquet_zmetadata
from ..vocabulary import KERCHUNK, KERCHUNK_PARQUET, DiscoveryError, SourceUnreachable, StoreRef
from . import references
from .xpublish import server_stores

ZARR_V2_MARKERS = (".zgroup", ".zmetadata")
ZARR_V3_MARKER = "zarr.json"
ZARR_V2_ARRAY = ".zarray"


def listing_problem(exc: BaseException) -> str:
    """Why a listing failed, in words that say what to do."""
    if is_missing_credentials(exc):
        return f"no credentials to list it: {CREDENTIALS_HINT}"
    if isinstance(exc, FileNotFoundError):
        detail = str(exc).strip()
        return "no such bucket" if "bucket does not exist" in detail.lower() else "no such prefix or folder"
    if isinstance(exc, PermissionError):
        return redacted(f"access denied ({exc}): check the credentials, or --anon for a public bucket")
    text = str(exc).strip().splitlines()
    return redacted(f"listing failed ({type(exc).__name__}: {text[0] if text else ''})")


def store_from_listing(url: str, names: set[str]) -> StoreRef | None:
    """The store at `url`, if the names listed there mark one."""
    if ZARR_V3_MARKER in names:
        # zarr-python keeps v3 consolidated metadata inside zarr.json itself; whether
        # it is there is only known once zarr.json is read (see `read`).
        return StoreRef(url=url, zarr_format=3, consolidated=None)
    if any(marker in names for marker in ZARR_V2_MARKERS):
        return StoreRef(url=url, zarr_format=2, consolidated=".zmetadata" in names)
    if ZARR_V2_ARRAY in names:
        # An array with no group above it (dask's `da.to_zarr`): read, to be reported.
        return StoreRef(url=url, zarr_format=2, consolidated=False)
    return None


def discover_stores(
    root: str,
    storage: StorageOptions | None = None,
    *,
    max_depth: int = 32,
    workers: int = 16,
) -> Iterator[StoreRef]:
    """Yield every Zarr store at or below `root`, in sorted order per level.

    Raises `DiscoveryError` when a prefix cannot be listed: a partial listing must
    never pass for a complete one.
    """
    storage = storage or StorageOptions()
    root = strip_url(root)
    try:
        fs = storage.filesystem(root)
    except ValueError as exc:  # an unknown protocol, a malformed endpoint URL
        raise SourceUnreachable(root, str(exc)) from None
    protocol = protocol_of(root)

    if protocol in ("http", "https"):
        # HTTP servers cannot list: the URL itself must be a store...
        if references.reference_kind(root) == KERCHUNK_PARQUET:
            yield StoreRef(url=root, kind=KERCHUNK_PARQUET)
            return
        try:
            names = {m for m in (*ZARR_V2_MARKERS, ZARR_V3_MARKER) if fs.exists(f"{root}/{m}")}
        except Exception as exc:  # noqa: BLE001 - unreachable host, TLS, ...: one line
            raise SourceUnreachable(root, listing_problem(exc)) from None
        ref = store_from_listing(root, names)
        if ref is not None:
            yield ref
            return
        # ...except xpublish servers, which list their datasets at /datasets.
        served = server_stores(root, storage, workers=workers)
        if served is None:
            reason = "no Zarr metadata (.zgroup, .zmetadata, zarr.json) at this URL, nor an xpublish /datasets list"
            raise SourceUnreachable(root, reason)
        yield from served
        return

    def to_url(path: str) -> str:
        return strip_url(fs.unstrip_protocol(path)) if protocol != "file" else path

    def list_dir(path: str) -> tuple[set[str], list[str], list[str]]:
        error = SourceUnreachable if path == root_path else DiscoveryError
        try:
            entries = fs.ls(path, detail=True, refresh=True) if protocol != "file" else fs.ls(path, detail=True)
        except Exception as exc:  # noqa: BLE001 - botocore's errors are no OSErrors
            raise error(to_url(path), listing_problem(exc)) from None
        names, subdirs, files = set(), [], []
        for entry in entries:
            name = posixpath.basename(entry["name"].rstrip("/"))
            names.add(name)
            if entry["type"] == "directory" and entry["name"].rstrip("/") != path.rstrip("/"):
                subdirs.append(entry["name"].rstrip("/"))
            elif entry["type"] == "file":
                files.append(entry["name"])
        return names, sorted(subdirs), sorted(files)

    def is_parquet_folder(path: str) -> bool:
        """A `.zmetadata` without `.zgroup`: kerchunk's parquet layout if it has `record_size`."""
        limit = limit_bytes(storage.max_metadata_mb)
        try:
            raw = cat_bounded_sync(fs, f"{path.rstrip('/')}/.zmetadata", limit, ".zmetadata", METADATA_SETTING)
            return is_parquet_zmetadata(raw)
        except (OSError, TooLarge):
            return False  # opened as Zarr, where the reason is reported

    def is_json_reference(path: str) -> bool:
        try:
            return references.looks_like_json_reference(fs.cat_file(path, start=0, end=references.HEAD_BYTES))
        except OSError:
            # Unreadable: a candidate all the same, whose reading then fails with its own
            # kind (access-denied, ...) instead of being passed over unseen.
            return True

    root_path = fs._strip_protocol(root)
    level = [root_path]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _depth in range(max_depth + 1):
            if not level:
                return
            next_level: list[str] = []
            for path, (names, subdirs, files) in zip(level, pool.map(list_dir, level), strict=True):
                ref = store_from_listing(to_url(path), names)
                if ref is not None and ref.zarr_format == 2 and ".zgroup" not in names and is_parquet_folder(path):
                    ref = StoreRef(url=to_url(path), kind=KERCHUNK_PARQUET)
                if ref is not None:
                    yield ref
                    continue
                candidates = [f for f in files if references.reference_kind(f) == KERCHUNK]
                for file, is_reference in zip(candidates, pool.map(is_json_reference, candidates), strict=True):
                    if is_reference:
                        yield StoreRef(url=to_url(file), kind=KERCHUNK)
                for subdir in subdirs:
                    if subdir.endswith(".zarr"):
                        # A folder named *.zarr is a store: reading its metadata will
                        # tell which kind, which saves one listing per store.
                        yield StoreRef(url=to_url(subdir))
                    elif references.reference_kind(subdir) == KERCHUNK_PARQUET:
                        yield StoreRef(url=to_url(subdir), kind=KERCHUNK_PARQUET)
                    else:
                        next_level.append(subdir)
            level = next_level
