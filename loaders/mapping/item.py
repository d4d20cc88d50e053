"""Map one opened Zarr store to one STAC Item.

xstac builds `cube:dimensions` and `cube:variables`; this module completes what it
leaves out (bbox and geometry, calendar-aware extents and ISO 8601 steps, the
Zarr chunk shape, nodata and data types, vertical and other dimensions) and adds
the asset that xarray opens.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import cf_xarray  # noqa: F401 - registers the .cf accessor
import numpy as np
import pystac
import xarray as xr
import xstac
from pystac.extensions.datacube import DatacubeExtension
from pystac.extensions.projection import ProjectionExtension

from zarr_stac.common import spatial
from zarr_stac.common.stac import RESERVED_PROPERTIES
from zarr_stac.common.values import plain

from ..config import SourceConfig
from ..failures import MISSING_COORDINATES, NO_COORDINATES, NO_TIME, TOO_LARGE, UNDECODABLE_TIME
from ..limits import coordinate_problem, limit_bytes
from ..markup import markdown_text, plain_text
from ..reading.codecs import codec_names
from ..reading.open import OpenedStore, has_stored_chunk
from . import axes as axes_module
from . import forecast, temporal
from .assets import ASSET_KEY, add_access, build_asset  # noqa: F401 - build_asset: the asset alone
from .embedded_stac import embedded_stac
from .grid import Grid, GridError, NotPositions, declared_box_notes, describe_grid

# Datacube v2.3 adds `nodata` and `data_type` to variables, which we publish.
DATACUBE_SCHEMA = "https://stac-extensions.github.io/datacube/v2.3.0/schema.json"

DATA_TYPES = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
}  # fmt: skip


class MappingError(ValueError):
    """A store whose metadata cannot become a valid Item; the message says why."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Axes:
    """Names of a dataset's CF axes, as cf_xarray identifies them."""

    time: str | None
    x: str | None
    y: str | None
    longitude: str | None
    latitude: str | None


def _first(names: list[str] | None, ds: xr.Dataset, *, dimension: bool = False) -> str | None:
    for name in names or []:
        if not dimension or name in ds.dims:
            return name
    return None


# False: every CF look-up through cf_xarray itself (the reference the fast paths are tested against).
FAST_AXES = True


def cf_axes(ds: xr.Dataset) -> tuple[dict, dict]:
    """`ds.cf.axes` and `ds.cf.coordinates` (loaders.mapping.axes computes them in one pass when it can)."""
    found = axes_module.classify(ds) if FAST_AXES else None
    if found is not None:
        return found.axes, found.coordinates
    return ds.cf.axes, ds.cf.coordinates


def guessed_axes(ds: xr.Dataset) -> tuple[dict, dict]:
    """`.cf.axes` and `.cf.coordinates` of `ds.cf.guess_coord_axis()`."""
    found = axes_module.guess(ds) if FAST_AXES else None
    if found is not None:
        return found.axes, found.coordinates
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guessed = ds.cf.guess_coord_axis()
    return guessed.cf.axes, guessed.cf.coordinates


def find_axes(ds: xr.Dataset) -> Axes:
    """Axes from CF attributes (axis, standard_name, units); names alone only as a fallback."""
    axes, coords = cf_axes(ds)
    if not (coords.get("longitude") or axes.get("X")) or not (coords.get("time") or axes.get("T")):
        axes, coords = guessed_axes(ds)
    time = _first(axes.get("T"), ds, dimension=True) or _first(coords.get("time"), ds, dimension=True)
    longitude = _first(coords.get("longitude"), ds)
    latitude = _first(coords.get("latitude"), ds)
    x = _first(axes.get("X"), ds, dimension=True)
    y = _first(axes.get("Y"), ds, dimension=True)
    if x is None and longitude in ds.dims:
        x = longitude
    if y is None and latitude in ds.dims:
        y = latitude
    return Axes(time=time, x=x, y=y, longitude=longitude, latitude=latitude)


