"""Hierarchical stores rebuilt from real metadata (tests/data/hierarchies and tests/data/eopf, see
their SOURCES.md).

Two forms of document are kept as found: a store's own consolidated `zarr.json` (every node
of the hierarchy in it), and the JSON a `pydantic-zarr` GroupSpec writes of a hierarchy
(`{"attributes", "members", "zarr_format"}`, nested), in which EOPF's tools keep their sample
products. Each becomes a store whose every node's metadata document is that of the source,
consolidated at the root as zarr does it; only coordinate chunks are synthesised, encoded by
zarr with each array's own codecs. No data-variable chunk is written.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

DATA = Path(__file__).resolve().parent.parent / "data"


def document(case: str, name: str) -> dict[str, Any]:
    return json.loads((DATA / case / name).read_text())


def nodes_of_spec(spec: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """{node path: its metadata} of a GroupSpec JSON (groups without their members)."""
    found = {}
    for name, member in spec.get("members", {}).items():
        child = f"{path}/{name}" if path else name
        if "members" in member:  # a group
            attributes = member["attributes"]
            found[child] = {"zarr_format": member["zarr_format"], "node_type": "group", "attributes": attributes}
            found.update(nodes_of_spec(member, child))
        else:
            found[child] = member
    return found


def arrays_of_spec(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: node for path, node in nodes_of_spec(spec).items() if node.get("node_type") != "group"}


def write_nodes(folder: Path, zarr_format: int, root_attributes: dict, nodes: dict[str, dict[str, Any]]) -> None:
    """Every node's metadata document, as found, and the root's consolidated metadata."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if zarr_format == 3:
        consolidated = {"kind": "inline", "must_understand": False, "metadata": nodes}
        root = {"zarr_format": 3, "node_type": "group", "attributes": root_attributes}
        (folder / "zarr.json").write_text(json.dumps({**root, "consolidated_metadata": consolidated}))
        for path, node in nodes.items():
            (folder / path).mkdir(parents=True, exist_ok=True)
            (folder / path / "zarr.json").write_text(json.dumps(node))
        return
    documents = {".zgroup": {"zarr_format": 2}, ".zattrs": root_attributes}
    for path, node in nodes.items():
        if node.get("node_type") == "group":
            documents[f"{path}/.zgroup"] = {"zarr_format": 2}
        else:
            documents[f"{path}/.zarray"] = {k: v for k, v in node.items() if k not in ("attributes", "node_type")}
        documents[f"{path}/.zattrs"] = node.get("attributes", {})
    for key, value in documents.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_text(json.dumps(value))
    consolidated = {"zarr_consolidated_format": 1, "metadata": documents}
    (folder / ".zmetadata").write_text(json.dumps(consolidated))


