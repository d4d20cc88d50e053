# Two commands do everything on a fresh Debian 12 machine:
#   make demo   - catalogue sample Zarr stores and serve a STAC API + static catalogue
#   make test   - run the test suite (what CI runs, via .ci/run)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck install postgis swift bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	# xpublish 0.4's Zarr v2 endpoints, for tests/loaders/test_xpublish.py: beside (not in)
	# the venv, which holds xpublish 0.5; its dependencies are the venv's.
	$(BIN)/pip install --quiet --no-deps --target $(VENV)/xpublish-0.4 xpublish==0.4.2
	touch $(STAMP)

install: $(STAMP)

# PostGIS for the local PostgreSQL: installed with apt when root, otherwise the
# exact command to run is printed.
postgis: install
	$(BIN)/zarr-stac db ensure-postgis

# OpenStack Swift (with its S3 API) and memcached for the Swift tests: installed
# with apt when root, otherwise the exact command to run is printed.
swift: install
	$(BIN)/python -m zarr_stac.services.swift

demo: postgis
	$(BIN)/zarr-stac demo

# Lint and format are checked before the tests (ruff, configured in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Types are checked by mypy (configured in pyproject.toml; see .ci/typecheck).
typecheck: install
	bash .ci/typecheck

# The suite on $(WORKERS) pytest-xdist workers, a test file to a worker at a time (its
# module fixtures run once), files with slow tests first (tests/conftest.py orders them);
# each worker starts its own services on free ports in its own temporary folders.
# A tier alone: `$(BIN)/pytest -m "not swift and not slow"` (markers in pyproject.toml).
WORKERS ?= 2
test: lint typecheck postgis swift
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder

bench: postgis
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .data
