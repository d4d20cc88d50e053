"""Catalogue inputs as data centres publish them (issue 16), on the real files in
tests/data/catalogues (see SOURCES.md), their store URLs rewritten to local stores.

Every store holds the same synthesised dataset (`antimeridian`: longitudes 160..200°E,
latitudes -10..10, three days from 2010-01-01), so what each Item must say follows
from the catalogue alone.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import xarray as xr
import yaml

from zarr_stac.loaders.config import CatalogueConfig, MappingConfig, SourceConfig
from zarr_stac.loaders.finding.inputs import expand_input, iter_entries
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.samples import write_dataset
from zarr_stac.services import LOCAL_CREDENTIALS

from .cases import antimeridian

DATA = Path(__file__).resolve().parent.parent / "data" / "catalogues"
NEXTGEMS_OUTDATA = "/work/bm1235/k203123/NextGEMS_Cycle3.git/experiments/ngc3028/outdata"
BBOX = [160.0, -10.0, -160.0, 10.0]
TIMES = ("2010-01-01T00:00:00Z", "2010-01-03T00:00:00Z")


def described(collection) -> str:
    """A collection's description without the recipe that follows it (issue 17's open instructions)."""
    text, recipe = collection.description.split("\n\nEach item is one store", 1)
    assert "```python\nimport xarray as xr" in recipe
    return text


@pytest.fixture(scope="module")
def one_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "store.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), str(path))
    return path


def link_stores(store: Path, paths) -> None:
    """Local stores at `paths`: links to one written store (every store is the same)."""
    for path in paths:
        path = Path(path.rstrip("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.symlink(store, path, target_is_directory=True)


def write_s3_stores(storage, urls) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for url in urls:
            write_dataset(antimeridian(), url.rstrip("/"), storage)


def copy_rewritten(source: Path, target: Path, old: str, new: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source.read_text().replace(old, new))
    return target


def by_id(result) -> dict:
    return {(item.collection_id, item.id): item for item in result.items}


# -- 1, 2, 5: nested and templated intake catalogues (nextGEMS cycle 3, ICON) -------------
@pytest.fixture
def nextgems(tmp_path, one_store) -> Path:
    """The ICON master catalogue and ngc3028.yaml as published; ngc3026, ngc3542 and hamocc
    are not in the copy (their nested catalogues are missing)."""
    outdata = tmp_path / "outdata"
    catalogue = tmp_path / "catalog" / "ICON"
    shutil.copytree(DATA / "nextgems3" / "ICON", catalogue)
    copy_rewritten(
        DATA / "nextgems3" / "ICON" / "ngc3028.yaml", catalogue / "ngc3028.yaml", NEXTGEMS_OUTDATA, str(outdata)
    )
    link_stores(
        one_store,
        [str(outdata / f"ngc3028_{freq}_{zoom}.zarr") for freq in ("PT30M", "PT3H", "P1D") for zoom in range(11)],
    )
    return catalogue / "main.yaml"


def test_nested_templated_catalogue_gives_every_zoom_level(nextgems):
    result = crawl(str(nextgems))
    items = by_id(result)
    # One collection per leaf catalogue; one Item per allowed zoom of each templated entry.
    expected = {("ngc3028", f"{freq}.zoom-{zoom}") for freq in ("PT30M", "PT3H", "P1D") for zoom in range(11)}
    assert set(items) == expected and len(result.items) == 33
    item = items[("ngc3028", "PT3H.zoom-7")]
    assert item.properties["zoom"] == 7
    assert item.bbox == BBOX
    assert (item.properties["start_datetime"], item.properties["end_datetime"]) == TIMES
    outdata = nextgems.parent.parent.parent / "outdata"
    assert item.assets["zarr"].href == str(outdata / "ngc3028_PT3H_7.zarr")
    [collection] = result.collections
    assert (collection.id, collection.title) == ("ngc3028", "ngc3028")
    assert described(collection) == "5km coupled run, 5-year intermediate ICON nextGEMS C3 run"
    # Nothing dropped silently: the missing nested catalogues and the netcdf entry are reported.
    folder = nextgems.parent
    assert sorted((f.url, f.kind) for f in result.failures) == [
        (str(folder / "hamocc.yaml"), "input"),
        (str(folder / "ngc3026.yaml"), "input"),
        (f"{folder / 'ngc3028.yaml'}#lra-r100-monthly", "not-zarr"),
        (str(folder / "ngc3542.yaml"), "input"),
    ]
    missing = next(f for f in result.failures if f.url.endswith("ngc3026.yaml"))
    assert missing.reason == f"nested catalogue 'ngc3026' (from {nextgems}#ngc3026): no such file"
    assert not result.complete  # the missing catalogues' stores are unknown: nothing may be deleted


def test_collections_by_nesting_are_configurable(nextgems):
    config = MappingConfig(sources=[SourceConfig(url=str(nextgems), catalogue=CatalogueConfig(collections="none"))])
    result = crawl(config)
    # Default placement by path: the stores share the folder `outdata`.
    assert {item.collection_id for item in result.items} == {"outdata"}
    assert ("outdata", "ngc3028.P1D.zoom-0") in by_id(result)


def test_nested_catalogues_over_s3_with_a_loop(empty_bucket, storage):
    """A remote master catalogue whose nested catalogue includes the master again."""
    fs = storage.filesystem(empty_bucket)
    master = {
        "sources": {
            "ocean": {
                "driver": "intake.catalog.local.YAMLFileCatalog",
                "description": "Ocean runs",
                "args": {"path": "{{ CATALOG_DIR }}/ocean/ocean.yaml"},
            }
        }
    }
    ocean = {
        "metadata": {"title": "Ocean"},
        "sources": {
            "sst": {
                "driver": "zarr",
                "args": {"urlpath": "{{ CATALOG_DIR }}/../data/sst.zarr"},
                "metadata": {"realm": "ocean"},
            },
            "back": {"driver": "yaml_file_cat", "args": {"path": "{{ CATALOG_DIR }}/../master.yaml"}},
        },
    }
    fs.pipe(f"{empty_bucket}/cat/master.yaml", yaml.safe_dump(master).encode())
    fs.pipe(f"{empty_bucket}/cat/ocean/ocean.yaml", yaml.safe_dump(ocean).encode())
    write_s3_stores(storage, [f"{empty_bucket}/cat/data/sst.zarr"])
    result = crawl(f"{empty_bucket}/cat/master.yaml", storage)
    [item] = result.items
    assert (item.collection_id, item.id, item.properties["realm"]) == ("ocean", "sst", "ocean")
    assert item.assets["zarr"].href == f"{empty_bucket}/cat/data/sst.zarr"
    assert result.collections[0].title == "Ocean" and described(result.collections[0]) == "Ocean runs"
    assert [(f.url, f.kind) for f in result.failures] == [(f"{empty_bucket}/cat/master.yaml", "catalogue-loop")]
    assert result.complete  # a loop hides no store


def test_an_entry_that_cannot_be_expanded_is_its_own_failure(tmp_path, one_store):
    link_stores(one_store, [str(tmp_path / "run_0.zarr"), str(tmp_path / "run_5.zarr")])
    catalogue = {
        "sources": {
            "by_default": {
                "driver": "zarr",
                "args": {"urlpath": "{{ CATALOG_DIR }}/run_{{ zoom }}.zarr"},
                "parameters": {"zoom": {"type": "int", "default": 5}},
            },
            "no_value": {
                "driver": "zarr",
                "args": {"urlpath": "{{ CATALOG_DIR }}/run_{{ zoom }}.zarr"},
                "parameters": {"zoom": {"type": "int"}},
            },
            "undefined": {"driver": "zarr", "args": {"urlpath": "{{ CATALOG_DIR }}/run_{{ level }}.zarr"}},
            "from_env": {"driver": "zarr", "args": {"urlpath": "{{ env('HOME') }}/run_0.zarr"}},
            "plain": {"driver": "zarr", "args": {"urlpath": "run_0.zarr"}},
        }
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue))
    result = crawl(str(path))
    assert sorted((i.id, i.properties.get("zoom")) for i in result.items) == [("by_default", 5), ("plain", None)]
    assert sorted((f.url.rsplit("#", 1)[1], f.kind) for f in result.failures) == [
        ("from_env", "template"),
        ("no_value", "template"),
        ("undefined", "template"),
    ]
    reasons = {f.url.rsplit("#", 1)[1]: f.reason for f in result.failures}
    assert (
        reasons["no_value"]
        == "entry 'no_value' cannot be expanded: parameter 'zoom' has neither an 'allowed' list nor a default"
    )
    assert "'level' is undefined" in reasons["undefined"]


# -- 3: list-valued and chained URLs, kerchunk sources -----------------------------------
@pytest.fixture
def reference(tmp_path) -> Path:
    """A kerchunk reference over a local NetCDF file of the same dataset."""
    from kerchunk.hdf import SingleHdf5ToZarr

    netcdf = tmp_path / "tas.nc"
    ds = antimeridian()
    ds.time.encoding.update(units="days since 2010-01-01", calendar="standard")
    ds.to_netcdf(netcdf, engine="h5netcdf")
    with open(netcdf, "rb") as handle:
        refs = SingleHdf5ToZarr(handle, str(netcdf)).translate()
    path = tmp_path / "tas.json"
    path.write_text(json.dumps(refs))
    return path


def test_list_urls_chains_and_kerchunk_sources(tmp_path, one_store, reference, empty_bucket, storage):
    link_stores(one_store, [str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")])
    write_s3_stores(storage, [f"{empty_bucket}/cached.zarr"])
    catalogue = {
        "sources": {
            "pair": {"driver": "zarr", "args": {"urlpath": ["{{ CATALOG_DIR }}/a.zarr", "{{ CATALOG_DIR }}/b.zarr"]}},
            "cached": {
                "driver": "intake_xarray.xzarr.ZarrSource",
                "args": {"urlpath": f"simplecache::{empty_bucket}/cached.zarr"},
            },
            "refs_engine": {
                "driver": "netcdf",
                "args": {"urlpath": "{{ CATALOG_DIR }}/tas.json", "engine": "kerchunk"},
            },
            "refs_fo": {
                "driver": "zarr",
                "args": {"urlpath": "reference://", "storage_options": {"fo": "{{ CATALOG_DIR }}/tas.json"}},
            },
            "refs_chain": {
                "driver": "xarray",
                "args": {"urlpath": "reference::{{ CATALOG_DIR }}/tas.json", "engine": "kerchunk"},
            },
        }
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalogue))
    config = MappingConfig(sources=[SourceConfig(url=str(path), storage=storage)])
    result = crawl(config)
    assert result.failures == []
    items = {item.id: item for item in result.items}
    assert sorted(items) == ["cached", "pair.0", "pair.1", "refs_chain", "refs_engine", "refs_fo"]
    assert items["pair.1"].assets["zarr"].href == str(tmp_path / "b.zarr")
    # The cache layer is the crawler's business: readers get the store's own URL.
    cached = items["cached"].assets["zarr"]
    assert cached.href == f"{empty_bucket}/cached.zarr"
    for name in ("refs_engine", "refs_fo", "refs_chain"):
        asset = items[name].assets["zarr"]
        assert (asset.href, asset.extra_fields["xarray:open_kwargs"]["engine"]) == (str(reference), "kerchunk")
        assert items[name].bbox == BBOX
    # Each published asset opens as published.
    for asset in (cached, items["refs_fo"].assets["zarr"]):
        options = dict(asset.extra_fields.get("xarray:storage_options", {}))
        if asset.href.startswith("s3://"):
            # The bucket is private: the published options (anon) plus the test's keys.
            options.update(
                anon=False,
                key=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                secret=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
        ds = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"], storage_options=options or None)
        assert ds.sizes["lon"] == 21


def test_hytest_catalogue_with_kerchunk_references_and_a_relative_nested_catalogue(tmp_path, one_store, reference):
    """USGS HyTEST's catalogue: zarr stores on disk and S3, `reference://` sources with
    `storage_options.fo`, a csv source, and a nested catalogue by a relative path."""
    text = (DATA / "hytest" / "hytest_intake_catalog.yml").read_text()
    for old, new in (("/caldera/", f"{tmp_path}/caldera/"), ("s3://nhgf-development/", f"{tmp_path}/nhgf/"),
                     ("s3://noaa-nwm-retrospective-2-1-zarr-pds/", f"{tmp_path}/noaa/")):  # fmt: skip
        text = text.replace(old, new)
    catalogue = tmp_path / "dataset_catalog" / "hytest_intake_catalog.yml"
    catalogue.parent.mkdir()
    catalogue.write_text(text)
    sources = yaml.safe_load(text)["sources"]
    stores = [e["args"]["urlpath"] for e in sources.values() if e["driver"] == "zarr"]
    references = [
        e["args"]["storage_options"]["fo"] for e in sources.values() if e["args"].get("urlpath") == "reference://"
    ]
    link_stores(one_store, stores)
    for path in references:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(reference, path)
    result = crawl(str(catalogue))
    assert (len(stores), len(references)) == (14, 9)
    kinds = {item.id: item.assets["zarr"].extra_fields["xarray:open_kwargs"]["engine"] for item in result.items}
    assert kinds == {
        name: "kerchunk" if e["args"]["urlpath"] == "reference://" else "zarr"
        for name, e in sources.items()
        if e["driver"] != "csv" and "path" not in e["args"]
    }
    lcmap = next(item for item in result.items if item.id == "lcmap-cloud")
    assert lcmap.assets["zarr"].href == f"{tmp_path}/nhgf/lcmap/lcmap.json"
    # The entry's description, then the lines that open it (issue 17).
    description, recipe = lcmap.properties["description"].split("\n\nOpen it with xarray", 1)
    assert (
        description == "LCMAP, all 36 years" and f"'{tmp_path}/nhgf/lcmap/lcmap.json',\n    engine='kerchunk'" in recipe
    )
    assert lcmap.bbox == BBOX
    hourly = next(item for item in result.items if item.id == "conus404-hourly-onprem")
    assert hourly.assets["zarr"].href == f"{tmp_path}/caldera/hytest_scratch/scratch/conus404/conus404_hourly.zarr"
    assert sorted((f.url, f.kind) for f in result.failures) == [
        (f"{catalogue}#nwm21-scores", "not-zarr"),
        (f"{tmp_path}/dataset_preprocessing/tutorials/CONUS404/tutorial_data.yml", "input"),
    ]


# -- 4, 5: intake-esm collections ---------------------------------------------------------
def test_esm_collection_with_mixed_formats_over_s3(empty_bucket, storage):
    """intake-esm's mixed-format sample: zarr rows are Items, netcdf rows are reported."""
    fs = storage.filesystem(empty_bucket)
    fs.pipe(
        f"{empty_bucket}/esm/cmip6-bcc-mixed-formats.json", (DATA / "esm" / "cmip6-bcc-mixed-formats.json").read_bytes()
    )
    table = (DATA / "esm" / "cmip6-bcc-mixed-formats.csv").read_text().replace("gs://cmip6/", f"{empty_bucket}/")
    fs.pipe(f"{empty_bucket}/esm/cmip6-bcc-mixed-formats.csv", table.encode())
    zarr_rows = [
        f"{empty_bucket}/CMIP6/CMIP/BCC/BCC-ESM1/piControl/r1i1p1f1/Amon/tasmin/gn/v20181214",
        f"{empty_bucket}/CMIP6/CMIP/BCC/BCC-CSM2-MR/abrupt-4xCO2/r1i1p1f1/Amon/tasmin/gn/v20181016",
    ]
    write_s3_stores(storage, zarr_rows)
    result = crawl(f"{empty_bucket}/esm/cmip6-bcc-mixed-formats.json", storage)
    items = by_id(result)
    assert set(items) == {
        ("CMIP.BCC.BCC-ESM1.piControl.Amon.gn", "BCC-ESM1.piControl.r1i1p1f1.Amon.tasmin.gn.v20181214"),
        ("CMIP.BCC.BCC-CSM2-MR.abrupt-4xCO2.Amon.gn", "BCC-CSM2-MR.abrupt-4xCO2.r1i1p1f1.Amon.tasmin.gn.v20181016"),
    }
    item = items[("CMIP.BCC.BCC-ESM1.piControl.Amon.gn", "BCC-ESM1.piControl.r1i1p1f1.Amon.tasmin.gn.v20181214")]
    columns = {k: item.properties[k] for k in item.properties if k in table.splitlines()[0].split(",")}
    # Other columns as properties; the asset and format columns and empty cells left out.
    assert columns == {
        "activity_id": "CMIP", "institution_id": "BCC", "source_id": "BCC-ESM1", "experiment_id": "piControl",
        "member_id": "r1i1p1f1", "table_id": "Amon", "variable_id": "tasmin", "grid_label": "gn",
        "time_range": "185001-230012",
    }  # fmt: skip
    assert item.assets["zarr"].href == zarr_rows[0]
    collection = next(c for c in result.collections if c.id == "CMIP.BCC.BCC-ESM1.piControl.Amon.gn")
    assert described(collection) == (
        "This is a sample ESM catalog for CMIP6 data in netcdf AND zarr format, local and remote. (activity_id CMIP, "
        "institution_id BCC, source_id BCC-ESM1, experiment_id piControl, table_id Amon, grid_label gn)"
    )
    assert sorted((f.kind, f.url.rsplit("/", 1)[1]) for f in result.failures) == [
        ("not-zarr", "tasmax_Amon_BCC-CSM2-MR_abrupt-4xCO2_r1i1p1f1_gn_185001-200012.nc"),
        ("not-zarr", "tasmax_Amon_BCC-ESM1_piControl_r1i1p1f1_gn_185001-230012.nc"),
    ]
    assert result.failures[0].reason.startswith("row ") and "format 'netcdf' is not Zarr" in result.failures[0].reason
    assert result.complete  # rows of other formats hide no store


