"""HEALPix stores (easy.gems, nextGEMS, CF 1.13): bbox from the cells present, grid parameters in properties.

The grid mapping attributes are kept as found (tests/data/healpix/, see SOURCES.md); the
time axis, the cell ids and the data variable are synthesised. Expected bboxes follow
from HEALPix geometry (Gorski et al. 2005), not from a HEALPix library: an equatorial
base cell spans 45° either side of its centre meridian and up to asin(2/3) in latitude;
the first k rings of the north polar cap reach down to z = 1 - (k+1)²/(3 nside²).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from static_catalog.validate import validate_object
from zarr_stac.loaders.failures import StoreFailure
from zarr_stac.loaders.running.crawl import crawl, inspect_store

DATA = Path(__file__).resolve().parent.parent / "data" / "healpix"
TIMES = pd.date_range("2020-01-20", periods=4, freq="6h")


def found(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def _dataset(
    crs: dict,
    cells: np.ndarray | None,
    npix: int,
    *,
    cell_attrs: dict | None = None,
    lonlat: tuple[np.ndarray, np.ndarray] | None = None,
) -> xr.Dataset:
    size = npix if cells is None else cells.size
    ds = xr.Dataset(
        {
            "tas": (
                ("time", "cell"),
                np.zeros((TIMES.size, size), "f4"),
                {"standard_name": "air_temperature", "units": "K", "grid_mapping": "crs"},
            )
        },
        coords={"time": ("time", TIMES, {"standard_name": "time", "axis": "T"})},
    )
    ds = ds.assign_coords(crs=(tuple(crs["dims"]), np.asarray(crs["data"]), crs["attrs"]))
    if cells is not None:
        ds = ds.assign_coords(cell=("cell", cells, cell_attrs or {}))
    if lonlat is not None:
        ds = ds.assign_coords(
            lat=("cell", lonlat[1], {"units": "degree_north", "standard_name": "latitude", "axis": "Y"}),
            lon=("cell", lonlat[0], {"units": "degree_east", "standard_name": "longitude", "axis": "X"}),
        )
    return ds


def easygems_global() -> xr.Dataset:
    """As found: nside 1, nest, a 1-element crs dimension; no cell coordinate (all 12 cells)."""
    return _dataset(found("easygems-crs.json")["crs"], None, 12)


def easygems_global_with_centres() -> xr.Dataset:
    """nside 1 with lat/lon centres over `cell` (as attach_coords adds them) but no cell coordinate."""
    lon = np.array([45.0, 135.0, 225.0, 315.0, 0.0, 90.0, 180.0, 270.0, 45.0, 135.0, 225.0, 315.0])
    lat = np.repeat([41.8, 0.0, -41.8], 4)
    return _dataset(found("easygems-crs.json")["crs"], None, 12, lonlat=(lon, lat))


def easygems_face4() -> xr.Dataset:
    """easy.gems attach_coords layout (cell, lat, lon coordinates), nside 8: the 64 cells of
    equatorial base cell 4 (nested ids 256..319), centred on 0°E."""
    crs = found("easygems-crs.json")["crs"]
    crs = {**crs, "attrs": {**crs["attrs"], "healpix_nside": 8}}
    cells = np.arange(4 * 64, 5 * 64)
    # Approximate centres, as a store would carry them: the mapping must not rely on them.
    lon = np.linspace(-40, 40, cells.size) % 360
    lat = np.linspace(-35, 35, cells.size)
    return _dataset(crs, cells, 768, lonlat=(lon, lat))


def cf113_polar_cap() -> xr.Dataset:
    """CF 1.13 spelling (refinement_level, indexing_scheme ring), explicit healpix_index: rings 1..3."""
    meta = found("cf113-crs.json")
    cells = np.arange(2 * 3 * 4)  # 4 + 8 + 12 cells
    return _dataset(meta["crs"], cells, 768, cell_attrs=meta["cell"]["attrs"])


EQUATORIAL_EDGE = math.degrees(math.asin(2 / 3))
CAP_EDGE = math.degrees(math.asin(1 - 4**2 / (3 * 8**2)))


@pytest.fixture(scope="module")
def healpix_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("healpix")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        easygems_global().to_zarr(root / "ngc" / "zoom0.zarr", zarr_format=2, consolidated=True)
        easygems_face4().to_zarr(root / "ngc" / "zoom3.zarr", zarr_format=2, consolidated=True)
        easygems_global_with_centres().to_zarr(root / "ngc" / "centres.zarr", zarr_format=2, consolidated=True)
        cf113_polar_cap().to_zarr(root / "cf" / "cap.zarr", zarr_format=3, consolidated=True)
        broken = easygems_global().isel(cell=slice(0, 10))  # 10 of 12 cells, no cell coordinate
        broken.to_zarr(root / "bad" / "partial.zarr", zarr_format=2, consolidated=True)
    return root


@pytest.fixture(scope="module")
def items(healpix_folder):
    result = crawl(str(healpix_folder))
    return {item.id: item for item in result.items}, result.failures


def test_global_store_without_cell_coordinate(items):
    by_id, _ = items
    item = by_id["zoom0"]
    assert item.bbox == [-180.0, -90.0, 180.0, 90.0]
    props = item.properties
    assert {k: props[k] for k in props if k.startswith(("dggs:", "healpix:"))} == {
        "dggs:name": "healpix",
        "dggs:refinement_level": 0,
        "dggs:indexing_scheme": "nested",
        "dggs:spatial_dimension": "cell",
        "healpix:nside": 1,
    }
    cell = props["cube:dimensions"]["cell"]
    assert (cell["type"], cell["extent"], cell["step"]) == ("healpix", [0, 11], 1)
    assert props["start_datetime"] == "2020-01-20T00:00:00Z"


def test_cell_centres_are_not_cell_ids(items):
    by_id, _ = items
    item = by_id["centres"]
    assert item.bbox == [-180.0, -90.0, 180.0, 90.0]
    assert item.properties["cube:dimensions"]["cell"]["extent"] == [0, 11]


def test_regional_store_covers_its_cells_not_their_centres(items):
    by_id, _ = items
    item = by_id["zoom3"]
    assert item.bbox == pytest.approx([-45.0, -EQUATORIAL_EDGE, 45.0, EQUATORIAL_EDGE], abs=1e-6)
    assert item.properties["healpix:nside"] == 8 and item.properties["dggs:refinement_level"] == 3
    assert item.properties["cube:dimensions"]["cell"]["extent"] == [256, 319]


def test_cf_spelling_ring_order_polar_cap(items):
    by_id, _ = items
    item = by_id["cap"]
    assert item.bbox == pytest.approx([-180.0, CAP_EDGE, 180.0, 90.0], abs=1e-6)
    assert item.properties["dggs:indexing_scheme"] == "ring"
    assert item.properties["healpix:nside"] == 8


def test_unknown_cells_are_a_reported_failure(items):
    _, failures = items
    assert [(Path(f.url).name, f.kind) for f in failures] == [("partial.zarr", "no-coordinates")]
    assert "10 cells and no cell coordinate, but nside 1 has 12" in failures[0].reason


def test_inspect_one_store(healpix_folder):
    outcome = inspect_store(str(healpix_folder / "ngc" / "zoom3.zarr"))
    assert not isinstance(outcome, StoreFailure), outcome
    assert outcome.item.properties["dggs:spatial_dimension"] == "cell"


def test_items_are_valid_stac(items, validator):
    by_id, _ = items
    for item in by_id.values():
        data = json.loads(json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False)))
        data.pop("collection")  # published with its collection link; alone, without
        assert validate_object(data, validator) is None, item.id
