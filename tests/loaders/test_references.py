"""Kerchunk references: parquet folders (LazyReferenceMapper), JSON with templates and gen, found by crawls.

The reference metadata is kerchunk's own test aggregation of SMN Argentina WRF output
(tests/data/references/smn-wrf.parq, see SOURCES.md), kept as found. Only the files the
references point to are synthesised: the coordinate chunks (x, y on the grid's 4 km
Lambert conformal spacing, lat/lon from pyproj, encoded with the arrays' own
shuffle + zlib) in one file per source NetCDF, the data chunks as random bytes in
another, and the target URLs, offsets and sizes of the rows rewritten to point at them.
Expectations are computed from those synthesised coordinates.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
from pyproj import CRS, Transformer

from static_catalog.validate import validate_object
from tests.proxy import FaultProxy
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.failures import StoreFailure
from zarr_stac.loaders.finding.prefixes import discover_stores
from zarr_stac.loaders.running.crawl import crawl, inspect_store
from zarr_stac.loaders.running.ledger import Ledger
from zarr_stac.loaders.vocabulary import KERCHUNK, KERCHUNK_PARQUET
from zarr_stac.samples import write_dataset

from .cases import antimeridian

SMN = Path(__file__).resolve().parent.parent / "data" / "references" / "smn-wrf.parq"
METADATA = json.loads((SMN / ".zmetadata").read_text())["metadata"]
COORDINATES = ("x", "y", "lat", "lon")
DATA_CHUNK = 4096  # bytes per synthesised data chunk; never read
START, END = "2022-12-31T12:00:00Z", "2022-12-31T13:00:00Z"  # time refs are inline: [0, 1] hours


def smn_coordinates() -> dict[str, np.ndarray]:
    """x/y centred on the projection origin at DX = DY = 4000 m; lat/lon of every point."""
    attrs = {k: v for k, v in METADATA["Lambert_Conformal/.zattrs"].items() if k != "_ARRAY_DIMENSIONS"}
    shape = METADATA["lat/.zarray"]["shape"]  # time, y, x
    x = ((np.arange(shape[2]) - shape[2] // 2) * 4000.0).astype("f4")
    y = ((np.arange(shape[1]) - shape[1] // 2) * 4000.0).astype("f4")
    to_wgs84 = Transformer.from_crs(CRS.from_cf(attrs), CRS.from_epsg(4326), always_xy=True)
    lon, lat = to_wgs84.transform(*np.meshgrid(x, y))
    return {"x": x, "y": y, "lon": lon.astype("f4"), "lat": lat.astype("f4")}


COORDS = smn_coordinates()
EXPECTED_BBOX = [
    float(COORDS["lon"].min()),
    float(COORDS["lat"].min()),
    float(COORDS["lon"].max()),
    float(COORDS["lat"].max()),
]


def encode(name: str, chunk: np.ndarray) -> bytes:
    """A chunk as zarr v2 stores it with the array's own filters and compressor."""
    meta = METADATA[f"{name}/.zarray"]
    data = np.ascontiguousarray(chunk, dtype=meta["dtype"])
    for spec in meta["filters"] or []:
        data = numcodecs.get_codec(spec).encode(data)
    return bytes(numcodecs.get_codec(meta["compressor"]).encode(data))


def chunk_of(name: str, index: int) -> np.ndarray:
    """Chunk `index` (row of the refs table, C order over the chunk grid) of a coordinate."""
    meta = METADATA[f"{name}/.zarray"]
    grid = [math.ceil(s / c) for s, c in zip(meta["shape"], meta["chunks"])]
    position = np.unravel_index(index, grid)
    slices = tuple(slice(p * c, (p + 1) * c) for p, c in zip(position, meta["chunks"]))
    array = COORDS[name] if COORDS[name].ndim == len(grid) else np.broadcast_to(COORDS[name], meta["shape"])
    return array[slices]