def test_an_esm_table_without_its_json_is_read_as_the_json_reads_it(empty_bucket, storage):
    """The same mixed-format table given alone: its `path` and `format` columns say it all."""
    fs = storage.filesystem(empty_bucket)
    table = (DATA / "esm" / "cmip6-bcc-mixed-formats.csv").read_text().replace("gs://cmip6/", f"{empty_bucket}/")
    assert table.splitlines()[0].split(",")[8:10] == ["format", "path"]  # and no zstore column
    fs.pipe(f"{empty_bucket}/tables/cmip6-bcc-mixed-formats.csv", table.encode())
    zarr_rows = [
        f"{empty_bucket}/CMIP6/CMIP/BCC/BCC-ESM1/piControl/r1i1p1f1/Amon/tasmin/gn/v20181214",
        f"{empty_bucket}/CMIP6/CMIP/BCC/BCC-CSM2-MR/abrupt-4xCO2/r1i1p1f1/Amon/tasmin/gn/v20181016",
    ]
    write_s3_stores(storage, zarr_rows)
    result = crawl(f"{empty_bucket}/tables/cmip6-bcc-mixed-formats.csv", storage)
    assert sorted(item.assets["zarr"].href for item in result.items) == sorted(zarr_rows)
    item = next(item for item in result.items if item.assets["zarr"].href == zarr_rows[0])
    assert {k: item.properties[k] for k in ("source_id", "variable_id", "time_range")} == {
        "source_id": "BCC-ESM1", "variable_id": "tasmin", "time_range": "185001-230012",
    }  # fmt: skip
    assert "path" not in item.properties and "format" not in item.properties
    assert sorted((f.kind, f.url.rsplit("/", 1)[1]) for f in result.failures) == [
        ("not-zarr", "tasmax_Amon_BCC-CSM2-MR_abrupt-4xCO2_r1i1p1f1_gn_185001-200012.nc"),
        ("not-zarr", "tasmax_Amon_BCC-ESM1_piControl_r1i1p1f1_gn_185001-230012.nc"),
    ]
    assert "format 'netcdf' is not Zarr" in result.failures[0].reason and result.complete