def write_coordinates(folder: Path, zarr_format: int, coordinates: dict[str, np.ndarray]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, values in coordinates.items():
            array = zarr.open_array(str(folder), path=path, mode="r+", zarr_format=zarr_format)
            array[...] = values


def write_consolidated_store(case: str, folder: Path, coordinates: dict[str, np.ndarray]) -> Path:
    """A store whose root `zarr.json` (consolidated, v3) is the case's document as found."""
    doc = document(case, "zarr.json")
    nodes = doc["consolidated_metadata"]["metadata"]
    write_nodes(folder, 3, doc["attributes"], nodes)
    shutil.copyfile(DATA / case / "zarr.json", folder / "zarr.json")
    write_coordinates(folder, 3, coordinates)
    return folder


def write_spec_store(case: str, name: str, folder: Path, coordinates: dict[str, np.ndarray]) -> Path:
    """A store of the hierarchy a GroupSpec JSON describes."""
    spec = document(case, name)
    write_nodes(folder, spec["zarr_format"], spec["attributes"], nodes_of_spec(spec))
    write_coordinates(folder, spec["zarr_format"], coordinates)
    return folder


def upload(folder: Path, url: str, storage) -> str:
    fs = storage.filesystem(url)
    target = url.split("://", 1)[1]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fs.pipe(f"{target}/{path.relative_to(folder).as_posix()}", path.read_bytes())
    return url


# -- the cases ---------------------------------------------------------------------------------
# dynamical.org's ECMWF IFS ENS 46-day forecast (v3, consolidated): surface fields at the root,
# `pressure_level/` a DataTree child that repeats the root's coordinates and adds its levels.
IFS_ENS = "hierarchies/dynamical-ifs-ens"
IFS_INIT = int(np.datetime64("2024-06-03T00:00", "s").astype("int64"))
IFS_LEADS = 86400.0 * np.arange(47)  # 0..46 days, daily (its forecast_resolution attribute)
IFS_LEVELS = np.array([1000, 925, 850, 700, 500, 300, 200, 100, 50, 10])
IFS_LAT = np.linspace(90.0, -90.0, 121)  # 1.5 degrees, as its spatial_resolution attribute says
IFS_LON = -180.0 + 1.5 * np.arange(240)


def ifs_ens_coordinates() -> dict[str, np.ndarray]:
    shared = {
        "init_time": np.array([IFS_INIT]),
        "lead_time": IFS_LEADS,
        "valid_time": (IFS_INIT + IFS_LEADS.astype("int64"))[None, :],
        "latitude": IFS_LAT,
        "longitude": IFS_LON,
        "ensemble_member": np.arange(101, dtype="int16"),
        "expected_forecast_length": np.array([IFS_LEADS.max()]),
        "ingested_forecast_length": np.array([IFS_LEADS.max()]),
    }
    levels = {f"pressure_level/{k}": v for k, v in shared.items()}
    return {**shared, **levels, "pressure_level/pressure_level": IFS_LEVELS}


# EOPF-Explorer's GeoZarr conversion of a Sentinel-2 L2A product (v3): 35 groups, the
# `measurements/reflectance` multiscales group (r10m .. r720m), CF `spatial_ref` grid mappings
# (UTM 32N) beside the zarr `proj:`/`spatial:` conventions, and no time coordinate anywhere.
S2_GEOZARR = "eopf"
S2_GEOZARR_SPEC = "S2A_MSIL2A_20251008T100041_N0511_R122_T32TQM_20251008T122613-geozarr.json"
# The tile's grid, from its arrays' own `proj:transform`/`proj:bbox` (EPSG:32632).
S2_WEST, S2_NORTH, S2_SIZE = 699960.0, 4700040.0, 109800.0
# The same product as EOPF writes it (Zarr v2): `stac_discovery` at the root (its acquisition
# time), `proj:epsg` on the arrays, no CF grid mapping and no time coordinate.
EOPF_S2 = "S2A_MSIL2A_20251008T100041_N0511_R122_T32TQM_20251008T122613.json"
# A Sentinel-1 RTC product of tile 31TCH (v3, multiscales `descending/r10m` .. `r720m`), over
# the tile its `descending/conditions` group's `spatial:transform` documents (EPSG:32631).
EOPF_S1_RTC = "s1-grd-rtc-31TCH.json"
S1_WEST, S1_NORTH, S1_SIZE = 500000.0, 5000000.0, 109800.0


def s2_geozarr_coordinates(
    name: str = S2_GEOZARR_SPEC, west: float = S2_WEST, north: float = S2_NORTH, size: float = S2_SIZE
) -> dict[str, np.ndarray]:
    """Pixel centres of each group's x/y over the tile (`west`, `north`, `size` in metres) of an
    EOPF product `name` (tests/data/eopf); the other coordinates small made-up values."""
    spec = document(S2_GEOZARR, name)
    coordinates: dict[str, np.ndarray] = {}
    for path, node in arrays_of_spec(spec).items():
        name = path.rpartition("/")[2]
        shape = node["shape"]
        if name in ("x", "y"):
            step = size / shape[0]
            centres = (np.arange(shape[0]) + 0.5) * step
            coordinates[path] = (west + centres if name == "x" else north - centres).astype("int64")
        elif name == "latitude":
            coordinates[path] = np.linspace(42.6, 41.3, shape[0])
        elif name == "longitude":
            coordinates[path] = np.linspace(11.3, 12.9, shape[0])
        elif name == "band" and shape:
            dtype = str(node.get("dtype", node.get("data_type")))
            named = any(kind in dtype for kind in ("U", "S", "str"))
            coordinates[path] = np.array([f"b{i:02d}" if named else i for i in range(1, shape[0] + 1)])
        elif name == "angle":
            coordinates[path] = np.array(["zenith", "azimuth"])
        elif name == "detector":
            coordinates[path] = np.arange(1, shape[0] + 1)
    return coordinates


# A HEALPix pyramid as the zarr `dggs` convention's example declares it (zoom levels 10, 8 and 4,
# nested): the root's attributes as found; each level a group with an easy.gems `crs` (as found,
# its nside set to the level's) and the cells of equatorial base cell 6, centred on 180°E.
DGGS_PYRAMID = "hierarchies/dggs-multiscales"
PYRAMID_LEVELS = (10, 8, 4)
PYRAMID_TIMES = np.array(["2020-01-20T00", "2020-01-20T06", "2020-01-20T12", "2020-01-20T18"], "datetime64[ns]")
BASE_CELL = 6


def healpix_level(zoom: int) -> xr.Dataset:
    import dask.array

    crs = json.loads((DATA / "healpix" / "easygems-crs.json").read_text())["crs"]
    cells = np.arange(BASE_CELL * 4**zoom, (BASE_CELL + 1) * 4**zoom, dtype="int64")
    tas = dask.array.zeros((PYRAMID_TIMES.size, cells.size), dtype="f4", chunks=(1, 4**zoom))
    return xr.Dataset(
        {"tas": (("time", "cell"), tas, {"standard_name": "air_temperature", "units": "K", "grid_mapping": "crs"})},
        coords={
            "time": ("time", PYRAMID_TIMES, {"standard_name": "time", "axis": "T"}),
            "cell": ("cell", cells),
            "crs": (tuple(crs["dims"]), np.asarray(crs["data"]), {**crs["attrs"], "healpix_nside": 2**zoom}),
        },
    )


def write_healpix_pyramid(folder: Path, *, declared: bool = True) -> Path:
    """The pyramid, data variables unwritten; `declared=False`: the levels only named by number."""
    if folder.exists():
        shutil.rmtree(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for zoom in PYRAMID_LEVELS:
            healpix_level(zoom).to_zarr(str(folder), group=str(zoom), zarr_format=3, compute=False, mode="a")
        attributes = document(DGGS_PYRAMID, "multiscales.json")["attributes"]
        if not declared:
            attributes = {k: v for k, v in attributes.items() if k != "multiscales"}
        root = zarr.open_group(str(folder), mode="r+", zarr_format=3)
        root.attrs.put(attributes)
        zarr.consolidate_metadata(str(folder))
    return folder


def write_healpix_zoom_levels(folder: Path, zooms: range = range(3, 12)) -> Path:
    """A viewer's pyramid: one group per zoom level (`3` .. `11`), each global with its own easy.gems
    `crs` and no cell coordinate (all 12·4^zoom cells, implicitly); data variables unwritten."""
    import dask.array

    if folder.exists():
        shutil.rmtree(folder)
    crs = json.loads((DATA / "healpix" / "easygems-crs.json").read_text())["crs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for zoom in zooms:
            cells = 12 * 4**zoom
            tas = dask.array.zeros((PYRAMID_TIMES.size, cells), dtype="f4", chunks=(1, min(cells, 4**10)))
            level = xr.Dataset(
                {"tas": (("time", "cell"), tas, {"units": "K", "grid_mapping": "crs"})},
                coords={
                    "time": ("time", PYRAMID_TIMES, {"standard_name": "time"}),
                    "crs": (tuple(crs["dims"]), np.asarray(crs["data"]), {**crs["attrs"], "healpix_nside": 2**zoom}),
                },
            )
            level.to_zarr(str(folder), group=str(zoom), zarr_format=2, compute=False, mode="a", consolidated=False)
        zarr.consolidate_metadata(str(folder))
    return folder