def horizontal_hints(axis: str, coord: xr.DataArray) -> dict[str, Any]:
    """xstac's extent and step for one 1-D x/y coordinate, computed with numpy.

    Same rule as xstac: a step only when there are at least three values, equally spaced.
    """
    values = np.asarray(coord.values)
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    hints: dict[str, Any] = {
        f"{axis}_extent": [json_value(finite.min()), json_value(finite.max())] if finite.size else None
    }
    deltas = np.diff(values)
    hints[f"{axis}_step"] = json_value(deltas[0]) if deltas.size > 1 and np.all(deltas[0] == deltas[1:]) else False
    return hints


def json_value(value: Any) -> Any:
    """A numpy/python scalar as plain JSON (NaN and infinities as the strings STAC uses)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):  # |S1 variables born in NetCDF (`crs`, fill value b"")
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


# What a catalogue's property is renamed to when its own name is not free (see `catalogue_properties`).
CATALOGUE_PREFIX = "catalogue:"


def catalogue_properties(
    given: dict[str, Any], computed: dict[str, Any], notes: list[str] | None = None
) -> dict[str, Any]:
    """What a catalogue (CSV and ESM columns, intake metadata and parameters, path-template
    fields) adds to an Item's `computed` properties: it adds, it never replaces.

    A name STAC or pgstac reserves (`RESERVED_PROPERTIES`), an extension field (`proj:code`,
    `cube:variables`...: zarr-stac declares the extensions of the fields it writes, nothing
    else may claim them) or one the mapping computed from the store (`title`, `variables`)
    is kept as `catalogue:<name>`, with a note. `description` is the catalogue's description
    of the store, which the Item's description begins with.
    """
    added: dict[str, Any] = {}
    for name, value in given.items():
        if name not in RESERVED_PROPERTIES and ":" not in name and name not in computed:
            added[name] = value
            continue
        renamed = CATALOGUE_PREFIX + name
        if renamed in given or renamed in added:
            if notes is not None:
                notes.append(
                    f"catalogue property {plain_text(name, 80)!r} is reserved and {renamed!r} is taken: dropped"
                )
            continue
        added[renamed] = value
        if notes is not None:
            notes.append(
                f"catalogue property {plain_text(name, 80)!r} is reserved: kept as {plain_text(renamed, 90)!r}"
            )
    return added


def is_all_fill(group, name: str, cached=None) -> tuple[bool, Any]:
    """Whether array `name` holds nothing but its fill value (absent chunks read as fill), and that fill.

    `cached`: the array's `read.CachedCoordinate`, when it was read already."""
    if cached is None and (group is None or name not in group):
        return False, None
    array = group[name] if cached is None else cached.array
    if array.dtype.kind not in "iufcMm":
        return False, None
    raw = np.asarray(array[...] if cached is None else cached.values())
    if raw.size == 0:
        return False, None
    if raw.dtype.kind in "fc" and np.isnan(raw).all():
        return True, "nan"
    # Zarr v2 `null` fill: absent chunks read as zeros.
    fill = np.asarray(0 if array.metadata.fill_value is None else array.metadata.fill_value, dtype=raw.dtype)
    # Values equal to the fill are values when a chunk holds them: absent means no chunk stored.
    return bool(np.all(raw == fill)) and not has_stored_chunk(array), plain(fill[()])


def check_extent_coordinates(opened: OpenedStore, names: Sequence[str | None], limit: int | None = None) -> None:
    """The coordinates the extents come from must hold values: a store whose lon/lat, x/y or time
    chunks are absent (or all fill) would otherwise become a degenerate bbox or 1970 dates.
    Other arrays may legitimately be all fill (Zarr omits such chunks) and are not checked.
    Each is first checked to hold at most `limit` bytes decoded (it may be a data variable
    cf_xarray took for a coordinate, which `read` did not check)."""
    ds = opened.dataset
    checked: list[str] = []
    for name in names:
        if name and name in ds.variables:
            checked.append(name)
            bounds = ds[name].attrs.get("bounds") or ds[name].encoding.get("bounds")
            if bounds and bounds in ds.variables:
                checked.append(str(bounds))
    for name in checked:
        variable = ds.variables[name]
        if limit is not None:
            dtype = variable.dtype
            if problem := coordinate_problem(name, variable.shape, dtype.itemsize or 8, dtype.name, limit):
                raise MappingError(TOO_LARGE, problem)
        empty, fill = is_all_fill(opened.group, name, opened.cached.get(name))
        if empty:
            reason = f"coordinate {name!r} has no values: its chunks are absent or all fill ({fill!r})"
            raise MappingError(MISSING_COORDINATES, reason)


