"""WGS84 bounding boxes from a dataset's longitude/latitude coordinates.

Rules (the same for 1-D grids, 2-D curvilinear grids and unstructured cells):

- longitudes in any convention (0..360, -180..180, radians) are wrapped onto
  -180..180; the bbox covers everything except the largest empty gap around the
  circle, so a regional grid across the antimeridian gets west > east (as the
  STAC spec asks) and a grid whose cells meet all around the globe gets -180..180;
- where CF cell bounds exist (`bounds` attribute) they are used instead of the
  cell centres, otherwise the bbox spans the centres;
- NaN and fill values are ignored; latitudes are clipped to -90..90, whatever
  their order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Bbox = list[float]

# A gap in longitude this many times the typical spacing is "outside the grid".
GAP_FACTOR = 2.0


def wrap_longitude(lon: np.ndarray) -> np.ndarray:
    wrapped = ((np.asarray(lon, dtype="f8") + 180.0) % 360.0) - 180.0
    # Keep +180 as +180 (it is the east edge of a global grid, not its west edge).
    return np.where((wrapped == -180.0) & (np.asarray(lon) > 0), 180.0, wrapped)


def longitude_range(lon: np.ndarray) -> tuple[float, float]:
    """(west, east) of a cloud of longitudes; west > east when it crosses 180°."""
    lon = np.asarray(lon, dtype="f8").ravel()
    lon = lon[np.isfinite(lon)]
    if lon.size == 0:
        raise ValueError("no finite longitude values")
    if lon.min() >= -180.0 and lon.max() <= 180.0 and lon.max() - lon.min() <= 180.0:
        # Fast, exact path for the common case that needs no wrapping decision.
        return float(lon.min()), float(lon.max())
    points = np.unique(wrap_longitude(lon) % 360.0)  # 0..360 for the circular search
    if points.size == 1:
        value = float(wrap_longitude(points)[0])
        return value, value
    gaps = np.diff(np.concatenate([points, [points[0] + 360.0]]))
    largest = int(np.argmax(gaps))
    others = np.delete(gaps, largest)
    typical = float(np.percentile(others, 99)) if others.size else 0.0
    if gaps[largest] <= GAP_FACTOR * typical:
        return -180.0, 180.0
    west = points[(largest + 1) % points.size]
    east = points[largest]
    west, east = (float(v) for v in wrap_longitude(np.array([west, east])))
    if east == -180.0:
        east = 180.0
    if west == 180.0:
        west = -180.0
    return west, east


def latitude_range(lat: np.ndarray) -> tuple[float, float]:
    lat = np.asarray(lat, dtype="f8").ravel()
    lat = lat[np.isfinite(lat)]
    lat = lat[(lat >= -90.0 - 1e-6) & (lat <= 90.0 + 1e-6)]  # fill values such as 1e20
    if lat.size == 0:
        raise ValueError("no valid latitude values")
    return float(max(lat.min(), -90.0)), float(min(lat.max(), 90.0))


def bbox_from_lonlat(lon: np.ndarray, lat: np.ndarray) -> Bbox:
    west, east = longitude_range(lon)
    south, north = latitude_range(lat)
    return [west, south, east, north]


def bbox_to_geometry(bbox: Sequence[float]) -> dict:
    """GeoJSON for a bbox; split in two at the antimeridian when west > east."""
    west, south, east, north = bbox

    def ring(w: float, e: float) -> list[list[list[float]]]:
        return [[[w, south], [e, south], [e, north], [w, north], [w, south]]]

    if west > east:
        return {"type": "MultiPolygon", "coordinates": [ring(west, 180.0), ring(-180.0, east)]}
    return {"type": "Polygon", "coordinates": ring(west, east)}


def union_bboxes(bboxes: Sequence[Sequence[float]]) -> Bbox:
    """The smallest bbox holding all of `bboxes` (which may cross the antimeridian)."""
    if not bboxes:
        raise ValueError("no bboxes to combine")
    south = min(b[1] for b in bboxes)
    north = max(b[3] for b in bboxes)
    # Longitude intervals on the circle, merged; the bbox is the complement of the
    # largest uncovered arc.
    intervals: list[tuple[float, float]] = []
    for west, _, east, _ in bboxes:
        if west <= east:
            intervals.append((west + 180.0, east + 180.0))
        else:
            intervals += [(west + 180.0, 360.0), (0.0, east + 180.0)]
    intervals.sort()
    merged: list[list[float]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if merged[0][0] <= 0.0 and merged[-1][1] >= 360.0 and len(merged) == 1:
        return [-180.0, south, 180.0, north]
    # Uncovered arcs between merged intervals, including the one across 0/360.
    arcs = [(merged[i][1], merged[i + 1][0]) for i in range(len(merged) - 1)]
    arcs.append((merged[-1][1], merged[0][0] + 360.0))
    gap_start, gap_end = max(arcs, key=lambda arc: arc[1] - arc[0])
    if gap_end - gap_start <= 0.0:
        return [-180.0, south, 180.0, north]
    west = (gap_end % 360.0) - 180.0
    east = gap_start - 180.0
    if east > 180.0:
        east -= 360.0
    return [west, south, east, north]
