"""Serving and loading are two subsystems that share only `stac_api.db` (and the index
it migrates, `stac_api.search_order`): neither imports the other."""

import json
import subprocess
import sys

import pytest


def stac_api_modules_after_importing(module: str) -> set[str]:
    # A fresh interpreter: this one has imported everything already.
    code = f"import json, sys, {module}; print(json.dumps(sorted(m for m in sys.modules if m.startswith('stac_api'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    ("entry", "other"),
    [("stac_api.app", "stac_api.loading"), ("stac_api.loading.ingest", "stac_api.serving")],
)
def test_serving_and_loading_never_import_each_other(entry, other):
    imported = stac_api_modules_after_importing(entry)
    assert entry in imported
    assert not {m for m in imported if m == other or m.startswith(other + ".")}, imported