def _data_type(dtype: np.dtype) -> str:
    name = np.dtype(dtype).name
    return name if name in DATA_TYPES else {"complex64": "cfloat32", "complex128": "cfloat64"}.get(name, "other")


def bounds_variables(ds: xr.Dataset) -> set[str]:
    """Names of CF cell-bounds variables (`time_bnds`, `lat_bnds`, ...)."""
    return {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs} & set(map(str, ds.variables))


def complete_variables(cube_variables: dict[str, dict], ds: xr.Dataset) -> None:
    """Replace xstac's raw `attrs` copy and dask chunks with the fields STAC readers use."""
    bounds = bounds_variables(ds)
    for name, var in cube_variables.items():
        source = ds.variables[name]
        var.pop("attrs", None)
        if name in bounds:
            var["type"] = "auxiliary"
        encoding = source.encoding
        if encoding.get("chunks") is not None:
            var["chunks"] = [int(c) for c in encoding["chunks"]]
        var["shape"] = [int(s) for s in source.shape]
        var["data_type"] = _data_type(encoding.get("dtype", source.dtype))
        # What a reader must have installed to decode the chunks (e.g. a numcodecs plugin).
        codecs = [*(encoding.get("filters") or ()), encoding.get("serializer"), *(encoding.get("compressors") or ())]
        if names := codec_names(codecs):
            var["codecs"] = names
        fill = encoding.get("_FillValue", source.attrs.get("_FillValue", source.attrs.get("missing_value")))
        # Datacube's nodata is a number or nan/inf: a byte-string fill (b"" of a |S1 crs) has none.
        if fill is not None and np.ndim(fill) == 0 and (nodata := json_value(fill)) not in ("", None):
            if isinstance(nodata, int | float) or nodata in ("nan", "inf", "-inf"):
                var["nodata"] = nodata
        for key in ("standard_name", "long_name", "cell_methods"):
            if key in source.attrs:
                var[key] = str(source.attrs[key])
        if "units" in source.attrs:
            var["unit"] = str(source.attrs["units"])


def extra_dimensions(ds: xr.Dataset, axes: Axes, skip: AbstractSet[str] = frozenset()) -> dict[str, dict]:
    """`cube:dimensions` entries for dimensions other than time/x/y (levels, members, ...)
    and those in `skip` (already described, e.g. a forecast's reference and lead times)."""
    dims: dict[str, dict] = {}
    vertical = set(cf_axes(ds)[0].get("Z", []))
    bounds = bounds_variables(ds)
    non_bounds_dims = {d for name, v in ds.variables.items() if name not in bounds for d in v.dims}
    for dim in ds.dims:
        if dim in (axes.time, axes.x, axes.y) or dim in skip:
            continue
        entry: dict[str, Any] = {}
        # Not `ds.coords.get(dim)`: for a dimension without a coordinate xarray makes one of
        # 0..n-1 (400 MB for the cells of a zoom-11 HEALPix grid).
        coord = ds.coords[dim] if dim in ds.coords else None
        if coord is not None and coord.ndim == 1 and coord.size:
            values = np.asarray(coord.values)
            if values.dtype.kind in "iuf":
                finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
                if finite.size:
                    entry["extent"] = [json_value(finite.min()), json_value(finite.max())]
            elif values.dtype.kind in "OUS" and values.size <= 100:
                entry["values"] = [json_value(v) if isinstance(v, bytes) else str(v) for v in values]
            if "units" in coord.attrs:
                entry["unit"] = str(coord.attrs["units"])
            if "long_name" in coord.attrs:
                entry["description"] = str(coord.attrs["long_name"])
        if dim in vertical or (coord is not None and "positive" in coord.attrs):
            entry.update(type="spatial", axis="z")
        else:
            # Additional dimensions take their name as type; the vertex dimension of
            # CF bounds variables is "bounds".
            entry["type"] = str(dim) if dim in non_bounds_dims else "bounds"
            if "extent" not in entry and "values" not in entry:
                entry["extent"] = [0, int(ds.sizes[dim]) - 1]
        dims[str(dim)] = entry
    return dims


