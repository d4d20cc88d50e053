"""The suite's tiers: markers from the services a test uses, and a missing service skipped
with its reason, except under CI=true, where it fails.

Each case runs pytest in its own process on two probe tests, one asking for a pgstac
database and one asking for nothing, with this suite's conftest and configuration.
PostgreSQL is made missing the way a machine without it is: `ZARR_STAC_PG_BINDIR`
pointing at a folder with no server binaries.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import PROJECT_ROOT

PROBES = """
def test_uses_postgres(pgstac_dsn):
    pass


def test_uses_nothing():
    pass
"""

CASES = {
    "PostGIS missing: its tier is skipped with the reason": (
        {"ZARR_STAC_PG_BINDIR": "/nonexistent"},
        [],
        ["1 passed, 1 skipped", "postgres tier: ZARR_STAC_PG_BINDIR=/nonexistent holds no pg_ctl"],
    ),
    "PostGIS missing under CI=true: its tests fail": (
        {"ZARR_STAC_PG_BINDIR": "/nonexistent", "CI": "true"},
        [],
        ["1 passed, 1 error", "CI=true and a postgres test cannot run: ZARR_STAC_PG_BINDIR=/nonexistent"],
    ),
    "a tier left out with -m": ({}, ["-m", "not postgres"], ["1 passed, 1 deselected"]),
}


@pytest.mark.parametrize(("environment", "args", "expected"), CASES.values(), ids=CASES.keys())
def test_tiers(tmp_path, environment, args, expected):
    (tmp_path / "test_probes.py").write_text(PROBES)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ZARR_STAC_PG_BINDIR", "PYTEST_ADDOPTS")}
    command = [sys.executable, "-m", "pytest", "-c", str(PROJECT_ROOT / "pyproject.toml"), "-p", "tests.conftest"]
    command += ["-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist", *args, str(tmp_path / "test_probes.py")]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env={**env, **environment}, capture_output=True, text=True, timeout=240
    )
    for text in expected:
        assert text in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