def test_pangeo_esm_collection_with_a_remote_gzipped_table(empty_bucket, storage, tmp_path):
    """Pangeo's collection JSON, its catalog_file URL pointing at a .csv.gz in the bucket."""
    fs = storage.filesystem(empty_bucket)
    table = (DATA / "esm" / "pangeo-cmip6-faq-sample.csv").read_text().replace("gs://cmip6/", f"{empty_bucket}/cmip6/")
    fs.pipe(f"{empty_bucket}/tables/pangeo.csv.gz", gzip.compress(table.encode()))
    collection = copy_rewritten(
        DATA / "esm" / "pangeo-cmip6-zarr.json", tmp_path / "pangeo-cmip6.json",
        "gs://cmip6/cmip6-zarr-consolidated-stores.csv", f"{empty_bucket}/tables/pangeo.csv.gz",
    )  # fmt: skip
    variables = ("ch4", "clt", "co2", "evspsbl")
    write_s3_stores(
        storage, [f"{empty_bucket}/cmip6/AerChemMIP/BCC/BCC-ESM1/piClim-CH4/r1i1p1f1/Amon/{v}/gn" for v in variables]
    )
    result = crawl(MappingConfig(sources=[SourceConfig(url=str(collection), storage=storage)]))
    assert result.failures == []
    group = "AerChemMIP.BCC.BCC-ESM1.piClim-CH4.Amon.gn"
    # Item ids: the path below the prefix the stores share (.../r1i1p1f1/Amon).
    assert sorted(by_id(result)) == [(group, f"{v}.gn") for v in variables]
    item = by_id(result)[(group, "co2.gn")]
    assert (item.properties["variable_id"], item.properties["member_id"]) == ("co2", "r1i1p1f1")
    assert "dcpp_init_year" not in item.properties and "zstore" not in item.properties


