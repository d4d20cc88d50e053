"""One Item for a hierarchical store: a Zarr hierarchy whose arrays live in groups.

EOPF products (`measurements/reflectance/r10m`, `conditions/gcp`, one group per polarisation),
DataTrees (`pressure_level` beside the surface fields), pyramids. The rule:

- where: the finest grid of the hierarchy, the group whose horizontal coordinates (longitude/
  latitude, x/y, HEALPix cells) span the most cells; its bbox and `proj:*` are the Item's. When
  that grid cannot be placed (x/y without a CRS, absent coordinate chunks) the store fails,
  naming the group: a coarser grid elsewhere (an EOPF product's meteorological grid) is no
  footprint of the data;
- when: that group's own time, else the datetimes of the STAC Item the root embeds (EOPF's
  `stac_discovery`: the acquisition), else the union of the times of every group that has one;
- what: `cube:variables` holds every variable of every group, named by its path
  (`measurements/reflectance/r10m/b04`); `cube:dimensions` every dimension, named by the group
  that defines it (`pressure_level/pressure_level`). A group's dimension that an ancestor has
  too, of the same size and values (DataTree's inherited coordinates), is the ancestor's;
- access: the store's `zarr` asset opens the whole tree (`xr.open_datatree`), and each group
  holding data variables has an asset of its own, its href the group's URL;
- a pyramid (see `multiscales`) is one dataset: each variable from the finest level holding
  it, one asset for the pyramid's group (opening its finest level), the levels listed there.

The Item is that of the finest grid's group (`item.store_to_item`, with the time of another
group when it has none), completed with the other groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pystac
import xarray as xr

from zarr_stac.common.values import plain

from ..config import SourceConfig
from ..failures import NO_COORDINATES, NO_TIME, UNDECODABLE_TIME
from ..limits import limit_bytes
from ..markup import markdown_text, plain_text
from ..reading.metadata import node_path
from ..reading.open import OpenedStore
from . import forecast, multiscales, temporal
from .assets import add_group_asset, is_reference
from .embedded_stac import EMBEDDED_KEYS, embedded_stac
from .grid import Grid, GridError, describe_grid
from .healpix import HealpixError, HealpixGrid, describe_healpix
from .item import (
    Axes,
    MappingError,
    bounds_variables,
    check_extent_coordinates,
    complete_variables,
    extra_dimensions,
    find_axes,
    horizontal_hints,
    store_to_item,
)


@dataclass
class Node:
    """One group of the store that holds variables, as the mapping sees it."""

    path: str
    view: OpenedStore  # the group as `store_to_item` reads a store
    axes: Axes
    run: forecast.Forecast | None
    cells: int = 0  # horizontal cells of its grid; 0: it has none
    grid: Grid | None = None  # its lon/lat or x/y grid, when placed
    healpix: HealpixGrid | None = None  # its HEALPix cells (whose bbox only the finest needs)
    problem: str | None = None  # why its horizontal coordinates make no grid
    dimension_keys: dict[str, str] = field(default_factory=dict)  # its dimensions' names in the Item

    @property
    def ds(self) -> xr.Dataset:
        return self.view.dataset

    @property
    def has_time(self) -> bool:
        return self.run is not None or self.axes.time is not None

    def time_names(self) -> list[str]:
        if self.run is not None:
            return [name for name in (self.run.reference, self.run.valid or self.run.lead) if name]
        return [self.axes.time] if self.axes.time else []


def _nodes(opened: OpenedStore) -> list[Node]:
    """The root and every group that holds variables, root first, then in path order."""
    views = [("", opened)] + [
        (
            path,
            replace(opened, dataset=g.dataset, group=g.group, cached=g.cached, unavailable_codecs=g.unavailable_codecs),
        )
        for path, g in opened.groups.items()
    ]
    nodes = []
    for path, view in views:
        if not view.dataset.variables:
            continue
        ds = view.dataset
        node = Node(path, view, find_axes(ds), forecast.find_forecast(ds))
        try:
            node.healpix = describe_healpix(ds)
        except HealpixError as exc:
            node.cells, node.problem = 1, str(exc)  # a candidate, whose error is the store's if finest
        if node.healpix is not None:
            node.cells = node.healpix.count
        elif node.problem is None:
            node.cells, node.grid, node.problem = _horizontal(ds, node.axes)
        nodes.append(node)
    return nodes


def _horizontal(ds: xr.Dataset, axes: Axes) -> tuple[int, Grid | None, str | None]:
    """(cells, grid, why not) of a group's longitude/latitude or x/y coordinates: the cells
    counted from their dimensions, the grid when it can be placed."""
    if axes.longitude and axes.latitude:
        dims = set(ds[axes.longitude].dims) | set(ds[axes.latitude].dims)
        count = math.prod(int(ds.sizes[d]) for d in dims)
    elif axes.x and axes.y:
        count = int(ds.sizes[axes.x]) * int(ds.sizes[axes.y])
    else:
        return 0, None, None
    try:
        grid = describe_grid(ds, longitude=axes.longitude, latitude=axes.latitude, x=axes.x, y=axes.y)
    except (GridError, ValueError) as exc:
        return count, None, str(exc)
    return count, grid, None


def _assign_dimension_keys(nodes: list[Node]) -> None:
    """Name each group's dimensions: `group/dim`, or the name an ancestor gives a dimension it
    shares (same name and size; same values where both have a coordinate)."""
    by_path = {node.path: node for node in nodes}
    for node in nodes:  # parents come before their children
        ancestors = [by_path[p] for p in _ancestors(node.path) if p in by_path]
        for dim, size in node.ds.sizes.items():
            key = node_path(node.path, str(dim))
            for ancestor in ancestors:  # nearest first
                if ancestor.ds.sizes.get(dim) == size and _same_values(node.ds, ancestor.ds, dim):
                    key = ancestor.dimension_keys[str(dim)]
                    break
            node.dimension_keys[str(dim)] = key


def _ancestors(path: str) -> list[str]:
    """The paths of the groups above `path`, nearest first, the root ("") last."""
    found = []
    while path:
        path = path.rpartition("/")[0]
        found.append(path)
    return found


def _same_values(a: xr.Dataset, b: xr.Dataset, dim) -> bool:
    if dim not in a.variables or dim not in b.variables:
        return True
    try:
        return bool(np.array_equal(np.asarray(a[dim].values), np.asarray(b[dim].values)))
    except (TypeError, ValueError):
        return False


def _finest(nodes: list[Node]) -> Node:
    """The group whose grid spans the most cells (the first such in the tree), which must be placed."""
    candidates = [node for node in nodes if node.cells]
    if not candidates:
        raise MappingError(
            NO_COORDINATES,
            f"no group has longitude/latitude coordinates or a grid that places them ({len(nodes)} groups with "
            "variables; CF standard_name, units or axis)",
        )
    return max(candidates, key=lambda node: node.cells)  # max keeps the first of equals


def _embedded_time(attrs: dict[str, Any]) -> bool:
    """Whether the root's attributes hold a STAC Item that says when (`embedded_stac`)."""
    embedded = embedded_stac(attrs)
    return embedded is not None and embedded.start is not None


