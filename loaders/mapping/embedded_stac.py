"""A STAC Item that a store carries in its attributes: EOPF's `stac_discovery`, or the
zarr-conventions `stac:item`. It is a hint, never the truth about the store:

- its time (`start_datetime`/`end_datetime`, or `datetime`) gives the temporal extent only
  of a store without a time coordinate (EOPF products keep theirs nowhere else);
- its title, and the STAC common metadata that describe the acquisition (`platform`,
  `constellation`, `mission`, `instruments`, `gsd`), are taken where the store and its
  catalogue say nothing else. Extension fields (`eo:cloud_cover`, `sat:*`, `eopf:*`) are
  not: zarr-stac declares the extensions of the fields it writes, and vets none of those;
- its bbox is compared with the grid's, which wins (see `grid.declared_box_notes`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..markup import plain_text

EMBEDDED_KEYS = ("stac_discovery", "stac:item")
COMMON_PROPERTIES = ("platform", "constellation", "mission", "instruments", "gsd")


@dataclass
class EmbeddedStac:
    key: str  # the attribute that holds it
    bbox: list[float] | None = None
    title: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _moment(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value[:64].replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _fits(name: str, value: object) -> bool:
    if name == "instruments":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if name == "gsd":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return isinstance(value, str)


def embedded_stac(attrs: Mapping) -> EmbeddedStac | None:
    """The STAC Item in a group's attributes, if any (the first of `EMBEDDED_KEYS`)."""
    key = next((k for k in EMBEDDED_KEYS if isinstance(attrs.get(k), Mapping)), None)
    if key is None:
        return None
    document = attrs[key]
    found = EmbeddedStac(key)
    bbox = document.get("bbox")
    if bbox is not None:
        numbers = bbox if isinstance(bbox, list) else []
        if len(numbers) in (4, 6) and all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
            # 3-D boxes: [west, south, low, east, north, high]
            found.bbox = [float(v) for v in (numbers if len(numbers) == 4 else numbers[:2] + numbers[3:5])]
        else:
            found.problems.append(f"the bbox of {key} ignored: not 4 (or 6) numbers")
    properties = document.get("properties")
    if not isinstance(properties, Mapping):
        return found
    if isinstance(properties.get("title"), str):
        found.title = plain_text(properties["title"])
    start, end = _moment(properties.get("start_datetime")), _moment(properties.get("end_datetime"))
    moment = _moment(properties.get("datetime"))
    if start and end and start <= end:
        found.start, found.end = start, end
    elif moment:
        found.start = found.end = moment
    elif any(properties.get(k) is not None for k in ("start_datetime", "end_datetime", "datetime")):
        found.problems.append(f"the datetimes of {key} ignored: not an RFC 3339 instant or interval")
    found.properties = {name: properties[name] for name in COMMON_PROPERTIES if _fits(name, properties.get(name))}
    return found
