"""The loader's geometry writer gives pypgstac's (plpygis's) bytes for every GeoJSON type."""

import random

import pytest
from plpygis import Geometry

from stac_api.loading.geometry import ewkb_hex


def point(dim: int) -> list[float]:
    return [random.uniform(-180, 180) for _ in range(dim)]


def geometries(dim: int) -> list[dict]:
    ring = [point(dim) for _ in range(4)]
    return [
        {"type": "Point", "coordinates": point(dim)},
        {"type": "Point", "coordinates": [1, 2, 3][:dim]},  # integers
        {"type": "LineString", "coordinates": [point(dim) for _ in range(3)]},
        {"type": "Polygon", "coordinates": [ring + ring[:1], [point(dim) for _ in range(4)]]},
        {"type": "MultiPoint", "coordinates": [point(dim) for _ in range(3)]},
        {"type": "MultiLineString", "coordinates": [[point(dim) for _ in range(3)] for _ in range(2)]},
        {"type": "MultiPolygon", "coordinates": [[ring + ring[:1]], [[point(dim) for _ in range(5)]]]},
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": point(dim)}]},
    ]


@pytest.mark.parametrize("dim", [2, 3])
def test_the_same_bytes_as_plpygis(dim):
    random.seed(dim)
    for geometry in geometries(dim):
        assert ewkb_hex(geometry) == str(Geometry.from_geojson(geometry).ewkb), geometry["type"]


def test_mixed_dimensions_are_left_to_plpygis():
    geometry = {"type": "LineString", "coordinates": [[0.0, 1.0], [2.0, 3.0, 4.0]]}
    try:
        expected = str(Geometry.from_geojson(geometry).ewkb)
    except Exception as exc:  # noqa: BLE001 - whatever plpygis does, the loader does too
        with pytest.raises(type(exc)):
            ewkb_hex(geometry)
    else:
        assert ewkb_hex(geometry) == expected