def test_esm_collection_with_an_embedded_table(tmp_path, one_store):
    collection = copy_rewritten(
        DATA / "esm" / "catalog-dict-records.json", tmp_path / "cesm.json", "s3://ncar-cesm-lens/", f"{tmp_path}/lens/"
    )
    variables = ("FLNS", "FLNSC", "FLUT", "FSNS", "FSNSC")
    link_stores(one_store, [f"{tmp_path}/lens/atm/daily/cesmLE-20C-{v}.zarr" for v in variables])
    result = crawl(str(collection))
    assert result.failures == []
    assert sorted(by_id(result)) == [("atm.20C.daily", f"cesmLE-20C-{v}") for v in variables]
    item = by_id(result)[("atm.20C.daily", "cesmLE-20C-FLUT")]
    assert {k: item.properties[k] for k in ("component", "frequency", "experiment", "variable")} == {
        "component": "atm", "frequency": "daily", "experiment": "20C", "variable": "FLUT",
    }  # fmt: skip
    # The mapping configuration may group otherwise: by path.
    by_path = crawl(MappingConfig(sources=[SourceConfig(url=str(collection), catalogue=CatalogueConfig(groupby=[]))]))
    # The stores lie directly below the folder they share: its name is the collection.
    assert {(i.collection_id, i.id) for i in by_path.items} == {("daily", f"cesmLE-20C-{v}") for v in variables}