def add_projection(item: pystac.Item, grid: Grid) -> None:
    """Projection extension fields for grids with a CRS of their own."""
    if grid.crs is None:
        return
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = grid.crs.to_epsg()
    if epsg is not None:
        proj.code = f"EPSG:{epsg}"
    else:
        # Another authority's code, as the store declared it (IAU_2015:..., OGC:...), else none.
        proj.code = grid.crs_code
        proj.wkt2 = grid.crs.to_wkt()
        proj.projjson = grid.crs.to_json_dict()
    if grid.native_bbox is not None:
        proj.bbox = grid.native_bbox
    if grid.shape is not None:
        proj.shape = grid.shape
    if grid.affine is not None:
        proj.transform = list(grid.affine.transform)


def store_to_item(
    opened: OpenedStore,
    *,
    item_id: str,
    collection_id: str | None = None,
    source: SourceConfig | None = None,
    properties: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> pystac.Item:
    """The Item for one store. Raises `MappingError` saying what is missing.

    `properties` come from the store's catalogue (see `catalogue_properties`); `notes` gets
    a line for each value of the store or catalogue that was dropped, replaced or renamed."""
    source = source or SourceConfig(url=opened.ref.url)
    ds = opened.dataset
    axes = find_axes(ds)
    run = forecast.find_forecast(ds)
    spatial_names = [axes.longitude, axes.latitude] if axes.longitude and axes.latitude else [axes.x, axes.y]
    time_names = [run.reference, run.valid or run.lead] if run is not None else [axes.time]
    check_extent_coordinates(opened, [*spatial_names, *time_names], limit_bytes(source.storage.max_coordinate_mb))
    try:
        grid = describe_grid(ds, longitude=axes.longitude, latitude=axes.latitude, x=axes.x, y=axes.y)
    except NotPositions as exc:
        raise MappingError(MISSING_COORDINATES, str(exc)) from exc
    except GridError as exc:
        raise MappingError(NO_COORDINATES, str(exc)) from exc
    # A STAC Item the store carries (EOPF's stac_discovery): hints, which the store's own metadata overrule.
    embedded = embedded_stac(ds.attrs)
    if notes is not None:
        notes.extend(declared_box_notes(grid, embedded))
    if run is None and axes.time is None and (embedded is None or embedded.start is None):
        reason = "no time coordinate recognised (CF axis 'T', standard_name 'time' or time units)"
        raise MappingError(NO_TIME, reason + ", nor datetimes in an embedded STAC Item")
    try:
        if run is not None:
            # Forecast archives: the extent is that of the valid times, not of the runs.
            start, end = forecast.valid_extent(ds, run)
            time_dimensions = forecast.dimensions(ds, run)
        elif axes.time is None:  # the store says when only in its embedded STAC Item (EOPF products)
            # Checked above (no time at all is NO_TIME); an embedded Item's start comes with its end.
            assert embedded is not None and embedded.start is not None and embedded.end is not None
            start, end, time_dimensions = embedded.start, embedded.end, {}
        else:
            start, end = temporal.time_extent(ds, axes.time)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MappingError(UNDECODABLE_TIME, str(exc)) from exc

    item_properties: dict[str, Any] = {
        "start_datetime": temporal.isoformat(start),
        "end_datetime": temporal.isoformat(end),
    }
    if ds.attrs.get("title"):
        item_properties["title"] = plain_text(ds.attrs["title"])
    # The data variables' names, as a plain property: searchable and filterable
    # (CQL2 `a_contains(variables, ['tas'])`), which cube:variables' keys are not.
    item_properties["variables"] = sorted(str(name) for name in ds.data_vars if name not in bounds_variables(ds))
    if run is not None:
        item_properties.update(forecast.properties(ds, run))
    if grid.healpix is not None:
        item_properties.update(grid.healpix.properties())
    item_properties.update(source.properties)
    item_properties.update(catalogue_properties(properties or {}, item_properties, notes))
    if embedded is not None:  # where neither the store, its configuration nor its catalogue says
        hints = {**({"title": embedded.title} if embedded.title else {}), **embedded.properties}
        item_properties.update({k: v for k, v in hints.items() if k not in item_properties})
    if isinstance(item_properties.get("title"), str):  # plain text (a catalogue's, when the store has none)
        item_properties["title"] = plain_text(item_properties["title"])
    template = pystac.Item(
        id=item_id,
        geometry=spatial.bbox_to_geometry(grid.bbox),
        bbox=grid.bbox,
        datetime=None,
        properties=item_properties,
        collection=collection_id,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        item = xstac.xarray_to_stac(
            ds,
            template,
            # The time dimension is ours (calendar-aware extent, ISO 8601 step); x/y
            # extents and steps come precomputed with numpy, which is what xstac would
            # compute through xarray reductions at several times the cost per store.
            temporal_dimension=False,
            x_dimension=grid.x or False,
            y_dimension=grid.y or False,
            **(horizontal_hints("x", ds[grid.x]) if grid.x and not grid.affine else {}),
            **(horizontal_hints("y", ds[grid.y]) if grid.y and not grid.affine else {}),
            **grid.axis_hints(),  # an affine grid's, from its transform (it has no x/y arrays)
            reference_system=grid.reference_system,
            validate=False,
        )
    item.collection_id = collection_id
    cube = DatacubeExtension.ext(item)
    if run is None and axes.time is not None:
        extent = [item_properties["start_datetime"], item_properties["end_datetime"]]
        time_dimension: dict[str, Any] = {"type": "temporal", "extent": extent}
        if ds[axes.time].attrs.get("long_name"):
            time_dimension["description"] = str(ds[axes.time].attrs["long_name"])
        if step := temporal.time_step(ds, axes.time):
            time_dimension["step"] = step
        time_dimensions = {axes.time: time_dimension}
    dimensions = item.properties["cube:dimensions"] = {**time_dimensions, **item.properties.get("cube:dimensions", {})}
    for name in (grid.x, grid.y):
        if name and grid.crs is not None and grid.kind != "regular" and "units" in ds[name].attrs:
            dimensions[name]["unit"] = str(ds[name].attrs["units"])
    described = Axes(axes.time, grid.x, grid.y, axes.longitude, axes.latitude)
    dimensions.update(extra_dimensions(ds, described, skip=set(time_dimensions)))
    if grid.healpix is not None:
        dimensions[grid.healpix.dimension] = grid.healpix.dimension_entry(ds)
    complete_variables(item.properties["cube:variables"], ds)
    # Datacube descriptions are CommonMark; a store's long_name or description is text.
    for entry in (*dimensions.values(), *item.properties["cube:variables"].values()):
        if entry.get("description") is not None:
            entry["description"] = markdown_text(entry["description"])
    item.stac_extensions = [DATACUBE_SCHEMA if u == cube.get_schema_uri() else u for u in item.stac_extensions]
    add_projection(item, grid)
    if "forecast:reference_datetime" in item.properties:
        item.stac_extensions.append(forecast.FORECAST_SCHEMA)

    # The asset, `store` link, storage schemes and description (loaders.mapping.assets).
    add_access(item, opened, source, title=plain_text(ds.attrs.get("title") or item_id), fields=item_properties)
    # Whatever a store's metadata held (bytes, numpy values, NaN, huge integers), the Item is plain JSON.
    item.properties = plain(item.properties, notes, "properties") or {}
    return item
