"""Real metadata through both paths: the crawl (`build`) and `inspect` give the same Item.

Every real-metadata store and kerchunk reference of tests/data (SOURCES.md beside each) is
written into one folder, its metadata as found and only its coordinates (and, for parquet
references, the reference records) synthesised. The folder is crawled once, as `build`
does (consolidated stores from prefetched bytes, references lazily), and each store is
inspected on its own (opened by URL): the two outcomes must be equal byte for byte, an
Item or a failure alike. A metadata document of tests/data/stores that no case below
builds is still written and compared, without coordinates.

Then the classes of issue 26 point 5 that failed on such metadata, each against
expectations computed from the synthesised values or the documented grid (pyproj):
parquet references whose `raw` column holds nulls (fsspec's pyarrow writer), a nextGEMS
catalogue of 16 of them, a WRF `Time` of 0 days (a stored chunk equal to the fill value),
the National Water Model's `time` beside `reference_time`, a virtual Zarr v3 store of
`gribberish` data variables, and CORDEX's Antarctic domain around the South Pole.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pystac
import pytest
import xarray as xr
from fsspec.implementations.reference import LazyReferenceMapper
from pyproj import CRS, Transformer

from zarr_stac.loaders.failures import StoreFailure
from zarr_stac.loaders.running.crawl import crawl, inspect_store

from .hierarchies import (
    EOPF_S1_RTC,
    EOPF_S2,
    IFS_ENS,
    S1_NORTH,
    S1_SIZE,
    S1_WEST,
    S2_GEOZARR,
    S2_GEOZARR_SPEC,
    ifs_ens_coordinates,
    s2_geozarr_coordinates,
    write_consolidated_store,
    write_healpix_pyramid,
    write_spec_store,
)
from .real_references import kerchunk_reference, parse_cdl, write_netcdf
from .real_stores import DATA as STORES
from .real_stores import write_store
from .test_conventions import proj_example
from .test_real_stores import real_metadata_stores
from .test_references import METADATA as SMN_METADATA
from .test_references import SMN, parquet_bytes, synthesise_targets
from .test_references import smn_coordinates as smn_values

DATA = Path(__file__).resolve().parent.parent / "data"
REFERENCES = DATA / "references"
WGS84 = CRS.from_epsg(4326)


def _json(outcome) -> str:
    """A crawl's or `inspect`'s outcome for one store (an Item, a catalogued store or a failure) as JSON."""
    if isinstance(outcome, StoreFailure):
        return json.dumps({"failure": [outcome.kind, outcome.reason]})
    item = outcome if isinstance(outcome, pystac.Item) else outcome.item
    return json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False), sort_keys=True)


# -- the SMN WRF aggregation (kerchunk's parquet test set) ---------------------------------------
def _smn_references(folder: Path) -> dict:
    """The SMN aggregation as plain references (metadata as found), its targets synthesised in `folder`."""
    tables, blobs = synthesise_targets(lambda name: str(folder / "netcdf" / name))
    for name, blob in blobs.items():
        (folder / "netcdf").mkdir(parents=True, exist_ok=True)
        (folder / "netcdf" / name).write_bytes(blob.buffer.getvalue())
    refs: dict = {key: json.dumps(value) for key, value in SMN_METADATA.items()}
    for name, df in tables.items():
        meta = SMN_METADATA[f"{name}/.zarray"]
        grid = [math.ceil(s / c) for s, c in zip(meta["shape"], meta["chunks"])]
        for i in range(math.prod(grid)):
            key = f"{name}/" + (".".join(map(str, np.unravel_index(i, grid))) or "0")
            row = df.iloc[i]
            if isinstance(row["path"], str):
                refs[key] = [row["path"], int(row["offset"]), int(row["size"])]
            elif row["raw"] is not None:
                refs[key] = bytes(row["raw"])
    return refs


def write_parquet_with_pyarrow(refs: dict, root: Path, record_size: int = 1000) -> Path:
    """`refs` as a parquet reference set, written by fsspec's own writer on the pyarrow engine."""
    mapper = LazyReferenceMapper.create(
        root=str(root), fs=fsspec.filesystem("file"), record_size=record_size, engine="pyarrow"
    )
    for key in sorted(refs):
        mapper[key] = refs[key]
    mapper.flush()
    return root


