"""cf_xarray's `.cf.axes`, `.cf.coordinates` and `.cf.guess_coord_axis()`, computed once per dataset.

cf_xarray answers each of those look-ups by running six mappers over every variable
of the dataset and building a DataArray per coordinate each time; `guess_coord_axis`
asks them again for every coordinate and every name pattern (~144 look-ups for three
coordinates), which made it most of the CPU of mapping a store whose time axis has
no CF attributes (what xarray writes from a pandas index).

Here the same answers come from one pass over the coordinate variables, with
cf_xarray's own criteria, patterns and default attributes. Only the coordinate
criteria (`standard_name`, `units`, `axis`, ...) can contribute then, and each
coordinate's answer depends on its own attributes alone; `classify` returns None
(use cf_xarray itself) whenever anything else could contribute: custom criteria,
SGRID/UGRID/DSG roles, a dataset-wide `coordinates` attribute, cell measures or
grid mappings named like an axis, non-text attribute values, non-text names.
tests/loaders/test_mapping_paths.py compares both on every test store.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Hashable, Mapping, MutableMapping

import numpy as np
import xarray as xr
from cf_xarray import accessor, criteria, utils
from cf_xarray.options import OPTIONS

AXIS_NAMES = accessor._AXIS_NAMES  # noqa: SLF001 - ("X", "Y", "Z", "T")
COORD_NAMES = accessor._COORD_NAMES  # noqa: SLF001 - ("longitude", "latitude", "vertical", "time")
KEYS = AXIS_NAMES + COORD_NAMES
STANDARD_NAME_KEYS = ("latitude", "longitude", "time")


class Classified:
    """Which CF keys each coordinate answers to, as cf_xarray would say."""

    def __init__(self, keys: dict[Hashable, frozenset[str]]):
        self.keys = keys  # {coordinate: keys}, in the dataset's coordinate order

    def _lists(self, names: tuple[str, ...]) -> dict[str, list[Hashable]]:
        found: dict[str, list[Hashable]] = {
            key: [*sorted(str(c) for c, keys in self.keys.items() if key in keys)] for key in names
        }
        return {key: value for key, value in found.items() if value}

    @property
    def axes(self) -> dict[str, list[Hashable]]:
        return self._lists(AXIS_NAMES)

    @property
    def coordinates(self) -> dict[str, list[Hashable]]:
        return self._lists(COORD_NAMES)


def _criteria_attributes() -> set[str]:
    return {attribute for key in KEYS for attribute in criteria.coordinate_criteria[key]}


def _keys_of(attrs: Mapping, data_units: object) -> frozenset[str]:
    """The CF keys one coordinate with these attributes answers to (cf_xarray's `_get_axis_coord`)."""
    found = set()
    for key in KEYS:
        for attribute, expected in criteria.coordinate_criteria[key].items():
            if attrs.get(attribute, None) in expected or (attribute == "units" and data_units in expected):
                found.add(key)
                break
    return frozenset(found)


def _is_key(value: object) -> bool:
    return isinstance(value, str) and value in KEYS


def _simple(ds: xr.Dataset) -> bool:
    """Whether only coordinate criteria on each coordinate's own attributes decide (see module doc)."""
    if OPTIONS["custom_criteria"]:
        return False
    # cf_role, grid-mapping and geometry criteria are keyed by names that are none of KEYS.
    for table in (criteria.cf_role_criteria, criteria.grid_mapping_var_criteria, criteria.geometry_var_criteria):
        if set(table) & set(KEYS):
            return False
    if "coordinates" in ds.attrs or "coordinates" in ds.encoding:
        return False
    attributes = _criteria_attributes()
    coord_names = set(ds.coords)
    for name, var in ds.variables.items():
        if not isinstance(name, str):
            return False
        attrs = var.attrs
        if "cf_role" in attrs or "cf_role" in var.encoding:
            return False  # SGRID topologies add X/Y/Z axes
        # A standard_name "latitude"/"longitude"/"time" is one of the criteria too; "X", "vertical" are not.
        standard_name = attrs.get("standard_name")
        if (_is_key(standard_name) and standard_name not in STANDARD_NAME_KEYS) or _is_key(
            attrs.get("grid_mapping_name")
        ):
            return False
        measures = attrs.get("cell_measures", var.encoding.get("cell_measures"))
        if measures is not None and any(key in str(measures) for key in KEYS):
            return False
        if name not in coord_names and name in ds.dims:
            return False  # a data variable named like a dimension: cf_xarray's lists could hold it
        if name in coord_names:
            for attribute in attributes & set(attrs):
                if not isinstance(attrs[attribute], str):
                    return False
    return True


def classify(ds: xr.Dataset) -> Classified | None:
    """`ds.cf.axes` and `ds.cf.coordinates` in one pass; None when cf_xarray must answer itself."""
    if not _simple(ds):
        return None
    return Classified({name: _keys_of(var.attrs, _data_units(var)) for name, var in ds.coords.variables.items()})


def _data_units(var: xr.Variable) -> object:
    return getattr(var._data, "units", None)  # noqa: SLF001 - cf_xarray's check for pint arrays


def _is_datetime_like(ds: xr.Dataset, name: Hashable, var: xr.Variable) -> bool:
    if np.issubdtype(var.dtype, np.datetime64) or np.issubdtype(var.dtype, np.timedelta64):
        return True
    if var.dtype == np.dtype("O"):
        return utils._is_datetime_like(ds[name])  # noqa: SLF001 - samples (loads) the values, as cf_xarray does
    return False


def guess(ds: xr.Dataset) -> Classified | None:
    """What `ds.cf.guess_coord_axis()` then `.cf.axes`/`.cf.coordinates` would find; None as `classify`."""
    if not _simple(ds):
        return None
    keys: dict[Hashable, frozenset[str]] = {}
    for name, var in ds.coords.variables.items():
        attrs: MutableMapping = var.attrs
        units = _data_units(var)
        found = _keys_of(attrs, units)
        if not (found & set(COORD_NAMES)) and var.ndim == 1 and _is_datetime_like(ds, name, var):
            keys[name] = _keys_of(ChainMap(attrs, accessor.ATTRS["time"]), units)
            continue
        for key, pattern in criteria.regex.items():
            is_axis, is_coord = bool(found & set(AXIS_NAMES)), bool(found & set(COORD_NAMES))
            if (key in AXIS_NAMES and is_axis) or (key in COORD_NAMES and is_coord):
                continue
            if pattern.match(str(name).lower()):
                attrs = dict(ChainMap(attrs, accessor.ATTRS[key]))
                found = _keys_of(attrs, units)
        keys[name] = found
    return Classified(keys)
