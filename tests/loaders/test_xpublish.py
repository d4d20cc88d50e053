"""xpublish servers as a source, against real xpublish servers on loopback.

Each plugin generation that installs beside the pinned stack serves the same two
datasets (tests/loaders/xpublish_server.py, in its own process):

- `zarr-v3`: xpublish 0.5 with the xpublish-zarr plugin (Zarr v3 `zarr.json`), from the venv;
- `zarr-v2`: xpublish 0.4.2's built-in zarr plugin (Zarr v2 `.zmetadata`), installed by
  `make install` with `pip --target` into `.venv/xpublish-0.4` (one venv holds one xpublish)
  and put first on the server's PYTHONPATH.

xpublish <= 0.3 does not run beside zarr 3 (it imports `zarr.meta`, gone in zarr 3).
Expectations come from the served datasets' own coordinates.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from static_catalog.read import read_catalog
from zarr_stac.cli import app
from zarr_stac.loaders.config import CollectionConfig, MappingConfig, SourceConfig
from zarr_stac.loaders.failures import DISCOVERY
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.services import free_port

from ..conftest import PROJECT_ROOT, LiveServer, wait_until_answering

SERVER_SCRIPT = Path(__file__).with_name("xpublish_server.py")
XPUBLISH_04 = Path(sys.prefix) / "xpublish-0.4"  # see the Makefile's install step
GENERATIONS = {"zarr-v3": 3, "zarr-v2": 2}


def served_datasets() -> dict[str, xr.Dataset]:
    sys.path.insert(0, str(SERVER_SCRIPT.parent))
    try:
        from xpublish_server import DATASETS
    finally:
        sys.path.pop(0)
    return {name: make() for name, make in DATASETS.items()}


@contextmanager
def serving(generation: str, log_file: Path) -> Iterator[str]:
    path = [str(PROJECT_ROOT)]
    if generation == "zarr-v2":
        if not (XPUBLISH_04 / "xpublish").is_dir():
            pytest.skip(f"xpublish 0.4.2 is not installed in {XPUBLISH_04} (run `make install`)")
        path.insert(0, str(XPUBLISH_04))
    port = free_port()
    log = log_file.open("w")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    command = [sys.executable, str(SERVER_SCRIPT), str(port), generation]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/datasets", process)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture(scope="module", params=sorted(GENERATIONS))
def xpublish_server(request, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(server URL, generation) of a live xpublish server serving `served_datasets()`."""
    with serving(request.param, tmp_path_factory.mktemp("xpublish") / "server.log") as url:
        yield url, request.param


def expected_bbox(ds: xr.Dataset) -> list[float]:
    lat, lon = ds["lat"].values, ds["lon"].values
    step = abs(float(lon[1] - lon[0]))
    assert lon.size * step >= 360  # the samples are global: the bbox spans every longitude
    return [-180.0, float(lat.min()), 180.0, float(lat.max())]


def expected_interval(ds: xr.Dataset) -> tuple[str, str]:
    bounds = ds["time"].attrs.get("bounds")
    values = ds[bounds].values if bounds else ds["time"].values

    def as_text(t) -> str:  # numpy datetime64, or cftime for a non-standard calendar
        if isinstance(t, np.datetime64):
            return np.datetime_as_string(t, unit="s") + "Z"
        return t.isoformat(timespec="seconds") + "Z"

    return as_text(values.min()), as_text(values.max())


def test_server_datasets_become_items(xpublish_server):
    url, _ = xpublish_server
    result = crawl(url)
    assert result.failures == []
    datasets = served_datasets()
    assert sorted(item.id for item in result.items) == sorted(datasets)
    assert {item.collection_id for item in result.items} == {"datasets"}
    for item in result.items:
        ds = datasets[item.id]
        assert item.bbox == pytest.approx(expected_bbox(ds))
        start, end = expected_interval(ds)
        assert (item.properties["start_datetime"], item.properties["end_datetime"]) == (start, end)
        (asset,) = item.assets.values()
        assert asset.href == f"{url}/datasets/{item.id}/zarr"


def test_asset_opens_over_http_with_the_served_coordinates(xpublish_server):
    url, _ = xpublish_server
    datasets = served_datasets()
    for item in crawl(url).items:
        (asset,) = item.assets.values()
        opened = xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])
        source = datasets[item.id]
        assert set(opened.coords) == set(source.coords)
        for name in source.coords:
            np.testing.assert_array_equal(opened[name].values, source[name].values)
        assert set(opened.data_vars) == set(source.data_vars)


def test_zarr_format_follows_the_generation(xpublish_server):
    from zarr_stac.loaders.finding.xpublish import server_stores

    url, generation = xpublish_server
    refs = server_stores(url)
    assert {ref.zarr_format for ref in refs} == {GENERATIONS[generation]}
    assert sorted(ref.name for ref in refs) == sorted(served_datasets())


def test_configured_server_with_collection(xpublish_server):
    url, _ = xpublish_server
    source = SourceConfig(url=url + "/", server="xpublish", collection=CollectionConfig(id="served"))
    config = MappingConfig(sources=[source])
    result = crawl(config)
    assert result.failures == []
    placed = sorted((item.collection_id, item.id) for item in result.items)
    assert placed == [("served", name) for name in sorted(served_datasets())]


def test_build_from_the_command_line(xpublish_server, tmp_path):
    url, _ = xpublish_server
    out = tmp_path / "stac"
    result = CliRunner().invoke(app, ["build", url + "/", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    _, items = read_catalog(str(out / "catalog.json"))
    assert sorted(item.id for item in items) == sorted(served_datasets())


class NotXpublish:
    """An HTTP server that is neither a Zarr store nor an xpublish server."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        found = scope["path"] == "/datasets"
        body = b'{"datasets": []}' if found else b"not here"  # JSON, but no list of ids
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200 if found else 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_http_url_neither_store_nor_server_is_a_discovery_failure():
    with LiveServer(NotXpublish()) as live:
        result = crawl(live.url)
        configured = crawl(MappingConfig(sources=[SourceConfig(url=live.url, server="xpublish")]))
    assert result.items == [] and [(f.url, f.kind) for f in result.failures] == [(live.url, DISCOVERY)]
    assert "nor an xpublish /datasets list" in result.failures[0].reason
    assert [(f.url, f.kind) for f in configured.failures] == [(f"{live.url}/datasets", DISCOVERY)]
    assert "not an xpublish server" in configured.failures[0].reason


def test_server_field_rejects_unknown_servers():
    with pytest.raises(ValueError, match="server"):
        SourceConfig(url="http://example.org", server="thredds")


def test_listed_dataset_without_zarr_endpoint_is_reported(tmp_path):
    # xpublish without any zarr plugin still lists its datasets: none can be catalogued.
    with serving("none", tmp_path / "server.log") as url:
        result = crawl(url)
    assert result.items == []
    assert [f.kind for f in result.failures] == [DISCOVERY]
    assert result.failures[0].url.startswith(f"{url}/datasets/")
    assert "without a Zarr endpoint" in result.failures[0].reason and "and 1 more" in result.failures[0].reason
    assert not result.complete  # nothing may be pruned from an earlier catalogue