def smn_as_found(folder: Path) -> Path:
    """The parquet set as kerchunk wrote it (fastparquet), its rows pointed at the synthesised targets."""
    tables, blobs = synthesise_targets(lambda name: str(folder / "smn-netcdf" / name))
    for name, blob in blobs.items():
        (folder / "smn-netcdf").mkdir(parents=True, exist_ok=True)
        (folder / "smn-netcdf" / name).write_bytes(blob.buffer.getvalue())
    root = folder / "smn-wrf.parq"
    root.mkdir()
    shutil.copyfile(SMN / ".zmetadata", root / ".zmetadata")
    for name, df in tables.items():
        (root / name).mkdir()
        (root / name / "refs.0.parq").write_bytes(parquet_bytes(df, SMN / name / "refs.0.parq"))
    return root


def smn_pyarrow(folder: Path) -> Path:
    return write_parquet_with_pyarrow(_smn_references(folder / "smn-pyarrow-targets"), folder / "smn-wrf-pyarrow.parq")


SMN_LON, SMN_LAT = smn_values()["lon"], smn_values()["lat"]
SMN_BBOX = [float(SMN_LON.min()), float(SMN_LAT.min()), float(SMN_LON.max()), float(SMN_LAT.max())]


# -- the Alaska WRF file (kerchunk's single-file JSON test reference) ------------------------------
ALASKA = REFERENCES / "alaska-wrf-single-file.json"
# Synthesised XLAT/XLONG: a 5 km polar stereographic grid over Alaska (not the model's values).
ALASKA_CRS = CRS.from_proj4("+proj=stere +lat_0=90 +lat_ts=64 +lon_0=-152 +R=6370000")


def alaska_coordinates() -> tuple[np.ndarray, np.ndarray]:
    meta = json.loads(json.load(ALASKA.open())["refs"]["XLAT/.zarray"])
    rows, columns = meta["shape"]
    centre_x, centre_y = Transformer.from_crs(WGS84, ALASKA_CRS, always_xy=True).transform(-145.0, 61.0)
    x = centre_x + 5_000.0 * (np.arange(columns) - (columns - 1) / 2)
    y = centre_y + 5_000.0 * (np.arange(rows) - (rows - 1) / 2)
    lon, lat = Transformer.from_crs(ALASKA_CRS, WGS84, always_xy=True).transform(*np.meshgrid(x, y))
    return lon.astype("f4"), lat.astype("f4")


ALASKA_LON, ALASKA_LAT = alaska_coordinates()


def _alaska_references(folder: Path) -> dict:
    """The Alaska reference as found, XLAT/XLONG pointed at synthesised chunks, data at random bytes."""
    import numcodecs

    document = json.load(ALASKA.open())
    refs = document["refs"]
    folder.mkdir(parents=True, exist_ok=True)
    coords, data = folder / "alaska-coords.bin", folder / "alaska-data.bin"
    data.write_bytes(np.random.default_rng(26).bytes(1024))
    blob = b""
    for name, values in (("XLAT", ALASKA_LAT), ("XLONG", ALASKA_LON)):
        meta = json.loads(refs[f"{name}/.zarray"])
        chunk = np.ascontiguousarray(values, dtype=meta["dtype"])
        for spec in meta["filters"] or []:
            chunk = numcodecs.get_codec(spec).encode(chunk)
        encoded = bytes(numcodecs.get_codec(meta["compressor"]).encode(chunk))
        refs[f"{name}/0.0"] = [str(coords), len(blob), len(encoded)]
        blob += encoded
    coords.write_bytes(blob)
    for key, value in refs.items():
        if isinstance(value, list) and str(value[0]).startswith("s3://wrf-se-ak-ar5/"):
            refs[key] = [str(data), *value[1:]]
    return document


def alaska_json(folder: Path) -> Path:
    path = folder / "alaska-wrf.json"
    path.write_text(json.dumps(_alaska_references(folder / "alaska-targets")))
    return path


def alaska_pyarrow(folder: Path) -> Path:
    refs = _alaska_references(folder / "alaska-pyarrow-targets")["refs"]
    refs = {
        k: (v.encode() if isinstance(v, str) and not k.endswith((".zarray", ".zattrs", ".zgroup")) else v)
        for k, v in refs.items()
    }
    return write_parquet_with_pyarrow(refs, folder / "alaska-wrf-pyarrow.parq")


