"""Open a Zarr store's metadata and coordinates, never its data variables.

`xr.open_zarr(..., chunks=None)` reads group/array metadata and loads only the
1-D dimension coordinates (to build indexes); every other variable stays a lazy
backend array that nothing here touches except the coordinates used for extents.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import xarray as xr
from xarray.backends.zarr import ZarrStore

from .discover import StoreRef
from .storage import StorageOptions, is_remote


class StoreReadError(RuntimeError):
    """A store whose metadata could not be read; `reason` is one line for reports."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass
class OpenedStore:
    """A store's dataset (lazy) plus what readers need to know to open it."""

    ref: StoreRef
    dataset: xr.Dataset
    consolidated: bool


def open_store(ref: StoreRef, storage: StorageOptions | None = None) -> OpenedStore:
    storage = storage or StorageOptions()
    storage_options = storage.for_fsspec(ref.url) if is_remote(ref.url) else None
    try:
        with warnings.catch_warnings():
            # Non-standard calendars fall back to cftime by design, and v3 stores are
            # probed for consolidated metadata: neither is worth a warning.
            warnings.simplefilter("ignore", category=xr.SerializationWarning)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            zarr_store = ZarrStore.open_group(
                ref.url,
                mode="r",
                consolidated=ref.consolidated if ref.zarr_format == 2 else None,
                zarr_format=ref.zarr_format,
                storage_options=storage_options,
            )
            dataset = xr.open_dataset(
                ref.url,
                engine="zarr",
                store=zarr_store,
                chunks=None,
                decode_times=xr.coders.CFDatetimeCoder(use_cftime=None),
            )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line report
        raise StoreReadError(ref.url, one_line(exc)) from exc
    metadata = zarr_store.zarr_group.metadata
    consolidated = getattr(metadata, "consolidated_metadata", None) is not None
    return OpenedStore(ref=ref, dataset=dataset, consolidated=consolidated or ref.consolidated)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