def _time_extent(node: Node) -> tuple[Any, Any]:
    try:
        if node.run is not None:
            return forecast.valid_extent(node.ds, node.run)
        assert node.axes.time is not None  # asked of the groups that have a time only
        return temporal.time_extent(node.ds, node.axes.time)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MappingError(UNDECODABLE_TIME, f"group {node.path or '/'!r}: {exc}") from exc


def _with_time_of(node: Node, other: Node) -> xr.Dataset:
    """`node`'s dataset with the time coordinates of `other` (their bounds included)."""
    names = other.time_names()
    if other.run is not None and other.run.lead:
        names.append(other.run.lead)
    names += [str(other.ds[n].attrs["bounds"]) for n in list(names) if other.ds[n].attrs.get("bounds")]
    names = [n for n in dict.fromkeys(names) if n in other.ds.variables]
    clash = [n for n in names if n in node.ds.variables]
    if clash:
        reason = f"group {node.path!r} has no time, and the time of group {other.path or '/'!r} ({clash[0]!r}) "
        raise MappingError(NO_TIME, reason + "clashes with one of its own variables")
    try:
        return node.ds.assign_coords({n: other.ds.variables[n] for n in names})
    except ValueError as exc:
        reason = f"the time of group {other.path or '/'!r} does not fit group {node.path!r}: {exc}"
        raise MappingError(NO_TIME, reason) from exc