# -- the National Water Model's short-range forcing ---------------------------------------------
NWM = REFERENCES / "nwm"
NWM_RUN = np.datetime64("2019-08-01T08:00", "m")


def nwm_grid() -> tuple[np.ndarray, np.ndarray, CRS]:
    """x/y cell centres from the grid header's GeoTransform, and its CRS (from its CF attributes)."""
    _, variables, _ = parse_cdl((NWM / "GEOGRID_LDASOUT_Spatial_Metadata_1km_NWMv2.0.nc.txt").read_text())
    crs = variables["crs"]["attrs"]
    x0, dx, _, y0, _, dy = map(float, crs["GeoTransform"].split())
    x = x0 + dx / 2 + dx * np.arange(4608)
    y = y0 + dy / 2 + dy * np.arange(3840)
    return x, y, CRS.from_cf(crs)


def nwm_reference(folder: Path) -> Path:
    dimensions, variables, attrs = parse_cdl((NWM / "short_range.forcing.f001.conus.cdl").read_text())
    _, grid_variables, _ = parse_cdl((NWM / "GEOGRID_LDASOUT_Spatial_Metadata_1km_NWMv2.0.nc.txt").read_text())
    variables["crs"] = grid_variables["crs"]
    variables["RAINRATE"] = {"type": "f4", "dims": ["time", "y", "x"], "attrs": {"grid_mapping": "crs"}}
    x, y, _ = nwm_grid()
    run = NWM_RUN.astype("int64")  # minutes since 1970
    values = {
        "reference_time": np.array([run], "i4"),
        "time": np.array([run + 60], "i4"),
        "time_bounds": np.array([[run, run + 60]], "i4"),
        "x": x,
        "y": y,
    }
    netcdf = write_netcdf(folder / "nwm.t08z.short_range.forcing.f001.conus.nc", dimensions, variables, attrs, values)
    path = folder / "nwm-short-range-forcing.json"
    path.write_text(json.dumps(kerchunk_reference(netcdf)))
    return path


# -- dynamical.org's virtual GEFS forecast (gribberish data variables) ----------------------------
GEFS_INIT = np.array([np.datetime64("2025-01-01T00:00", "s").astype("int64")])
GEFS_LEADS = 3600.0 * np.concatenate([np.arange(0, 240, 3), [240]])


def gefs_virtual(folder: Path) -> Path:
    coordinates = {
        "init_time": GEFS_INIT,
        "lead_time": GEFS_LEADS,
        "valid_time": GEFS_INIT[:, None] + GEFS_LEADS.astype("int64")[None, :],
        "latitude": 90.0 - 0.25 * np.arange(721),
        "longitude": -180.0 + 0.25 * np.arange(1440),
        "ensemble_member": np.arange(31, dtype="i2"),
        "expected_forecast_length": np.array([GEFS_LEADS.max()]),
    }
    return write_store("gefs-virtual", folder / "gefs-virtual.zarr", coordinates)


# -- CORDEX Antarctica (ANT-44) around the South Pole -------------------------------------------
def ant44() -> dict:
    table = pd.read_csv(DATA / "grids" / "cordex-domains.csv")
    return table[table.short_name == "ANT-44"].iloc[0].to_dict()


def ant44_grid() -> tuple[np.ndarray, np.ndarray, dict]:
    domain = ant44()
    rlon = np.round(domain["ll_lon"] + domain["dlon"] * np.arange(domain["nlon"]), 2)
    rlat = np.round(domain["ll_lat"] + domain["dlat"] * np.arange(domain["nlat"]), 2)
    mapping = {
        "grid_mapping_name": "rotated_latitude_longitude",
        "grid_north_pole_latitude": domain["pollat"],
        "grid_north_pole_longitude": domain["pollon"],
    }
    return rlon, rlat, mapping


def ant44_lonlat() -> tuple[np.ndarray, np.ndarray]:
    rlon, rlat, mapping = ant44_grid()
    lon, lat = Transformer.from_crs(CRS.from_cf(mapping), WGS84, always_xy=True).transform(*np.meshgrid(rlon, rlat))
    return lon, lat