def test_a_kerchunk_reference_is_not_taken_for_an_esm_collection(reference):
    expanded = expand_input(str(reference))
    [ref] = list(iter_entries(expanded, None))
    assert (ref.url, ref.kind) == (str(reference), "kerchunk")


@pytest.fixture
def cmip6_table(tmp_path, one_store) -> Path:
    """intake-esm's test table of Pangeo stores: its asset column is `path`, not `zstore`."""
    text = (
        (DATA / "esm" / "cmip6-zarr-consolidated-stores.csv").read_text().replace("gs://cmip6/", f"{tmp_path}/cmip6/")
    )
    path = tmp_path / "stores.csv"
    path.write_text(text)
    link_stores(one_store, [line.split(",")[8] for line in text.splitlines()[1:]])
    return path


def test_csv_names_its_asset_column(cmip6_table):
    refused = crawl(str(cmip6_table))
    assert [f.kind for f in refused.failures] == ["input"]
    assert "needs a 'zstore' column" in refused.failures[0].reason and "--asset-column" in refused.failures[0].reason
    assert refused.empty_inputs and not refused.complete
    result = crawl(
        MappingConfig(sources=[SourceConfig(url=str(cmip6_table), catalogue=CatalogueConfig(asset_column="path"))])
    )
    assert result.failures == []
    counts = {c.id: len(result.items_of(c.id)) for c in result.collections}
    assert counts == {"AerChemMIP": 7, "C4MIP": 2, "CMIP": 5, "DCPP": 16}
    item = by_id(result)[("DCPP", "CCCma.CanESM5.dcppA-hindcast.s2002-r10i1p2f1.Amon.tas.gn")]
    assert {k: item.properties[k] for k in ("member_id", "direct_access", "resource_type", "data_format")} == {
        "member_id": "s2002-r10i1p2f1", "direct_access": "True", "resource_type": "gs", "data_format": "zarr",
    }  # fmt: skip
    assert "path" not in item.properties