class Blob:
    """The bytes of one synthesised target file, and where each chunk went."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def add(self, data: bytes) -> tuple[int, int]:
        offset = self.buffer.tell()
        self.buffer.write(data)
        return offset, len(data)


def synthesise_targets(target: Callable[[str], str]) -> tuple[dict[str, pd.DataFrame], dict[str, Blob]]:
    """The refs tables with rows rewritten to synthesised files; the files' contents.

    `target(name)` is the URL a file named `name` will have.
    """
    rng = np.random.default_rng(15)
    blobs: dict[str, Blob] = {}
    tables = {}
    for folder in sorted(p for p in SMN.iterdir() if p.is_dir()):
        name = folder.name
        df = pq.read_table(folder / "refs.0.parq").to_pandas()
        for row in df.index[df["path"].notna()]:
            source = df.at[row, "path"].rsplit("/", 1)[1].removesuffix(".nc")
            kind = "coords" if name in COORDINATES else "data"
            blob = blobs.setdefault(f"{source}.{kind}", Blob())
            data = encode(name, chunk_of(name, row)) if kind == "coords" else rng.bytes(DATA_CHUNK)
            offset, size = blob.add(data)
            df.loc[row, ["path", "offset", "size"]] = [target(f"{source}.{kind}"), offset, size]
        tables[name] = df
    return tables, blobs


def parquet_bytes(df: pd.DataFrame, like: Path) -> bytes:
    schema = pq.read_schema(like)
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False), out)
    return out.getvalue()


def json_reference(tables: dict[str, pd.DataFrame], target: Callable[[str], str]) -> dict:
    """The same references in spec v1: `templates` for the file URLs, `gen` for the data chunks.

    synthesise_targets puts data chunk t of the j-th data variable at j * DATA_CHUNK in
    file WRFDETAR_01H_20221231_12_00<t>.data, which one `gen` entry per variable spells.
    """
    refs: dict[str, object] = {key: json.dumps(value) for key, value in METADATA.items()}
    templates = {"u": target("WRFDETAR_01H_20221231_12_00")}
    gen = []
    data_variables = [name for name in tables if name not in COORDINATES and tables[name]["path"].notna().any()]
    for name, df in tables.items():
        if name in data_variables:
            gen.append(
                {
                    "key": name + "/{{t}}.0.0",
                    "url": "{{u}}{{t}}.data",
                    "offset": str(data_variables.index(name) * DATA_CHUNK),
                    "length": str(DATA_CHUNK),
                    "dimensions": {"t": {"stop": 2}},
                }
            )
            continue
        meta = METADATA[f"{name}/.zarray"]
        grid = [math.ceil(s / c) for s, c in zip(meta["shape"], meta["chunks"])]
        for i in range(math.prod(grid)):
            key = f"{name}/" + ".".join(map(str, np.unravel_index(i, grid)))
            row = df.iloc[i]
            if isinstance(row["path"], str):
                assert row["path"].startswith(templates["u"])
                refs[key] = ["{{u}}" + row["path"].removeprefix(templates["u"]), int(row["offset"]), int(row["size"])]
            elif row["raw"] is not None:
                refs[key] = "base64:" + base64.b64encode(row["raw"]).decode()
    return {"version": 1, "templates": templates, "gen": gen, "refs": refs}


STAC_CATALOG = {
    "type": "Catalog",
    "stac_version": "1.1.0",
    "id": "not-a-store",
    "description": "unrelated JSON",
    "links": [],
}


def populate(put: Callable[[str, bytes], None], target: Callable[[str], str]) -> None:
    """A data centre's folder: a Zarr store, a JSON reference, two parquet reference folders
    (one named *.parq, one known by its .zmetadata), unrelated JSON, and the referenced files."""
    tables, blobs = synthesise_targets(target)
    for name, blob in blobs.items():
        put(f"netcdf/{name}", blob.buffer.getvalue())
    for folder in ("refs/smn-parquet.parq", "agg/smn-aggregation"):
        put(f"{folder}/.zmetadata", (SMN / ".zmetadata").read_bytes())
        for name, df in tables.items():
            put(f"{folder}/{name}/refs.0.parq", parquet_bytes(df, SMN / name / "refs.0.parq"))
    put("refs/smn-templates.json", json.dumps(json_reference(tables, target)).encode())
    put("other/catalog.json", json.dumps(STAC_CATALOG).encode())


@pytest.fixture(scope="module")
def local_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("references")

    def put(path: str, data: bytes) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)

    populate(put, lambda name: str(root / "netcdf" / name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), str(root / "zarr" / "east.zarr"))
    return root


@pytest.fixture(scope="module")
def references_bucket(s3_server, storage) -> str:
    s3_server.create_bucket("references", public=True)
    fs = storage.filesystem("s3://references")
    populate(
        lambda path, data: fs.pipe(f"s3://references/{path}", data, ACL="public-read"),
        lambda name: f"s3://references/netcdf/{name}",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(antimeridian(), "s3://references/zarr/east.zarr", storage, public=True)
    return "s3://references"


def by_href(result) -> dict[str, object]:
    assert result.failures == [], result.failures
    return {"/".join(item.assets["zarr"].href.rsplit("/", 2)[-2:]): item for item in result.items}


REFERENCE_STORES = ("refs/smn-parquet.parq", "agg/smn-aggregation", "refs/smn-templates.json")


def check_reference_item(item, storage_options: dict | None) -> None:
    assert item.bbox == pytest.approx(EXPECTED_BBOX, abs=1e-9)
    assert (item.properties["start_datetime"], item.properties["end_datetime"]) == (START, END)
    assert {"HR2", "PP", "T2", "dirViento10", "magViento10"} <= set(item.properties["variables"])
    asset = item.assets["zarr"]
    assert asset.media_type == "application/vnd.zarr+kerchunk"  # a virtual Zarr store (issue 17)
    assert asset.roles == ["data", "virtual", "references"]
    assert asset.extra_fields["xarray:open_kwargs"] == {"engine": "kerchunk", "chunks": {}}
    # What a user does with the published asset:
    options = asset.extra_fields.get("xarray:storage_options")
    if storage_options is not None:
        assert {k: options[k] for k in storage_options} == storage_options
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"], storage_options=options)
    np.testing.assert_array_equal(ds["x"].values, COORDS["x"])
    np.testing.assert_array_equal(ds["y"].values, COORDS["y"])
    np.testing.assert_array_equal(ds["lat"].isel(time=1).values, COORDS["lat"])
    np.testing.assert_array_equal(ds["lon"].isel(time=0).values, COORDS["lon"])
    assert str(ds["time"].values[1])[:19] == END[:19]


def test_folder_crawl_finds_zarr_json_and_parquet_references(local_folder, validator):
    refs = list(discover_stores(str(local_folder)))
    kinds = {Path(r.url).relative_to(local_folder).as_posix(): r.kind for r in refs}
    assert kinds == {
        "zarr/east.zarr": "zarr",
        "refs/smn-templates.json": KERCHUNK,
        "refs/smn-parquet.parq": KERCHUNK_PARQUET,
        "agg/smn-aggregation": KERCHUNK_PARQUET,
    }  # other/catalog.json is no reference: not a store, no failure
    items = by_href(crawl(str(local_folder)))
    assert sorted(items) == sorted([*REFERENCE_STORES, "zarr/east.zarr"])
    for key in REFERENCE_STORES:
        check_reference_item(items[key], None)
        data = json.loads(json.dumps(items[key].to_dict(include_self_link=False, transform_hrefs=False)))
        data.pop("collection")  # published with its collection link; alone, without
        assert validate_object(data, validator) is None, key
    # spec v1 gen is expanded only by fsspec's jinja2 templates: the asset asks for them.
    templates = items["refs/smn-templates.json"].assets["zarr"]
    assert templates.extra_fields["xarray:storage_options"] == {"simple_templates": False}


def test_bucket_crawl_finds_all_three_kinds(references_bucket, storage):
    items = by_href(crawl(references_bucket, storage))
    assert sorted(items) == sorted([*REFERENCE_STORES, "zarr/east.zarr"])
    public = {"remote_protocol": "s3", "remote_options": storage.public(references_bucket)}
    for key in REFERENCE_STORES:
        check_reference_item(items[key], public)
    assert items["zarr/east.zarr"].bbox[0] == 160.0  # the Zarr store beside them is as before


def test_a_rerun_reads_only_the_references_that_have_no_fingerprint(references_bucket, storage):
    """A JSON reference is its own metadata document (one HEAD on a rerun); a parquet
    reference set is read again (its records can change without its .zmetadata)."""
    first = crawl(references_bucket, storage)
    rerun = crawl(references_bucket, storage, previous=Ledger(first.ledger_data()))
    assert rerun.failures == [] and rerun.catalogued == len(first.items)
    unchanged = {entry.url.removeprefix(f"{references_bucket}/") for entry in Ledger(first.ledger_data()).entries()}
    assert unchanged == {"refs/smn-templates.json", "zarr/east.zarr"} and rerun.unchanged == 2
    assert [i.to_dict() for i in rerun.items] == [i.to_dict() for i in first.items]


def test_explicit_inputs_and_inspect(references_bucket, storage, tmp_path):
    parquet = f"{references_bucket}/refs/smn-parquet.parq"
    outcome = inspect_store(parquet, storage)
    assert not isinstance(outcome, StoreFailure), outcome
    assert outcome.item.bbox == pytest.approx(EXPECTED_BBOX, abs=1e-9)
    # A list entry ending in .parq, and a reference folder given as the URL to crawl.
    fs = storage.filesystem(references_bucket)
    # A reference folder whose name does not say so is known by its .zmetadata.
    aggregation = f"{references_bucket}/agg/smn-aggregation"
    outcome = inspect_store(aggregation, storage)
    assert not isinstance(outcome, StoreFailure), outcome
    assert outcome.item.assets["zarr"].media_type == "application/vnd.zarr+kerchunk"
    entries = f"{parquet}\n{references_bucket}/refs/smn-templates.json\n{aggregation}\n"
    fs.pipe(f"{references_bucket}/lists/refs.txt", entries.encode())
    listed = crawl(f"{references_bucket}/lists/refs.txt", storage)
    assert listed.failures == [] and len(listed.items) == 3
    for item in listed.items:
        assert item.bbox == pytest.approx(EXPECTED_BBOX, abs=1e-9)
    folder = crawl(f"{references_bucket}/agg/smn-aggregation", storage)
    assert folder.failures == [] and folder.items[0].bbox == pytest.approx(EXPECTED_BBOX, abs=1e-9)


def test_no_data_chunk_is_read(references_bucket, s3_server):
    with FaultProxy(s3_server.endpoint_url) as proxy:
        result = crawl(f"{references_bucket}/refs", StorageOptions(endpoint_url=proxy.url, anon=True))
        requests = list(proxy.requests)
    assert result.failures == [] and len(result.items) == 2
    gets = [r.path for r in requests if r.method == "GET"]
    assert [p for p in gets if re.search(r"/netcdf/[^/?]+\.data", p)] == [], "data chunks were read"
    assert any(re.search(r"/netcdf/[^/?]+\.coords", p) for p in gets), "coordinates come from the referenced files"


def test_json_references_are_told_from_other_json_by_their_first_bytes():
    from zarr_stac.loaders.finding.references import HEAD_BYTES, looks_like_json_reference

    real = (SMN.parent / "alaska-wrf-single-file.json").read_bytes()[:HEAD_BYTES]
    assert looks_like_json_reference(real)
    # Version 0 (kerchunk README's example layout): Zarr keys at the top level.
    assert looks_like_json_reference(b'{".zgroup": "{\\"zarr_format\\": 2}", "x/.zarray": "{}"}')
    assert looks_like_json_reference(b'{"refs": {".zgroup": "{}"}, "version": 1}')  # version after the refs
    assert not looks_like_json_reference(json.dumps(STAC_CATALOG).encode())
    assert not looks_like_json_reference(b'{"esmcat_version": "0.1.0", "id": "cmip6", "attributes": []}')
    assert not looks_like_json_reference(b'[{"version": 1, "refs": {}}]')  # a list of references is not one store
