"""Multiscale pyramids: one dataset stored at several resolutions, one group per level.

Two layouts are recognised in a store's hierarchy:

- declared: a group whose `multiscales` attribute lists its levels, as the zarr-conventions
  `multiscales` convention writes it (`{"layout": [{"asset": "r10m", ...}, ...]}`: GeoZarr,
  EOPF's GeoZarr conversions, the zarr `dggs` convention's HEALPix pyramids), or in the list
  form of OME-NGFF and ndpyramid (`[{"datasets": [{"path": "0"}, ...]}]`); a level is a child
  group named by its path relative to the pyramid's group;
- by name: a group whose child groups, two or more, are all named by integers and hold the
  same data variables (HEALPix viewers' zoom levels `3`..`11`, ndpyramid's `0`..`N` without
  metadata).

Only a declared pyramid gets `profile=multiscales` in its asset's media type (the STAC Zarr
best practices' parameter names the convention, which only a declared layout follows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The asset field listing a pyramid's levels, finest first (STAC has no multiscales extension).
LEVELS_FIELD = "multiscales:levels"
MULTISCALES_PROFILE = "profile=multiscales"
_LEVEL_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Pyramid:
    path: str  # the group holding the levels ("" for the root)
    levels: tuple[str, ...]  # the level groups' paths in the store, as declared or by number
    declared: bool  # listed by a `multiscales` attribute

    def level_name(self, level: str) -> str:
        """A level's path relative to the pyramid's group (the `asset` of the convention)."""
        return level[len(self.path) + 1 :] if self.path else level


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def declared_levels(attributes: Mapping[str, Any]) -> list[str]:
    """The level paths (relative to the group) a `multiscales` attribute lists, in its order;
    [] when there is none or it is of no known form."""
    found = attributes.get("multiscales")
    if isinstance(found, Mapping) and isinstance(found.get("layout"), Sequence):
        entries = [entry.get("asset") for entry in found["layout"] if isinstance(entry, Mapping)]
    elif isinstance(found, Sequence) and not isinstance(found, str) and found and isinstance(found[0], Mapping):
        datasets = found[0].get("datasets")
        entries = [d.get("path") for d in datasets if isinstance(d, Mapping)] if isinstance(datasets, Sequence) else []
    else:
        return []
    levels = []
    for entry in entries:
        # Relative paths only: the convention forbids a leading "/" and "..".
        if isinstance(entry, str) and entry and not entry.startswith("/") and ".." not in entry.split("/"):
            levels.append(entry.strip("/"))
    return levels


def find_pyramids(
    attributes: Mapping[str, Mapping[str, Any]],
    children: Mapping[str, Sequence[str]],
    data_variables: Mapping[str, frozenset[str]],
) -> list[Pyramid]:
    """The pyramids of a hierarchy, from each group's `attributes`, `children` (the paths of its
    child groups) and `data_variables` (names), all by group path. A level must be a group
    present in the store that holds data variables; a pyramid has at least two levels."""
    pyramids = []
    for path, attrs in attributes.items():
        levels = [_join(path, name) for name in declared_levels(attrs)]
        levels = [level for level in levels if data_variables.get(level)]
        if len(levels) >= 2:
            pyramids.append(Pyramid(path, tuple(dict.fromkeys(levels)), declared=True))
            continue
        numbered = children.get(path, ())
        names = [child.rpartition("/")[2] for child in numbered]
        if len(numbered) < 2 or not all(_LEVEL_NUMBER.fullmatch(name) for name in names):
            continue
        variables = {data_variables.get(child, frozenset()) for child in numbered}
        if len(variables) == 1 and next(iter(variables)):
            ordered = sorted(numbered, key=lambda child: int(child.rpartition("/")[2]))
            pyramids.append(Pyramid(path, tuple(ordered), declared=False))
    return pyramids
