"""The static catalogue: valid, navigable, incremental."""

import json

import pystac
import pytest

from static_catalog.serve import serve_in_thread
from static_catalog.validate import validate_catalog
from static_catalog.write import write_catalog
from zarr_stac.services import free_port


def walk_items(href: str) -> list[str]:
    """Every item reached by following links from the root, with repeats."""
    root = pystac.Catalog.from_file(href)
    return [f"{item.collection_id}/{item.id}" for item in root.get_items(recursive=True)]


@pytest.fixture
def catalogue(tmp_path, sample_crawl):
    write_catalog(sample_crawl.collections, sample_crawl.items, str(tmp_path))
    return tmp_path


def test_catalogue_validates_offline(catalogue, validator):
    report = validate_catalog(str(catalogue / "catalog.json"), validator)
    assert report.errors == []
    assert report.checked == 1 + 3 + 10  # root, collections, items


def test_relative_links_reach_every_item_exactly_once(catalogue, sample_crawl):
    reached = walk_items(str(catalogue / "catalog.json"))
    assert sorted(reached) == sorted(f"{i.collection_id}/{i.id}" for i in sample_crawl.items)
    for path in catalogue.rglob("*.json"):
        for link in json.loads(path.read_text())["links"]:
            assert not link["href"].startswith(("/", "http")), f"{path}: {link}"


def test_rerun_with_nothing_changed_writes_nothing(catalogue, sample_crawl):
    report = write_catalog(sample_crawl.collections, sample_crawl.items, str(catalogue))
    assert (report.written, report.unchanged, report.deleted) == (0, 17, 0)


def test_prune_removes_items_that_are_gone(catalogue, sample_crawl):
    kept = [i for i in sample_crawl.items if i.id != "ModelA.historical.r1i1p1f1.pr.gn"]
    report = write_catalog(
        sample_crawl.collections, kept, str(catalogue), may_delete=lambda collection_id: True, delete_grace=0
    )
    assert report.deleted == 2  # the item and the old snapshot of its collection
    assert report.written == 3  # the cmip6 collection (stable and snapshot) and the root
    assert len(walk_items(str(catalogue / "catalog.json"))) == 9


def test_absolute_links_served_over_http(tmp_path, sample_crawl):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    write_catalog(sample_crawl.collections, sample_crawl.items, str(tmp_path), base_url=base_url)
    server = serve_in_thread(tmp_path, port=port)
    try:
        reached = walk_items(f"{base_url}/catalog.json")
        assert len(reached) == len(set(reached)) == 10
        root = json.loads((tmp_path / "catalog.json").read_text())
        assert {link["rel"]: link["href"] for link in root["links"]}["self"] == f"{base_url}/catalog.json"
        links = [link for path in tmp_path.rglob("*.json") for link in json.loads(path.read_text())["links"]]
        # every catalogue link; `store` links (issue 17) point at the data, in its object store
        assert all(link["href"].startswith(base_url) for link in links if link["rel"] != "store")
        assert {link["href"] for link in links if link["rel"] == "store"} == {
            item.assets["zarr"].href for item in sample_crawl.items
        }
    finally:
        server.shutdown()
        server.server_close()


def test_static_server_answers_cors_preflight(catalogue):
    import httpx

    port = free_port()
    server = serve_in_thread(catalogue, port=port)
    try:
        response = httpx.options(
            f"http://127.0.0.1:{port}/catalog.json",
            headers={"Origin": "https://radiantearth.github.io", "Access-Control-Request-Method": "GET"},
        )
        assert response.headers["access-control-allow-origin"] == "*"
        response = httpx.get(f"http://127.0.0.1:{port}/catalog.json")
        assert response.headers["content-type"] == "application/json"
        assert response.json()["id"] == "zarr-stac"
    finally:
        server.shutdown()
        server.server_close()


def test_validate_a_catalogue_in_a_bucket_and_an_api(tmp_path, sample_crawl, storage, empty_bucket, api_url, validator):
    from static_catalog.validate import validate_any

    write_catalog(sample_crawl.collections, sample_crawl.items, f"{empty_bucket}/stac", storage=storage)
    report = validate_any(f"{empty_bucket}/stac/catalog.json", validator, storage)
    assert (report.checked, report.errors) == (14, [])
    report = validate_any(api_url, validator)
    assert (report.checked, report.errors) == (13, [])  # 3 collections, 10 items
