"""An Item pgstac or PostgreSQL refuses is its store's failure: the load goes on.

The database is real; only the Items are made bad, on the test's side: a time range
that runs backwards (pypgstac refuses it) and a title holding a NUL character (text
PostgreSQL cannot store: `\\u0000 cannot be converted to text`), the second also as
a real store's attribute loaded by the real `zarr-stac load`.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import psycopg
import pytest
import xarray as xr

from stac_api.loading.ingest import Ingest, load
from zarr_stac.loaders.running.crawl import Crawl
from zarr_stac.samples import write_dataset, write_samples

from ..zarr_stac.test_cli_errors import ZARR_STAC, user_env

BACKWARDS = "ModelA.historical.r1i1p1f1.pr.gn"
NUL = "ModelB.ssp585.r1i1p1f1.tas.gn"
GONE = "ModelA.ssp585.r1i1p1f1.tas.gn"  # a store that vanished since the earlier load


def rows(dsn: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(dsn) as conn:
        query = "SELECT collection, id, md5(content::text || geometry::text) FROM pgstac.items"
        return {(c, i): digest for c, i, digest in conn.execute(query)}


def made_bad(item):
    """The Item as pgstac must refuse it (or as it is)."""
    item = item.clone()
    if item.id == BACKWARDS:
        start, end = item.properties["start_datetime"], item.properties["end_datetime"]
        item.properties.update(start_datetime=end, end_datetime=start)
    if item.id == NUL:
        item.properties["title"] = "bad\x00title"
    return item


def test_an_item_pgstac_refuses_is_its_stores_failure_and_nothing_earlier_is_lost(
    pgstac_dsn, sample_config, sample_crawl
):
    earlier = [i for i in sample_crawl.items if i.id in (BACKWARDS, NUL, GONE)]
    load(pgstac_dsn, sample_crawl.collections, earlier)
    before = rows(pgstac_dsn)

    # Batches of 3: each bad Item shares its batch (one transaction) with good ones.
    with Ingest(pgstac_dsn, batch_size=3) as ingest:
        crawl = Crawl(sample_config)
        result = crawl.run(sink=lambda item: None if item.id == GONE else ingest.add(made_bad(item)))
        report = ingest.finish(result.collections, may_delete=result.may_delete)  # as `load --sync` does
        result.reject(report.rejected)

    assert {(r.item_id, r.kind) for r in report.rejected} == {(BACKWARDS, "load-error"), (NUL, "load-error")}
    reasons = {r.item_id: r.reason for r in report.rejected}
    assert "start_datetime must be < end_datetime" in reasons[BACKWARDS]
    assert reasons[NUL].startswith("UntranslatableCharacter: unsupported Unicode escape sequence")
    failures = {f.url: f for f in result.failures}
    assert sorted(failures) == sorted(
        f"{sample_config.sources[0].url}/{item_id.replace('.', '/')}.zarr" for item_id in (BACKWARDS, NUL)
    )
    assert all(f.kind == "load-error" and f.collection_id == "cmip6" for f in failures.values())
    assert not result.may_delete("cmip6") and result.may_delete("ocean")
    assert result.catalogued == 8 and report.items == 7  # the vanished store was not added

    after = rows(pgstac_dsn)
    assert len(after) == 10, "the 7 good Items loaded, the 3 earlier ones kept"
    for key in [("cmip6", BACKWARDS), ("cmip6", NUL), ("cmip6", GONE)]:
        assert after[key] == before[key], f"{key} kept as it was"


# -- the real command ----------------------------------------------------------------------
def zarr_stac_load(cwd: Path, dsn: str, *args: str) -> subprocess.CompletedProcess:
    env = {**user_env(), "DATABASE_URL": dsn}  # the DSN (with its password) never in argv
    return subprocess.run(
        [ZARR_STAC, "load", "src", "--sync", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def loaded_once(tmp_path, pgstac_dsn) -> Path:
    write_samples(str(tmp_path / "src"))
    first = zarr_stac_load(tmp_path, pgstac_dsn)
    assert first.returncode == 0, first.stderr
    return tmp_path


def test_the_cli_reports_a_store_pgstac_refuses_and_loads_the_others(loaded_once, pgstac_dsn):
    cwd = loaded_once
    store = cwd / "src" / "ocean" / "north-atlantic-sst.zarr"
    key = ("ocean", "north-atlantic-sst")
    before = rows(pgstac_dsn)[key]
    bad = xr.open_zarr(store).load()
    # Valid JSON, but no text PostgreSQL can hold (in a unit: a title is plain text, its controls removed).
    bad["thetao"].attrs["units"] = "deg\x00C"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on consolidated metadata in v3
        write_dataset(bad, str(store), zarr_format=3)

    for strict, status in ((False, 0), (True, 1)):
        result = zarr_stac_load(cwd, pgstac_dsn, *(["--strict"] if strict else []))
        output = result.stdout + result.stderr
        assert result.returncode == status, output
        assert "Traceback" not in output, output
        assert f"skipped {store}: load-error: UntranslatableCharacter" in " ".join(output.split()), output
        # The other stores did not change since `loaded_once`: their Items stay as they were
        # (not read, not loaded again); the refused one has no ledger entry, so each run retries it.
        expected = "loaded 3 collection(s) and 0 item(s) into pgstac, 9 unchanged item(s) left as they were, deleted 0"
        assert expected in " ".join(output.split()), output
        assert ("--strict: 1 store(s) skipped" in output) == strict
        after = rows(pgstac_dsn)
        assert after[key] == before, "the earlier version of the refused store's Item is kept"
        assert len(after) == 10
