"""What a store's metadata says, read from its documents as parsed JSON (consolidated
`.zmetadata`, `zarr.json`), before zarr or xarray open anything: whether a document is Zarr
metadata at all, which groups and arrays there are, and which of them are coordinates.

`coordinate_names` is the one rule of what a coordinate is, used by the fast path to
choose the chunks it fetches and by the lazy path to check sizes before xarray reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from zarr.core.dtype import get_data_type_from_json

from ..failures import CORRUPT_METADATA


class CorruptMetadata(Exception):
    """A metadata document that is JSON, but not a JSON object (of objects) as Zarr's are
    (no ValueError, for the reason `limits.TooLarge` gives)."""

    kind = CORRUPT_METADATA


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", list: "a list", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def metadata_problem(key: str, document: Any) -> str | None:
    """Why the parsed metadata document `key` (`.zmetadata`, `zarr.json`, `.zattrs`, ...) is no
    Zarr metadata: it, and each document it consolidates, must be a JSON object. None: it may be."""
    name = key.rsplit("/", 1)[-1]
    if not isinstance(document, dict):
        return f"{key} is {_json_kind(document)}, not a JSON object"
    if name == ".zmetadata":
        inner = document.get("metadata")
        if not isinstance(inner, dict):
            return f"{key}: 'metadata' is {_json_kind(inner)}, not a JSON object"
        for member, value in inner.items():
            if not isinstance(value, dict):
                return f"{key}: {member!r} is {_json_kind(value)}, not a JSON object"
    elif name == "zarr.json":
        if not isinstance(document.get("attributes", {}), dict):
            return f"{key}: 'attributes' is {_json_kind(document['attributes'])}, not a JSON object"
        if (problem := _data_type_problem(document)) is not None:
            return f"{key}: the array {problem}"
        consolidated = document.get("consolidated_metadata")
        if consolidated is None:
            return None
        members = consolidated.get("metadata") if isinstance(consolidated, dict) else None
        if not isinstance(members, dict):
            return f"{key}: 'consolidated_metadata' holds no object of 'metadata'"
        for member, value in members.items():
            if not isinstance(value, dict) or not isinstance(value.get("attributes", {}), dict):
                return f"{key}: the metadata of {member!r} is not a JSON object (nor its attributes)"
            if (problem := _data_type_problem(value)) is not None:
                return f"{key}: array {member!r} {problem}"
    return None


def _data_type_problem(document: dict[str, Any]) -> str | None:
    """Why a v3 array's `data_type` is none zarr knows (EOPF's S1 RTC product declares the v2
    dtype '<U4'): said here, naming the array, since zarr's own error names only the type."""
    if document.get("node_type") != "array" or document.get("zarr_format") != 3:
        return None
    try:
        get_data_type_from_json(document.get("data_type"), zarr_format=3)
    except (ValueError, TypeError, KeyError):
        return f"declares the data type {str(document.get('data_type'))[:80]!r}, which is no Zarr v3 data type"
    return None


def parse_metadata(key: str, raw: bytes) -> dict[str, Any]:
    """A metadata document's JSON object; json.JSONDecodeError or CorruptMetadata otherwise."""
    document = json.loads(raw)
    if (problem := metadata_problem(key, document)) is not None:
        raise CorruptMetadata(problem)
    return document


def _array_dims(name: str, meta: dict[str, Any], attrs: dict[str, Any], zarr_format: int) -> list[str]:
    if zarr_format == 3:
        return list(meta.get("dimension_names") or [])
    return list(attrs.get("_ARRAY_DIMENSIONS") or [])


def arrays_of(metadata: dict[str, Any], zarr_format: int) -> dict[str, tuple[dict, dict]]:
    """{array name: (array metadata, attributes)} from consolidated metadata."""
    found: dict[str, tuple[dict, dict]] = {}
    if zarr_format == 2:
        entries = metadata["metadata"]
        for key, value in entries.items():
            if key.endswith("/.zarray") and key.count("/") == 1:
                name = key.split("/")[0]
                found[name] = (value, entries.get(f"{name}/.zattrs", {}))
        return found
    for name, value in (metadata.get("consolidated_metadata") or {}).get("metadata", {}).items():
        if value.get("node_type") == "array" and "/" not in name:
            found[name] = (value, value.get("attributes", {}))
    return found


@dataclass(frozen=True)
class GroupMetadata:
    """One group of a consolidated hierarchy: its attributes and its own arrays
    ({name within the group: (array metadata, attributes)})."""

    attributes: dict[str, Any]
    arrays: dict[str, tuple[dict, dict]] = field(default_factory=dict)


def _parent(path: str) -> tuple[str, str]:
    """(parent group path, name) of a node path ("" is the root)."""
    parent, _, name = path.rpartition("/")
    return parent, name


