"""Find the Zarr stores under a prefix of an object store or a local folder.

Discovery lists "directories" level by level and stops at the first level that
holds Zarr group metadata, so it never lists (let alone reads) the chunks inside
a store. A folder named `*.zarr` is taken to be a store without listing it (one
request fewer per store); reading its metadata tells its Zarr format.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .storage import StorageOptions, protocol_of, strip_url

ZARR_V2_MARKERS = (".zgroup", ".zmetadata")
ZARR_V3_MARKER = "zarr.json"


ZARR = "zarr"
KERCHUNK = "kerchunk"  # a JSON reference file: a virtual Zarr store over other files


@dataclass(frozen=True)
class StoreRef:
    """A store to catalogue, and what is known about it before opening it."""

    url: str
    zarr_format: int | None = None  # None: detected when opened
    consolidated: bool | None = None  # None: detected when opened
    kind: str = ZARR
    # From explicit inputs: a preferred item id and properties (e.g. CSV columns).
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


class DiscoveryError(RuntimeError):
    """A prefix could not be listed; its stores are unknown (not absent)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def store_from_listing(url: str, names: set[str]) -> StoreRef | None:
    """The store at `url`, if the names listed there mark one."""
    if ZARR_V3_MARKER in names:
        # zarr-python keeps v3 consolidated metadata inside zarr.json itself; whether
        # it is there is only known once zarr.json is read (see `read`).
        return StoreRef(url=url, zarr_format=3, consolidated=None)
    if any(marker in names for marker in ZARR_V2_MARKERS):
        return StoreRef(url=url, zarr_format=2, consolidated=".zmetadata" in names)
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
    fs = storage.filesystem(root)
    protocol = protocol_of(root)

    if protocol in ("http", "https"):
        # HTTP servers cannot list: the URL itself must be a store...
        names = {m for m in (*ZARR_V2_MARKERS, ZARR_V3_MARKER) if fs.exists(f"{root}/{m}")}
        ref = store_from_listing(root, names)
        if ref is not None:
            yield ref
            return
        # Except xpublish servers, which list their datasets at /datasets.
        from .xpublish import server_stores

        served = server_stores(root, storage, workers=workers)
        if served is None:
            reason = "no Zarr metadata (.zgroup, .zmetadata, zarr.json) at this URL, nor an xpublish /datasets list"
            raise DiscoveryError(root, reason)
        yield from served
        return

    def to_url(path: str) -> str:
        return strip_url(fs.unstrip_protocol(path)) if protocol != "file" else path

    def list_dir(path: str) -> tuple[set[str], list[str]]:
        try:
            entries = fs.ls(path, detail=True, refresh=True) if protocol != "file" else fs.ls(path, detail=True)
        except FileNotFoundError:
            raise DiscoveryError(to_url(path), "no such prefix or folder") from None
        except PermissionError as exc:
            raise DiscoveryError(to_url(path), f"access denied ({exc})") from None
        except OSError as exc:
            raise DiscoveryError(to_url(path), f"listing failed ({exc})") from None
        names, subdirs = set(), []
        for entry in entries:
            name = posixpath.basename(entry["name"].rstrip("/"))
            names.add(name)
            if entry["type"] == "directory" and entry["name"].rstrip("/") != path.rstrip("/"):
                subdirs.append(entry["name"].rstrip("/"))
        return names, sorted(subdirs)

    root_path = fs._strip_protocol(root)
    level = [root_path]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _depth in range(max_depth + 1):
            if not level:
                return
            next_level: list[str] = []
            for path, (names, subdirs) in zip(level, pool.map(list_dir, level)):
                ref = store_from_listing(to_url(path), names)
                if ref is not None:
                    yield ref
                    continue
                for subdir in subdirs:
                    if subdir.endswith(".zarr"):
                        # A folder named *.zarr is a store: reading its metadata will
                        # tell which kind, which saves one listing per store.
                        yield StoreRef(url=to_url(subdir))
                    else:
                        next_level.append(subdir)
            level = next_level
