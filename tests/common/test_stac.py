"""The STAC pieces both publishers share: extent union, structural links, the deletion rule, batching."""

import datetime as dt

import pytest

from zarr_stac.common.batching import batched
from zarr_stac.common.stac import STRUCTURAL_RELS, delete_nothing, own_links, union_extent, union_interval

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        pytest.param(
            [("2000-01-01T00:00:00Z", "2000-12-31T00:00:00Z"), ("1999-06-01T00:00:00Z", "2000-03-01T00:00:00Z")],
            ["1999-06-01T00:00:00Z", "2000-12-31T00:00:00Z"],
            id="strings keep their form",
        ),
        pytest.param(
            [(dt.datetime(2000, 1, 1, tzinfo=UTC), None), (None, dt.datetime(2001, 1, 1, tzinfo=UTC))],
            [dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2001, 1, 1, tzinfo=UTC)],
            id="an open bound is ignored, not taken as the extreme",
        ),
        pytest.param([(None, None)], [None, None], id="nothing known stays open"),
        pytest.param(
            [("2000-01-01T00:00:00+01:00", "2000-01-01T00:30:00Z"), ("1999-12-31T23:30:00Z", None)],
            ["2000-01-01T00:00:00+01:00", "2000-01-01T00:30:00Z"],
            id="compared as instants, not as text",
        ),
    ],
)
def test_union_interval(intervals, expected):
    assert union_interval(intervals) == expected


def test_union_extent_crosses_the_antimeridian_and_allows_no_bbox():
    bbox, interval = union_extent([[170.0, -10.0, 180.0, 10.0], [-180.0, -5.0, -170.0, 5.0]], [])
    assert bbox == [170.0, -10.0, -170.0, 10.0]
    assert interval == [None, None]
    assert union_extent([], [("2000-01-01T00:00:00Z", None)]) == (None, ["2000-01-01T00:00:00Z", None])


def test_own_links_drop_only_where_the_publisher_puts_the_object():
    links = [{"rel": rel, "href": rel} for rel in ("self", "root", "parent", "collection", "item", "store", "license")]
    assert [link["rel"] for link in own_links(links)] == ["store", "license"]
    assert {"self", "root", "parent", "collection", "item", "child"} <= STRUCTURAL_RELS


def test_the_default_deletes_nothing():
    assert delete_nothing("any-collection") is False


def test_batched_reads_a_stream_lazily():
    seen = []

    def stream():
        for i in range(7):
            seen.append(i)
            yield i

    batches = batched(stream(), 3)
    assert next(batches) == [0, 1, 2] and seen == [0, 1, 2]
    assert list(batches) == [[3, 4, 5], [6]]
    with pytest.raises(ValueError):
        next(batched([1], 0))
