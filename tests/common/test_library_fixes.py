"""Each library fix names the version it was checked with: an upgrade fails here, the moment
to re-check the fix (still needed? still right?) and to retire it where the library is fixed."""

from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata

import pytest

from zarr_stac.common import library_fixes

FIXES = sorted(m.name for m in pkgutil.iter_modules(library_fixes.__path__))
DISTRIBUTION = {"s3fs": "s3fs", "gcsfs": "gcsfs", "fsspec": "fsspec", "dask_gateway": "dask-gateway"}


def test_every_fix_module_is_of_a_known_library():
    assert FIXES and set(FIXES) <= set(DISTRIBUTION), FIXES


@pytest.mark.parametrize("name", FIXES)
def test_the_installed_library_is_the_one_the_fix_was_checked_with(name):
    checked = importlib.import_module(f"{library_fixes.__name__}.{name}").CHECKED_WITH
    installed = metadata.version(DISTRIBUTION[name])
    assert installed == checked, (
        f"{DISTRIBUTION[name]} {installed} is installed, zarr_stac/common/library_fixes/{name}.py was checked "
        f"with {checked}: re-check each fix there against the new version, retire what it no longer needs, "
        "and update CHECKED_WITH"
    )
