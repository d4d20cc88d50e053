"""The `zarr-stac` command line against the real S3 server and pgstac."""

import json

import psycopg
import pytest

from static_catalog.validate import validate_object

from ..conftest import SCHEMA_DIR


def test_crawl_lists_every_store(cli, sample_bucket):
    result = cli("crawl", sample_bucket, *cli.endpoint)
    assert result.output.count("s3://samples/") == 10
    assert "10 store(s) in s3://samples" in result.output


def test_build_then_validate(cli, sample_bucket, tmp_path):
    out = tmp_path / "stac"
    result = cli("build", sample_bucket, "-o", str(out), *cli.endpoint, "--public-anon")
    # 17 STAC objects (items, collections and their snapshots, root) and the ledger
    assert "catalogued" in result.output and "18 written" in result.output
    result = cli("validate", str(out), "--schemas", str(SCHEMA_DIR))
    assert "14 object(s) checked, 0 invalid" in result.output


def test_load_from_a_static_catalogue_and_from_a_crawl(cli, sample_bucket, tmp_path, pgstac_dsn):
    out = tmp_path / "stac"
    cli("build", sample_bucket, "-o", str(out), *cli.endpoint, "--public-anon")
    result = cli("load", str(out), "--dsn", pgstac_dsn)
    assert "loaded 3 collection(s) and 10 item(s)" in result.output
    # The same stores, crawled directly: an upsert, nothing duplicated.
    cli("load", sample_bucket, "--dsn", pgstac_dsn, *cli.endpoint, "--public-anon")
    with psycopg.connect(pgstac_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM pgstac.collections").fetchone()[0] == 3
    password = pgstac_dsn.split(":")[2].split("@")[0]
    assert password not in result.output


def test_inspect_prints_one_item(cli, sample_bucket):
    result = cli("inspect", f"{sample_bucket}/ocean/north-atlantic-sst.zarr", *cli.endpoint)
    item = json.loads(result.stdout)
    assert item["id"] == "north-atlantic-sst"
    assert item["bbox"] == [-80.0, 0.0, 0.0, 60.0]


def test_inspect_prints_the_collection_a_store_forms(cli, sample_bucket, validator):
    result = cli("inspect", f"{sample_bucket}/ocean/north-atlantic-sst.zarr", *cli.endpoint, "--collection")
    collection = json.loads(result.stdout)
    assert collection["type"] == "Collection"
    assert collection["extent"]["spatial"]["bbox"] == [[-80.0, 0.0, 0.0, 60.0]]
    assert validate_object(collection, validator) is None


def test_inspect_explains_a_non_store(cli, sample_bucket):
    result = cli("inspect", f"{sample_bucket}/cmip6", *cli.endpoint, expect=1)
    assert "not-found" in result.output and "No group found" in result.output


def test_broken_store_is_skipped_and_strict_fails(cli, empty_bucket, storage, tmp_path):
    from zarr_stac.samples import era_like_daily, write_dataset

    write_dataset(era_like_daily(), f"{empty_bucket}/good/a.zarr", storage)
    fs = storage.filesystem(empty_bucket)
    fs.pipe(f"{empty_bucket}/good/broken.zarr/.zgroup", b"{not json")
    result = cli("build", empty_bucket, "-o", str(tmp_path / "stac"), *cli.endpoint, "--strict", expect=1)
    assert "skipped: corrupt-metadata" in result.output
    assert f"{empty_bucket}/good/broken.zarr" in result.output
    assert (tmp_path / "stac" / "good" / "a" / "a.json").exists(), "the good store is still catalogued"


def test_build_with_a_mapping_config(cli, sample_bucket, s3_server, tmp_path):
    config = tmp_path / "mapping.yaml"
    config.write_text(
        f"""
catalog: {{id: demo-centre, title: Demo centre}}
sources:
  - url: {sample_bucket}/cmip6
    storage: {{endpoint_url: {s3_server.endpoint_url}, public_anon: true}}
    path_template: "{{source_id}}/{{experiment_id}}/{{member_id}}/{{variable_id}}/{{grid_label}}"
    collection: {{id: "cmip6-{{variable_id}}", title: "CMIP6 {{variable_id}}"}}
"""
    )
    out = tmp_path / "stac"
    cli("build", "--config", str(config), "-o", str(out), "--strict")
    root = json.loads((out / "catalog.json").read_text())
    assert (root["id"], root["title"]) == ("demo-centre", "Demo centre")
    assert sorted(link["href"].split("/")[1] for link in root["links"] if link["rel"] == "child") == [
        "cmip6-pr",
        "cmip6-tas",
    ]
    assert json.loads((out / "cmip6-tas" / "collection.json").read_text())["title"] == "CMIP6 tas"
    item = json.loads(
        (out / "cmip6-tas" / "ModelB.ssp585.r1i1p1f1.tas.gn" / "ModelB.ssp585.r1i1p1f1.tas.gn.json").read_text()
    )
    assert (
        item["properties"]["variable_id"],
        item["properties"]["experiment_id"],
        item["properties"]["grid_label"],
    ) == ("tas", "ssp585", "gn")


def test_invalid_config_is_a_clear_error(cli, tmp_path):
    config = tmp_path / "mapping.yaml"
    config.write_text("sources:\n  - url: s3://x\n    colection: {}\n")
    result = cli("build", "--config", str(config), "-o", str(tmp_path / "out"), expect=2)
    assert (
        "invalid configuration" in result.output
        and "sources.0.colection: Extra inputs are not permitted" in result.output
    )


def test_url_and_config_are_exclusive(cli, tmp_path):
    result = cli("build", "-o", str(tmp_path / "out"), expect=2)
    assert "give either a URL to crawl or --config FILE" in result.output


def test_load_sync_removes_a_deleted_store(cli, empty_bucket, storage, pgstac_dsn):
    from zarr_stac.samples import era_like_daily, write_dataset

    for name in ("keep", "drop"):
        write_dataset(era_like_daily(), f"{empty_bucket}/era/{name}.zarr", storage)
    cli("load", empty_bucket, "--dsn", pgstac_dsn, *cli.endpoint)
    storage.filesystem(empty_bucket).rm(f"{empty_bucket}/era/drop.zarr", recursive=True)
    result = cli("load", empty_bucket, "--dsn", pgstac_dsn, *cli.endpoint, "--sync")
    assert "deleted 1 item(s) of stores that are gone" in result.output
    with psycopg.connect(pgstac_dsn) as conn:
        assert [row[0] for row in conn.execute("SELECT id FROM pgstac.items")] == ["keep"]


UNREACHABLE = "postgresql://zarr:planted-db-password@127.0.0.1:{port}/catalogue"


@pytest.mark.parametrize("command", [["db", "migrate"], ["load", "never-read"]], ids=["migrate", "load"])
def test_an_unreachable_database_is_one_clear_line(cli, command):
    from zarr_stac.services import free_port

    dsn = UNREACHABLE.format(port=free_port())  # nothing listens there
    result = cli(*command, "--dsn", dsn, expect=1)
    assert f"the database at 127.0.0.1:{dsn.split(':')[3].split('/')[0]}/catalogue failed" in result.output
    assert "rerun" in result.output
    assert "planted-db-password" not in result.output and "Traceback" not in result.output


def test_transactions_without_a_token_refuse_to_serve(cli, monkeypatch):
    monkeypatch.setenv("ENABLE_TRANSACTIONS_EXTENSIONS", "true")
    monkeypatch.delenv("TRANSACTIONS_TOKEN", raising=False)
    result = cli("serve", "--dsn", UNREACHABLE.format(port=1), expect=2)
    assert "TRANSACTIONS_TOKEN is not set" in result.output
    assert "planted-db-password" not in result.output and "Traceback" not in result.output


def test_the_command_line_starts_without_the_heavy_libraries():
    """`zarr-stac --help` answers at once: xarray, s3fs, pystac and pydantic load only
    for the commands that use them (a deterministic stand-in for 'under 1 s')."""
    import subprocess
    import sys

    code = (
        "import sys, zarr_stac.cli; "
        "print(sorted(m for m in ('xarray', 's3fs', 'pystac', 'pydantic', 'zarr') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