def _level_entries(pyramid: multiscales.Pyramid, nodes_by_path: dict[str, Node]) -> list[dict[str, Any]]:
    """The levels of a pyramid, finest first: their group, horizontal shape and cell size (or zoom)."""
    levels = [nodes_by_path[p] for p in pyramid.levels if p in nodes_by_path]
    entries = []
    for node in sorted(levels, key=lambda n: -n.cells):
        entry: dict[str, Any] = {"group": node.path}
        grid, axes = node.grid, node.axes
        if node.healpix is not None:
            entry.update(zoom=node.healpix.level, cells=node.healpix.count)
        else:
            x, y = (grid.x, grid.y) if grid is not None and grid.x else (axes.x, axes.y)
            if x and y and x in node.ds.dims and y in node.ds.dims:
                entry["shape"] = [int(node.ds.sizes[y]), int(node.ds.sizes[x])]
                steps = [
                    horizontal_hints(axis, node.ds[name]).get(f"{axis}_step") for axis, name in (("y", y), ("x", x))
                ]
                if all(isinstance(step, int | float) and not isinstance(step, bool) for step in steps):
                    entry["cell_size"] = [abs(float(step)) for step in steps if step is not None]
            elif node.cells:
                entry["cells"] = node.cells
        entries.append(entry)
    return entries


def _variable_entries(ds: xr.Dataset, names: list[str]) -> dict[str, dict[str, Any]]:
    """`cube:variables` entries of `names` (as xstac makes them, completed as `store_to_item` does)."""
    entries: dict[str, dict[str, Any]] = {}
    for name in names:
        var = ds.variables[name]
        entry: dict[str, Any] = {"type": "auxiliary" if name in ds.coords else "data", "dimensions": list(var.dims)}
        description = var.attrs.get("description") or var.attrs.get("long_name")
        if description is not None:
            entry["description"] = description
        entries[name] = entry
    complete_variables(entries, ds)
    return entries


def _dimension_entries(node: Node) -> dict[str, dict[str, Any]]:
    """`cube:dimensions` entries of a group's own dimensions, described as for a flat store."""
    ds, axes, grid = node.ds, node.axes, node.grid
    entries: dict[str, dict[str, Any]] = {}
    x = y = None
    if node.healpix is not None:
        entries[node.healpix.dimension] = node.healpix.dimension_entry(ds)
    elif grid is not None and grid.x and grid.y:
        x, y = grid.x, grid.y
        for axis, name in (("x", x), ("y", y)):
            hints = horizontal_hints(axis, ds[name])
            entry = {"type": "spatial", "axis": axis, "extent": hints[f"{axis}_extent"]}
            if hints[f"{axis}_step"] is not False:
                entry["step"] = hints[f"{axis}_step"]
            entry["reference_system"] = grid.reference_system
            entries[name] = entry
    time_dims: set[str] = set()
    if node.run is not None:
        try:
            found = forecast.dimensions(ds, node.run)
        except (ValueError, TypeError, OverflowError):
            found = {}
        entries.update(found)
        time_dims = set(found)
    elif axes.time is not None:
        start, end = _time_extent(node)
        entry = {"type": "temporal", "extent": [temporal.isoformat(start), temporal.isoformat(end)]}
        if step := temporal.time_step(ds, axes.time):
            entry["step"] = step
        entries[axes.time] = entry
        time_dims = {axes.time}
    described = Axes(axes.time, x, y, axes.longitude, axes.latitude)
    for name, entry in extra_dimensions(ds, described, skip=time_dims | set(entries)).items():
        entries.setdefault(name, entry)
    for entry in entries.values():
        if entry.get("description") is not None:
            entry["description"] = markdown_text(entry["description"])
    return entries


def _qualified(entries: dict[str, dict[str, Any]], node: Node) -> dict[str, dict[str, Any]]:
    """A group's entries keyed by their paths in the Item, their `dimensions` too, their
    descriptions markdown (as `store_to_item` makes its own)."""
    out = {}
    for name, entry in entries.items():
        entry = {
            **entry,
            "dimensions": [node.dimension_keys.get(str(d), node_path(node.path, str(d))) for d in entry["dimensions"]],
        }
        if entry.get("description") is not None:
            entry["description"] = markdown_text(entry["description"])
        out[node_path(node.path, str(name))] = entry
    return out


