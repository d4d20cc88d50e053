"""Bounding boxes: WGS84, -180..180, whatever the grid's longitude convention."""

import numpy as np
import pytest

from zarr_stac.common.spatial import bbox_from_lonlat, bbox_to_geometry, longitude_range, union_bboxes


@pytest.mark.parametrize(
    ("lon", "expected"),
    [
        pytest.param(np.arange(0.0, 360.0, 2.5), (-180.0, 180.0), id="global 0..360 centres"),
        pytest.param(np.arange(-180.0, 180.0, 1.0), (-180.0, 180.0), id="global -180..180"),
        pytest.param(np.arange(0.5, 360.0, 1.0), (-180.0, 180.0), id="global 0.5..359.5"),
        pytest.param(np.arange(-80.0, 0.1, 1.0), (-80.0, 0.0), id="regional west"),
        pytest.param(np.arange(10.0, 40.1, 0.5), (10.0, 40.0), id="regional east"),
        pytest.param(np.arange(200.0, 300.1, 1.0), (-160.0, -60.0), id="regional in 0..360 west of Greenwich"),
        pytest.param(np.arange(150.0, 210.1, 1.0), (150.0, -150.0), id="0..360 region across the antimeridian"),
        pytest.param(
            np.concatenate([np.arange(170.0, 180.1), np.arange(-180.0, -169.9)]),
            (170.0, -170.0),
            id="-180..180 region across the antimeridian",
        ),
        pytest.param(np.array([12.5]), (12.5, 12.5), id="single point"),
        pytest.param(np.array([np.nan, 10.0, 20.0, np.nan]), (10.0, 20.0), id="NaN ignored"),
    ],
)
def test_longitude_range(lon, expected):
    assert longitude_range(lon) == pytest.approx(expected)


def test_descending_latitudes_and_fill_values_are_handled():
    lat = np.array([90.0, 45.0, 0.0, -45.0, -90.0, 1e20])
    assert bbox_from_lonlat(np.array([0.0, 10.0]), lat) == [0.0, -90.0, 10.0, 90.0]


def test_all_nan_longitudes_are_an_error():
    with pytest.raises(ValueError, match="no finite longitude"):
        longitude_range(np.array([np.nan, np.nan]))


def test_geometry_of_an_antimeridian_bbox_is_split():
    geometry = bbox_to_geometry([170.0, -10.0, -170.0, 10.0])
    assert geometry["type"] == "MultiPolygon"
    assert [ring[0][0][0] for ring in geometry["coordinates"]] == [170.0, -180.0]


@pytest.mark.parametrize(
    ("bboxes", "expected"),
    [
        pytest.param([[0, 0, 10, 10], [20, -5, 30, 5]], [0, -5, 30, 10], id="disjoint"),
        pytest.param([[170, 0, -170, 10], [160, 0, 175, 5]], [160, 0, -170, 10], id="with an antimeridian bbox"),
        pytest.param([[-180, -90, 180, 90], [10, 0, 20, 5]], [-180, -90, 180, 90], id="global absorbs all"),
        pytest.param(
            [[-100, 0, 0, 10], [0, 0, 100, 10], [100, 0, -100, 10]], [-180, 0, 180, 10], id="around the world in pieces"
        ),
    ],
)
def test_union_bboxes(bboxes, expected):
    assert union_bboxes(bboxes) == pytest.approx(expected)
