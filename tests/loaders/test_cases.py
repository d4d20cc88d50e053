"""Every case a data centre holds: one store each, exact Items expected (see cases.py)."""

import json
import warnings

import pytest

from static_catalog.validate import validate_object
from static_catalog.write import write_catalog
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.samples import write_dataset

from .cases import CASES, MISSING, lookup

BUCKET = "cases"


@pytest.fixture(scope="session")
def cases_crawl(s3_server, storage):
    s3_server.create_bucket(BUCKET, public=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in CASES:
            write_dataset(
                case.build(),
                f"s3://{BUCKET}/cases/{case.name}.zarr",
                storage,
                zarr_format=case.zarr_format,
                consolidated=case.consolidated,
                public=True,
            )
    return crawl(f"s3://{BUCKET}", storage)


@pytest.fixture(scope="session")
def cases_catalogue(cases_crawl, tmp_path_factory):
    """The cases as published (items with their collection links)."""
    out = tmp_path_factory.mktemp("cases-catalogue")
    write_catalog(cases_crawl.collections, cases_crawl.items, str(out))
    return out


def test_every_case_is_catalogued(cases_crawl):
    assert cases_crawl.failures == []
    assert sorted(item.id for item in cases_crawl.items) == sorted(case.name for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_maps_exactly(cases_crawl, cases_catalogue, validator, case):
    (item,) = [i for i in cases_crawl.items if i.id == case.name]
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    for path, expected in case.expected.items():
        found = lookup(data, path)
        if expected is MISSING:
            assert found is MISSING, f"{path} should be absent, is {found!r}"
        elif path == "bbox" and case.name == "rotated-pole":
            # Densified edges against every grid point: equal to within the edge sampling.
            assert found == pytest.approx(expected, abs=0.02), path
        elif isinstance(expected, float) or (
            isinstance(expected, list) and all(isinstance(v, float) for v in expected)
        ):
            assert found == pytest.approx(expected, rel=1e-9), path
        else:
            assert found == expected, path
    published = json.loads((cases_catalogue / "cases" / case.name / f"{case.name}.json").read_text())
    assert validate_object(published, validator) is None


def test_projected_items_publish_their_crs(cases_crawl):
    by_id = {item.id: item for item in cases_crawl.items}
    lambert = by_id["lambert-conformal"].properties
    assert "Lambert" in lambert["proj:wkt2"] and lambert["proj:projjson"]["type"] == "ProjectedCRS"
    assert lambert["cube:dimensions"]["x"]["reference_system"] == lambert["proj:projjson"]
    rotated = by_id["rotated-pole"].properties
    assert rotated["proj:projjson"]["type"] == "DerivedGeographicCRS"
    assert set(rotated["cube:dimensions"]) >= {"time", "rlon", "rlat"}
    assert by_id["polar-stereographic"].bbox[3] == 90.0, "the pole inside the grid is inside the bbox"