def tree_to_item(
    opened: OpenedStore,
    *,
    item_id: str,
    collection_id: str | None = None,
    source: SourceConfig | None = None,
    properties: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> pystac.Item:
    """The one Item of a hierarchical store (`opened.groups`); raises `MappingError` saying what
    is missing, and in which group."""
    source = source or SourceConfig(url=opened.ref.url)
    nodes = _nodes(opened)
    by_path = {node.path: node for node in nodes}
    _assign_dimension_keys(nodes)
    pyramids = _pyramids(opened, nodes)
    finest = _finest(nodes)
    if finest.has_time:
        time_nodes = [finest]
    elif _embedded_time(opened.dataset.attrs):
        time_nodes = []  # the product's own STAC Item says when (EOPF's stac_discovery): see `store_to_item`
    else:
        time_nodes = [node for node in nodes if node.has_time]
        if not time_nodes:
            raise MappingError(
                NO_TIME,
                f"no time coordinate recognised in any of its {len(nodes)} groups with variables "
                "(CF axis 'T', standard_name 'time' or time units), nor datetimes in an embedded STAC Item",
            )
    item, merged = _item_of_finest(opened, finest, time_nodes, item_id, collection_id, source, properties, notes)
    props = item.properties
    if len(time_nodes) > 1:  # the finest grid has no time of its own: all the times found
        extents = [_time_extent(node) for node in time_nodes]
        props["start_datetime"] = temporal.isoformat(min(start for start, _ in extents))
        props["end_datetime"] = temporal.isoformat(max(end for _, end in extents))

    # The finest group's entries (and the time merged into it) renamed to their paths.
    def owner(name: str) -> Node:
        return by_path[merged[name]] if name in merged else finest

    def dimension_key(name: str) -> str:
        return owner(name).dimension_keys.get(name, node_path(owner(name).path, name))

    dimensions = {dimension_key(str(k)): v for k, v in props.get("cube:dimensions", {}).items()}
    variables = {}
    for name, entry in props.get("cube:variables", {}).items():
        dims = [owner(str(name)).dimension_keys.get(str(d), dimension_key(str(d))) for d in entry.get("dimensions", ())]
        variables[node_path(owner(str(name)).path, str(name))] = {**entry, "dimensions": dims}
    if "dggs:spatial_dimension" in props:
        props["dggs:spatial_dimension"] = dimension_key(str(props["dggs:spatial_dimension"]))

    # Every other group: its variables (each pyramid variable from its finest level) and dimensions.
    shadowed = _shadowed(pyramids, by_path)
    for node in nodes:
        if node is finest:
            continue
        names = [
            str(n) for n in node.ds.variables if n not in node.ds.dims and str(n) not in shadowed.get(node.path, ())
        ]
        if not names:
            continue
        variables.update(_qualified(_variable_entries(node.ds, names), node))
        used = {key for entry in variables.values() for key in entry.get("dimensions", ())}
        for dim, entry in _dimension_entries(node).items():
            key = node.dimension_keys.get(str(dim), node_path(node.path, str(dim)))
            if key in used and key not in dimensions:
                dimensions[key] = entry
    props["cube:dimensions"] = dimensions
    props["cube:variables"] = variables
    bounds = {node_path(node.path, name) for node in nodes for name in bounds_variables(node.ds)}
    props["variables"] = sorted(k for k, entry in variables.items() if entry.get("type") == "data" and k not in bounds)
    if not is_reference(opened.ref.kind):  # a virtual store's groups have no URL of their own
        _add_group_assets(item, opened, source, nodes, pyramids, by_path)
    item.properties = plain(item.properties, notes, "properties") or {}
    return item


def _pyramids(opened: OpenedStore, nodes: list[Node]) -> list[multiscales.Pyramid]:
    attributes = {"": dict(opened.dataset.attrs)} | {p: dict(g.dataset.attrs) for p, g in opened.groups.items()}
    children: dict[str, list[str]] = {}
    for path in opened.groups:
        children.setdefault(path.rpartition("/")[0], []).append(path)
    data = {node.path: frozenset(map(str, node.ds.data_vars)) - bounds_variables(node.ds) for node in nodes}
    return multiscales.find_pyramids(attributes, children, data)


def _item_of_finest(
    opened: OpenedStore,
    finest: Node,
    time_nodes: list[Node],
    item_id: str,
    collection_id: str | None,
    source: SourceConfig,
    properties: dict[str, Any] | None,
    notes: list[str] | None,
) -> tuple[pystac.Item, dict[str, str]]:
    """The Item of the finest grid's group, as a flat store's (`store_to_item`): with the time of
    the first group that has one when it has none, and the store's title. Also {the name of each
    variable added from another group: that group's path}."""
    dataset, merged = finest.ds, {}
    if not finest.has_time and time_nodes:
        for node in time_nodes:  # as `store_to_item` checks the finest's own
            check_extent_coordinates(node.view, node.time_names(), limit_bytes(source.storage.max_coordinate_mb))
        dataset = _with_time_of(finest, time_nodes[0])
        merged = {str(n): time_nodes[0].path for n in dataset.variables if n not in finest.ds.variables}
    if finest.path:  # the Item's title and embedded STAC Item are the store's, not a group's
        dataset = dataset.copy(deep=False)
        for key in ("title", *EMBEDDED_KEYS):
            dataset.attrs.pop(key, None)
            if opened.dataset.attrs.get(key):
                dataset.attrs[key] = opened.dataset.attrs[key]
    try:
        item = store_to_item(
            replace(finest.view, dataset=dataset),
            item_id=item_id,
            collection_id=collection_id,
            source=source,
            properties=properties,
            notes=notes,
        )
    except MappingError as exc:
        if not finest.path:
            raise
        raise MappingError(exc.kind, f"group {finest.path!r} (the finest grid): {exc}") from exc
    return item, merged


def _shadowed(pyramids: list[multiscales.Pyramid], by_path: dict[str, Node]) -> dict[str, set[str]]:
    """{level path: the variables a finer level of its pyramid holds too}: described once, at the finest."""
    shadowed: dict[str, set[str]] = {}
    for pyramid in pyramids:
        seen: set[str] = set()
        for level in sorted((by_path[p] for p in pyramid.levels if p in by_path), key=lambda n: -n.cells):
            names = set(map(str, level.ds.variables)) - set(map(str, level.ds.dims))
            shadowed[level.path] = names & seen
            seen |= names
    return shadowed


def _group_title(attrs: dict[str, Any], path: str) -> str:
    for key in ("title", "long_name", "description"):
        if isinstance(attrs.get(key), str) and attrs[key].strip():
            return plain_text(attrs[key])
    return plain_text(path)


def _add_group_assets(
    item: pystac.Item,
    opened: OpenedStore,
    source: SourceConfig,
    nodes: list[Node],
    pyramids: list[multiscales.Pyramid],
    by_path: dict[str, Node],
) -> None:
    """An asset per group holding data variables (none for the root: the `zarr` asset is the
    store); one per pyramid, opening its finest level and listing its levels, for its levels."""
    levels = {level for pyramid in pyramids for level in pyramid.levels}
    assets: dict[str, tuple[str, dict[str, Any]]] = {}
    for node in nodes:
        if node.path and node.path not in levels and node.ds.data_vars:
            assets[node.path] = ("group", {})
    for pyramid in pyramids:
        entries = _level_entries(pyramid, by_path)
        if entries:
            assets[pyramid.path] = ("pyramid", {"pyramid": pyramid, "levels": entries})
    for path in sorted(assets):
        kind, extra = assets[path]
        attrs = dict(opened.groups[path].dataset.attrs) if path in opened.groups else dict(opened.dataset.attrs)
        if kind == "group":
            add_group_asset(item, opened, source, path, title=_group_title(attrs, path))
            continue
        pyramid = extra["pyramid"]
        level = pyramid.level_name(extra["levels"][0]["group"])
        if not path:  # the store itself is the pyramid: its `zarr` asset says so
            asset = item.assets["zarr"]
            if pyramid.declared:
                asset.media_type = f"{asset.media_type}; {multiscales.MULTISCALES_PROFILE}"
        else:
            title = _group_title(attrs, path)
            asset = add_group_asset(item, opened, source, path, title=title, multiscales=pyramid.declared, level=level)
        asset.extra_fields[multiscales.LEVELS_FIELD] = extra["levels"]