def _v3_members(members: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, dict]]:
    """(path, metadata) of every node of v3 consolidated metadata: zarr-python writes them flat
    with full paths, but a group may also carry its members nested in its own
    `consolidated_metadata`, named relative to it."""
    for name, value in members.items():
        if not isinstance(value, dict):
            continue
        path = f"{prefix}{name}".strip("/")
        yield path, value
        nested = value.get("consolidated_metadata")
        if value.get("node_type") == "group" and isinstance(nested, dict) and isinstance(nested.get("metadata"), dict):
            yield from _v3_members(nested["metadata"], f"{path}/")


def groups_of(metadata: dict[str, Any], zarr_format: int) -> dict[str, GroupMetadata]:
    """{group path ("" for the root): its attributes and arrays}, from consolidated metadata.
    A flat store has one group, the root. Groups appear in the order the document lists them."""
    groups: dict[str, GroupMetadata] = {"": GroupMetadata(group_attributes(metadata, zarr_format))}

    def group(path: str) -> GroupMetadata:
        if path not in groups:  # an array whose group's own document is missing: still a group
            groups[path] = GroupMetadata({})
        return groups[path]

    if zarr_format == 2:
        entries = metadata["metadata"]
        for key, value in entries.items():
            path, _, document = key.rpartition("/")
            if document == ".zgroup" and path:
                attrs = entries.get(f"{path}/.zattrs", {})
                groups.setdefault(path, GroupMetadata(attrs if isinstance(attrs, dict) else {}))
            elif document == ".zarray" and path:
                parent, name = _parent(path)
                attrs = entries.get(f"{path}/.zattrs", {})
                group(parent).arrays[name] = (value, attrs if isinstance(attrs, dict) else {})
        return groups
    members = (metadata.get("consolidated_metadata") or {}).get("metadata", {})
    for path, value in _v3_members(members):
        attrs = value.get("attributes", {})
        attrs = attrs if isinstance(attrs, dict) else {}
        if value.get("node_type") == "group":
            groups.setdefault(path, GroupMetadata(attrs))
        elif value.get("node_type") == "array":
            parent, name = _parent(path)
            group(parent).arrays[name] = (value, attrs)
    return groups


def node_path(group: str, name: str) -> str:
    """The path in the store of node `name` of group `group` ("" for the root)."""
    return f"{group}/{name}" if group else name


def arrays_by_path(groups: Mapping[str, GroupMetadata]) -> dict[str, tuple[dict, dict]]:
    """{array path in the store: (array metadata, attributes)} of every group."""
    return {node_path(path, name): array for path, group in groups.items() for name, array in group.arrays.items()}


def coordinate_paths(groups: Mapping[str, GroupMetadata], zarr_format: int) -> set[str]:
    """The coordinates (`coordinate_names`) of every group, by their paths in the store."""
    paths: set[str] = set()
    for path, group in groups.items():
        names = coordinate_names(layout_of(group.arrays, zarr_format), group.attributes)
        paths.update(node_path(path, name) for name in names)
    return paths


def group_attributes(metadata: dict[str, Any], zarr_format: int) -> dict[str, Any]:
    """The root group's attributes, from consolidated metadata."""
    attrs = metadata["metadata"].get(".zattrs", {}) if zarr_format == 2 else metadata.get("attributes", {})
    return attrs if isinstance(attrs, dict) else {}


def layout_of(arrays: Mapping[str, tuple[dict, dict]], zarr_format: int) -> dict[str, tuple[list[str], dict]]:
    """{array name: (its dimension names, its attributes)} of `arrays_of`."""
    return {name: (_array_dims(name, meta, attrs, zarr_format), attrs) for name, (meta, attrs) in arrays.items()}


def coordinate_names(layout: Mapping[str, tuple[list[str], Mapping]], group_attrs: Mapping) -> set[str]:
    """The arrays xarray makes coordinates, and so the only ones the mapping may read:
    dimension coordinates, the arrays a CF `coordinates` attribute names (the group's or any
    array's), and the `bounds` of all those. The one rule: the fast path fetches the chunks of
    these, the lazy path checks their sizes."""
    wanted = {name for name, (dims, _) in layout.items() if list(dims) == [name]}
    wanted.update(str(group_attrs.get("coordinates", "")).split())
    for _, attrs in layout.values():
        wanted.update(str(attrs.get("coordinates", "")).split())
    wanted |= {str(layout[name][1]["bounds"]) for name in wanted if name in layout and layout[name][1].get("bounds")}
    return wanted & set(layout)


def is_parquet_zmetadata(raw: bytes) -> bool:
    """Whether a `.zmetadata` is that of a kerchunk parquet reference folder (it has `record_size`)."""
    try:
        metadata = json.loads(raw)
    except ValueError:
        return False
    return isinstance(metadata, dict) and "record_size" in metadata
