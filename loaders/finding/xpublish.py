"""xpublish servers as a source: each dataset a server lists is a Zarr store over HTTP.

An xpublish server (eerie.cloud, a data centre's own) answers `GET /datasets` with the
JSON list of its dataset ids and serves each dataset as a Zarr store below
`/datasets/{id}/zarr`: Zarr v2 consolidated metadata (`.zmetadata`) from the zarr plugin
built into xpublish <= 0.4, Zarr v3 (`zarr.json`, metadata consolidated inside it) from
the `xpublish-zarr` plugin that replaces it in xpublish 0.5. Whichever a dataset has is
catalogued; the asset is that HTTP URL, which xarray opens as any Zarr store.

A source is taken to be an xpublish server when it is not a Zarr store itself but
answers `/datasets` with a list (see `discover`), or when its configuration says
`server: xpublish`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from zarr_stac.common.storage import StorageOptions, strip_url

from ..vocabulary import DiscoveryError, ExpandedInput, StoreRef

XPUBLISH = "xpublish"
# (file that marks the Zarr endpoint, its Zarr format); v3 first: the newer plugin.
ZARR_ENDPOINTS = (("zarr.json", 3), (".zmetadata", 2))


def dataset_ids(server: str, storage: StorageOptions) -> list[str] | None:
    """The ids `server` lists at /datasets, or None when it does not answer with a list."""
    fs = storage.filesystem(server)
    try:
        listed = json.loads(fs.cat_file(f"{server}/datasets"))
    except (OSError, ValueError):  # not found, refused, not JSON: not an xpublish server
        return None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        return None
    return listed


def zarr_endpoint(server: str, dataset_id: str, storage: StorageOptions) -> StoreRef | None:
    """The Zarr store of one dataset, in the generation the server speaks (None: neither)."""
    fs = storage.filesystem(server)
    url = f"{server}/datasets/{dataset_id}/zarr"
    for marker, zarr_format in ZARR_ENDPOINTS:
        if fs.exists(f"{url}/{marker}"):
            # Both plugins always consolidate: the whole dataset's metadata in one GET.
            return StoreRef(url=url, zarr_format=zarr_format, consolidated=True, name=dataset_id)
    return None


def server_stores(server: str, storage: StorageOptions | None = None, *, workers: int = 16) -> list[StoreRef] | None:
    """Every dataset of the xpublish server at `server` as a store, or None if it is not one.

    Raises DiscoveryError when the server lists a dataset without a Zarr endpoint: the
    zarr plugin is missing or the dataset fails to encode, and a silent gap in the
    catalogue would look like a deleted dataset.
    """
    storage = storage or StorageOptions()
    server = strip_url(server)
    ids = dataset_ids(server, storage)
    if ids is None:
        return None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        refs = list(pool.map(lambda dataset_id: zarr_endpoint(server, dataset_id, storage), ids))
    missing = [dataset_id for dataset_id, ref in zip(ids, refs, strict=True) if ref is None]
    if missing:
        markers = " or ".join(marker for marker, _ in ZARR_ENDPOINTS)
        raise DiscoveryError(
            f"{server}/datasets/{missing[0]}/zarr",
            f"xpublish dataset without a Zarr endpoint ({markers}; is the zarr plugin installed?)"
            + (f", and {len(missing) - 1} more" if len(missing) > 1 else ""),
        )
    return [ref for ref in refs if ref is not None]


def expand_server(server: str, storage: StorageOptions | None = None, *, workers: int = 16) -> ExpandedInput:
    """The stores of a source configured as `server: xpublish`: not being one is an error."""
    server = strip_url(server)
    refs = server_stores(server, storage, workers=workers)
    if refs is None:
        raise DiscoveryError(f"{server}/datasets", "not an xpublish server (no JSON list of dataset ids here)")
    return ExpandedInput(root=server, refs=refs)