# -- the command line: build and load accept every kind ------------------------------------
@pytest.fixture
def inputs(nextgems, cmip6_table, tmp_path, one_store) -> dict:
    collection = copy_rewritten(
        DATA / "esm" / "catalog-dict-records.json", tmp_path / "cesm.json", "s3://ncar-cesm-lens/", f"{tmp_path}/lens/"
    )
    link_stores(
        one_store,
        [f"{tmp_path}/lens/atm/daily/cesmLE-20C-{v}.zarr" for v in ("FLNS", "FLNSC", "FLUT", "FSNS", "FSNSC")],
    )
    return {
        "intake": ([str(nextgems)], 33, 4),
        "esm": ([str(collection)], 5, 0),
        "csv": ([str(cmip6_table), "--asset-column", "path"], 30, 0),
    }


@pytest.mark.parametrize("kind", ["intake", "esm", "csv"])
def test_build_accepts_every_kind(cli, inputs, kind, tmp_path):
    args, items, skipped = inputs[kind]
    result = cli("build", *args, "-o", str(tmp_path / "stac"))
    assert "catalogued" in result.output
    written = list((tmp_path / "stac").rglob("*.json"))
    collections = [p for p in written if p.name == "collection.json"]
    assert len(written) - 1 - 2 * len(collections) == items  # catalog.json, collection.json + snapshot each
    assert result.output.count("skipped ") == skipped


@pytest.mark.parametrize("kind", ["intake", "esm", "csv"])
def test_load_accepts_every_kind(cli, inputs, kind, pgstac_dsn):
    import psycopg

    args, items, _skipped = inputs[kind]
    result = cli("load", *args, "--dsn", pgstac_dsn)
    assert "item(s) into pgstac" in result.output
    with psycopg.connect(pgstac_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0] == items


def test_an_input_that_yields_no_store_exits_non_zero(cli, tmp_path):
    shutil.copy(DATA / "nextgems3" / "ICON" / "main.yaml", tmp_path / "main.yaml")  # its nested catalogues left behind
    result = cli("build", str(tmp_path / "main.yaml"), "-o", str(tmp_path / "stac"), expect=1)
    assert (
        f"{tmp_path / 'main.yaml'} yields no store: none of its entries is a store (4 input; see the skipped entries)"
        in result.output
    )
