"""With --config, the storage flags typed on the command line reach each source that does not set
its own (docs/mapping-config.md, "Storage flags"); a source's own setting wins.

The S3 server sits behind a recording proxy: the flags' endpoint is the proxy, a source's own
endpoint the server itself, so the requests say which one each source was read through.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.proxy import FaultProxy

ITEM = "ocean/north-atlantic-sst/north-atlantic-sst.json"


@pytest.fixture
def proxy(s3_server):
    with FaultProxy(s3_server.endpoint_url) as running:
        yield running


def published_item(command: str, request, tmp_path, *flags: str) -> dict:
    """The Item of the ocean store as `command` publishes it with `flags`."""
    cli = request.getfixturevalue("cli")
    if command == "build":
        cli("build", *flags, "-o", str(tmp_path / "stac"))
        return json.loads((tmp_path / "stac" / ITEM).read_text())
    dsn = request.getfixturevalue("pgstac_dsn")
    cli("load", *flags, "--dsn", dsn)
    with psycopg.connect(dsn) as conn:  # as the API serves it (hydrated)
        return conn.execute("SELECT pgstac.get_item('north-atlantic-sst', 'ocean')").fetchone()[0]


@pytest.mark.parametrize("command", ["build", "load"])
@pytest.mark.parametrize("own", [False, True], ids=["source-sets-none", "source-sets-its-own"])
def test_storage_flags_reach_the_sources_that_set_none(
    request, sample_bucket, s3_server, proxy, tmp_path, command, own
):
    storage = f"\n    storage: {{endpoint_url: '{s3_server.endpoint_url}', public_anon: false}}" if own else ""
    config = tmp_path / "mapping.yaml"
    config.write_text(f"sources:\n  - url: {sample_bucket}/ocean{storage}\n")
    item = published_item(
        command, request, tmp_path, "--config", str(config), "--endpoint-url", proxy.url, "--public-anon"
    )
    read_through_proxy = any("/ocean/" in r.path for r in proxy.requests)
    published = item["assets"]["zarr"]["xarray:storage_options"]
    if own:
        assert not read_through_proxy, "the source's own endpoint, not the flag's"
        assert published == {"anon": False, "endpoint_url": s3_server.endpoint_url}
    else:
        assert read_through_proxy, "the flag's endpoint"
        assert published == {"anon": True, "endpoint_url": proxy.url}