def ant44_store(folder: Path, *, with_lonlat: bool) -> Path:
    rlon, rlat, mapping = ant44_grid()
    ds = xr.Dataset(
        {
            "tas": (
                ("time", "rlat", "rlon"),
                np.zeros((1, rlat.size, rlon.size), "f4"),
                {"grid_mapping": "rotated_pole"},
            ),
            "rotated_pole": ((), np.array(b"", "S1"), mapping),
        },
        coords={
            "time": ("time", np.array(["1990-01-16T12:00"], "M8[ns]"), {"standard_name": "time"}),
            "rlon": ("rlon", rlon, {"standard_name": "grid_longitude", "units": "degrees", "axis": "X"}),
            "rlat": ("rlat", rlat, {"standard_name": "grid_latitude", "units": "degrees", "axis": "Y"}),
        },
    )
    if with_lonlat:
        lon, lat = ant44_lonlat()
        ds = ds.assign_coords(
            lon=(("rlat", "rlon"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
            lat=(("rlat", "rlon"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
        )
    ds["time"].encoding.update(units="days since 1949-12-01 00:00:00", calendar="standard")  # CORDEX's
    path = folder / ("ant-44.zarr" if with_lonlat else "ant-44-rotated-only.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


# -- every case ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealCase:
    name: str
    build: Callable[[Path], Path]  # writes the store or reference into a folder; its path
    sources: tuple[str, ...]  # the documents of tests/data it is made from


def _real_store(name: str, case: str, coordinates: dict) -> RealCase:
    return RealCase(name, lambda folder: write_store(case, folder / f"{name}.zarr", coordinates), (f"stores/{case}",))


# -- hierarchies, pyramids and the Zarr conventions' examples --------------------------------------
def eopf_tree(name: str, *coordinates_of) -> Callable[[Path], Path]:
    """An EOPF product of tests/data/eopf written whole (every group), x/y over its tile."""
    store = name.removesuffix(".json").lower()
    return lambda folder: write_spec_store(
        S2_GEOZARR, name, folder / f"{store}.zarr", s2_geozarr_coordinates(name, *coordinates_of)
    )


def proj_store(name: str) -> Callable[[Path], Path]:
    """A data variable carrying a `proj` convention example's attributes as found (test_conventions)."""

    def build(folder: Path) -> Path:
        path = folder / f"proj-{name}.zarr"
        proj_example(name).to_zarr(path, mode="w", zarr_format=3, consolidated=True)
        return path

    return build


def stac_group(folder: Path) -> Path:
    """The `stac` convention's example as found: a root group's `zarr.json`, nothing else."""
    path = folder / "stac-item-group.zarr"
    path.mkdir()
    shutil.copyfile(DATA / "zarr-conventions" / "sentinel2_item_example.json", path / "zarr.json")
    return path


TREES = [
    RealCase(
        "ifs-ens-tree",
        lambda folder: write_consolidated_store(IFS_ENS, folder / "ifs-ens-tree.zarr", ifs_ens_coordinates()),
        (IFS_ENS,),
    ),
    RealCase(
        "healpix-pyramid",
        lambda folder: write_healpix_pyramid(folder / "healpix-pyramid.zarr"),
        ("hierarchies/dggs-multiscales",),
    ),
    RealCase(
        "healpix-zoom-groups",
        lambda folder: write_healpix_pyramid(folder / "healpix-zoom-groups.zarr", declared=False),
        ("hierarchies/dggs-multiscales",),
    ),
    RealCase("eopf-s2-l2a-tree", eopf_tree(EOPF_S2), (f"eopf/{EOPF_S2}",)),
    RealCase("eopf-s2-geozarr-tree", eopf_tree(S2_GEOZARR_SPEC), (f"eopf/{S2_GEOZARR_SPEC}",)),
    RealCase("eopf-s1-rtc-tree", eopf_tree(EOPF_S1_RTC, S1_WEST, S1_NORTH, S1_SIZE), (f"eopf/{EOPF_S1_RTC}",)),
    RealCase("proj-epsg26711", proj_store("epsg26711"), ("zarr-conventions/epsg26711.json",)),
    RealCase("proj-wkt2", proj_store("wkt2"), ("zarr-conventions/wkt2.json",)),
    RealCase("stac-item-group", stac_group, ("zarr-conventions/sentinel2_item_example.json",)),
]


CASES = [
    *(_real_store(name, case, coords) for name, (case, coords) in real_metadata_stores().items()),
    RealCase("gefs-virtual", gefs_virtual, ("stores/gefs-virtual",)),
    RealCase("smn-wrf", smn_as_found, ("references/smn-wrf.parq",)),
    RealCase("smn-wrf-pyarrow", smn_pyarrow, ("references/smn-wrf.parq",)),
    RealCase("alaska-wrf", alaska_json, ("references/alaska-wrf-single-file.json",)),
    RealCase("alaska-wrf-pyarrow", alaska_pyarrow, ("references/alaska-wrf-single-file.json",)),
    RealCase("nwm-forcing", nwm_reference, ("references/nwm",)),
    RealCase("ant-44", lambda folder: ant44_store(folder, with_lonlat=True), ("grids/cordex-domains.csv",)),
    RealCase(
        "ant-44-rotated-only", lambda folder: ant44_store(folder, with_lonlat=False), ("grids/cordex-domains.csv",)
    ),
    *TREES,
]


def uncovered_stores() -> list[str]:
    """Metadata documents of tests/data/stores that no case builds (written without coordinates)."""
    covered = {source for case in CASES for source in case.sources}
    return sorted(
        f"stores/{folder.name}"
        for folder in STORES.iterdir()
        if f"stores/{folder.name}" not in covered
        and ((folder / ".zmetadata").is_file() or (folder / "zarr.json").is_file())
    )


CASES += [
    RealCase(
        f"bare-{source.split('/', 1)[1]}",
        lambda folder, s=source: write_store(s.split("/", 1)[1], folder / f"bare-{s.split('/', 1)[1]}.zarr", {}),
        (source,),
    )
    for source in uncovered_stores()
]


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """Every case in one folder, and where each one is."""
    folder = tmp_path_factory.mktemp("real-metadata")
    stores = folder / "stores"
    stores.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = {case.name: case.build(stores) for case in CASES}
    return stores, paths


@pytest.fixture(scope="module")
def both_paths(real_folder) -> dict[str, tuple[str, str]]:
    """{case: (its outcome in the crawl of the folder, its outcome inspected alone)}."""
    stores, paths = real_folder
    result = crawl(str(stores))
    crawled = {item.assets["zarr"].href: item for item in result.items}
    failed = {failure.url: failure for failure in result.failures}
    outcomes = {}
    for name, path in paths.items():
        crawl_outcome = crawled.get(str(path)) or failed[str(path)]
        outcomes[name] = (_json(crawl_outcome), _json(inspect_store(str(path))))
    return outcomes


def test_every_real_metadata_document_is_a_case():
    documents = {f"stores/{p.name}" for p in STORES.iterdir() if p.is_dir()}
    documents |= {f"references/{p.name}" for p in REFERENCES.iterdir() if p.name != "SOURCES.md"}
    documents |= {f"hierarchies/{p.name}" for p in (DATA / "hierarchies").iterdir() if p.is_dir()}
    for folder in ("eopf", "zarr-conventions"):
        documents |= {f"{folder}/{p.name}" for p in (DATA / folder).glob("*.json")}
    covered = {source for case in CASES for source in case.sources}
    assert documents <= covered


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_the_crawl_and_inspect_give_the_same_item(both_paths, name):
    crawled, inspected = both_paths[name]
    assert crawled == inspected


def _item(both_paths, name: str) -> dict:
    crawled, inspected = both_paths[name]
    outcome = json.loads(inspected)
    assert "failure" not in outcome, outcome
    assert crawled == inspected
    return outcome


# -- parquet references whose `raw` column holds nulls --------------------------------------------
@pytest.mark.parametrize("name", ["smn-wrf", "smn-wrf-pyarrow"])
def test_a_parquet_reference_set_written_by_pyarrow_is_read(both_paths, real_folder, name):
    if name == "smn-wrf-pyarrow":  # the case is only a case if the writer left a null-only raw column
        import pyarrow.parquet as pq

        schema = pq.read_schema(real_folder[1][name] / "x" / "refs.0.parq")
        assert str(schema.field("raw").type) in ("null", "double")
    item = _item(both_paths, name)
    assert item["bbox"] == pytest.approx(SMN_BBOX, abs=1e-9)
    props = item["properties"]
    assert (props["start_datetime"], props["end_datetime"]) == ("2022-12-31T12:00:00Z", "2022-12-31T13:00:00Z")
    assert {"HR2", "PP", "T2", "dirViento10", "magViento10"} <= set(props["variables"])


@pytest.fixture(scope="module")
def nextgems_catalogue(tmp_path_factory) -> Path:
    """nextGEMS's catalogue of 16 parquet references, each a set written by fsspec with pyarrow."""
    folder = tmp_path_factory.mktemp("nextgems-ifs")
    text = (DATA / "catalogues" / "nextgems-ifs" / "tco3999-ng5-production-parq.yaml").read_text()
    text = text.replace("/work/bm1344/DKRZ/", f"{folder}/")
    one = smn_pyarrow(folder)
    target = folder / "kerchunks_batched" / "NGC-IFS-tco3999-ng5-production"
    target.mkdir(parents=True)
    names = [line.rsplit("/", 1)[1].strip() for line in text.splitlines() if "reference::" in line]
    assert len(names) == 16
    for name in names:
        shutil.copytree(one, target / name)
    catalogue = folder / "tco3999-ng5-production-parq.yaml"
    catalogue.write_text(text)
    return catalogue


def test_a_nextgems_catalogue_of_parquet_references_is_catalogued_whole(nextgems_catalogue):
    result = crawl(str(nextgems_catalogue))
    assert result.failures == []
    assert len(result.items) == 16
    for item in result.items:
        assert item.bbox == pytest.approx(SMN_BBOX, abs=1e-9)
        assert item.assets["zarr"].media_type == "application/vnd.zarr+kerchunk"


# -- a stored chunk whose values equal the fill value ----------------------------------------------
@pytest.mark.parametrize("name", ["alaska-wrf", "alaska-wrf-pyarrow"])
def test_a_time_of_zero_days_is_a_time(both_paths, name):
    refs = json.load(ALASKA.open())["refs"]
    assert json.loads(refs["Time/.zarray"])["fill_value"] is None  # null: reads as 0 where absent
    assert refs["Time/0"].startswith("base64:")  # ... but the chunk is there, and holds 0 days
    item = _item(both_paths, name)
    props = item["properties"]
    assert (props["start_datetime"], props["end_datetime"]) == ("2060-01-01T00:00:00Z", "2060-01-01T00:00:00Z")
    expected = [ALASKA_LON.min(), ALASKA_LAT.min(), ALASKA_LON.max(), ALASKA_LAT.max()]
    assert item["bbox"] == pytest.approx([float(v) for v in expected])


def test_absent_coordinates_are_still_missing(both_paths):
    """Absent means no chunk stored: the HRRR metadata without coordinate chunks still fails."""
    for name, coordinate in (("hrrr-no-coordinates", "longitude"), ("hrrr-no-valid-time", "valid_time")):
        crawled, inspected = both_paths[name]
        failure = json.loads(inspected)["failure"]
        assert crawled == inspected and failure[0] == "missing-coordinates" and f"'{coordinate}'" in failure[1]


# -- valid times beside a reference time -----------------------------------------------------------
def test_the_valid_times_give_the_extent_not_the_reference_time(both_paths):
    item = _item(both_paths, "nwm-forcing")
    props = item["properties"]
    # The run is 08:00; `time` is 09:00, the end of its bounds (08:00, 09:00).
    assert (props["start_datetime"], props["end_datetime"]) == ("2019-08-01T08:00:00Z", "2019-08-01T09:00:00Z")
    assert props["forecast:reference_datetime"] == "2019-08-01T08:00:00Z"
    assert props["cube:dimensions"]["time"]["type"] == "temporal"
    assert props["cube:dimensions"]["time"]["extent"] == ["2019-08-01T08:00:00Z", "2019-08-01T09:00:00Z"]
    assert props["cube:dimensions"]["reference_time"]["extent"] == ["2019-08-01T08:00:00Z"] * 2
    # The 1 km CONUS grid, from the grid's own CRS: its rectangle's edges through pyproj.
    x, y, crs = nwm_grid()
    edge_x = np.concatenate([x, np.full(y.size, x[-1]), x, np.full(y.size, x[0])])
    edge_y = np.concatenate([np.full(x.size, y[0]), y, np.full(x.size, y[-1]), y])
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(edge_x, edge_y)
    assert item["bbox"] == pytest.approx([lon.min(), lat.min(), lon.max(), lat.max()], abs=0.01)


# -- a Zarr v3 data variable whose serializer is not installed -------------------------------------
def test_a_v3_serializer_codec_not_installed_does_not_block_the_store(both_paths):
    from zarr.registry import get_codec_class

    with pytest.raises(KeyError):
        get_codec_class("gribberish")  # the case is only a case without the plugin
    item = _item(both_paths, "gefs-virtual")
    props = item["properties"]
    assert props["cube:variables"]["temperature_2m"]["codecs"] == ["gribberish"]
    assert props["cube:variables"]["temperature_2m"]["shape"] == [1, 31, 81, 721, 1440]
    assert item["bbox"] == [-180.0, -90.0, 180.0, 90.0]
    init = pd.Timestamp(int(GEFS_INIT[0]), unit="s")
    assert props["start_datetime"] == init.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert props["end_datetime"] == (init + pd.Timedelta(seconds=GEFS_LEADS.max())).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(KeyError):
        get_codec_class("gribberish")  # the stand-in did not outlive the open


# -- a rotated-pole domain around the South Pole ---------------------------------------------------
@pytest.mark.parametrize("name", ["ant-44", "ant-44-rotated-only"])
def test_a_domain_around_the_south_pole_spans_every_longitude(both_paths, name):
    rlon, rlat, mapping = ant44_grid()
    to_rotated = Transformer.from_crs(WGS84, CRS.from_cf(mapping), always_xy=True)
    pole_x, pole_y = to_rotated.transform(0.0, -90.0)
    assert rlon[0] <= pole_x % 360 <= rlon[-1] and rlat[0] <= pole_y <= rlat[-1]  # the pole is inside
    _, lat = ant44_lonlat()
    item = _item(both_paths, name)
    assert item["bbox"][:3] == [-180.0, -90.0, 180.0]
    assert item["bbox"][3] == pytest.approx(float(lat.max()), abs=0.01)


# -- a whole EOPF product: one Item of all its groups --------------------------------------------
def test_an_eopf_product_is_one_item_of_its_groups(both_paths):
    """EOPF's Sentinel-2 L2A product (Zarr v2), every group as found: placed by its finest grid
    (10 m, `proj:epsg` alone), dated by its root's `stac_discovery`, every variable by its path."""
    from .test_conventions import outline_bbox

    product = json.loads((DATA / "eopf" / EOPF_S2).read_text())
    transform = product["members"]["measurements"]["members"]["reflectance"]["members"]["r10m"]["members"]["b04"][
        "attributes"
    ]["proj:transform"]
    step, west, north = transform[0], transform[2], transform[5]
    centres = [west + step / 2, north - step * 10980 + step / 2, west + step * 10980 - step / 2, north - step / 2]
    item = _item(both_paths, "eopf-s2-l2a-tree")
    assert item["bbox"] == pytest.approx(outline_bbox(*centres, "EPSG:32632"), abs=1e-6)
    props = item["properties"]
    start = pd.Timestamp(product["attributes"]["stac_discovery"]["properties"]["start_datetime"])
    assert props["start_datetime"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert props["proj:code"] == "EPSG:32632" and props["proj:shape"] == [10980, 10980]
    variables = props["cube:variables"]
    for band, group in (("b04", "r10m"), ("b05", "r20m"), ("b01", "r60m")):
        assert variables[f"measurements/reflectance/{group}/{band}"]["type"] == "data"
    assert variables["measurements/reflectance/r20m/b05"]["dimensions"] == [
        "measurements/reflectance/r20m/y",
        "measurements/reflectance/r20m/x",
    ]
    assert "conditions/meteorology/ecmwf/msl" in props["variables"]
    group = item["assets"]["measurements/reflectance/r10m"]
    assert group["href"].endswith(".zarr/measurements/reflectance/r10m") and group["zarr:node_type"] == "group"


def test_what_the_other_trees_become(both_paths):
    """The GeoZarr conversion has no time anywhere; the S1 RTC product's 10 m group declares a
    Zarr v2 dtype as a v3 data type, which zarr refuses (as found): both fail, saying why and where."""
    no_time = json.loads(both_paths["eopf-s2-geozarr-tree"][1])["failure"]
    assert no_time[0] == "no-time" and "groups with variables" in no_time[1]
    unreadable = json.loads(both_paths["eopf-s1-rtc-tree"][1])["failure"]
    assert unreadable[0] == "corrupt-metadata"
    assert unreadable[1] == (
        "zarr.json: array 'descending/r10m/platform' declares the data type '<U4', which is no Zarr v3 data type"
    )
