"""Publishing to a folder or a bucket: incremental, atomic for readers, never losing items."""

import copy
import datetime as dt
import itertools
import json
import re
import threading

import httpx
import pystac
import pytest

from static_catalog.write import write_catalog
from tests.proxy import FaultProxy, FaultRules
from zarr_stac.common.storage import StorageOptions
from zarr_stac.loaders.running.crawl import crawl

UTC = dt.timezone.utc


def synthetic(n_items: int, collections=("alpha", "beta"), version: int = 0):
    """Items and collections without a crawl, for volume; `version` changes every item."""
    items = []
    for i in range(n_items):
        cid = collections[i % len(collections)]
        lon = -170.0 + (i % 340)
        item = pystac.Item(
            id=f"item-{i:05d}",
            geometry={
                "type": "Polygon",
                "coordinates": [[[lon, 0.0], [lon + 1, 0.0], [lon + 1, 1.0], [lon, 1.0], [lon, 0.0]]],
            },
            bbox=[lon, 0.0, lon + 1, 1.0],
            datetime=None,
            properties={
                "start_datetime": "2000-01-01T00:00:00Z",
                "end_datetime": "2000-12-31T00:00:00Z",
                "version": version,
            },
            collection=cid,
        )
        item.add_asset(
            "zarr",
            pystac.Asset(href=f"s3://bucket/{cid}/{i}.zarr", media_type="application/vnd+zarr", roles=["data", "zarr"]),
        )
        items.append(item)
    extent = pystac.Extent(
        pystac.SpatialExtent([[-180.0, 0.0, 180.0, 1.0]]),
        pystac.TemporalExtent([[dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2000, 12, 31, tzinfo=UTC)]]),
    )
    cols = [
        pystac.Collection(id=c, description=f"collection {c}", extent=extent, license="CC-BY-4.0") for c in collections
    ]
    return cols, items


def walk_json(read, root="catalog.json"):
    """Follow every link from the root with `read(path) -> dict`; returns item ids."""
    items = []
    catalog = read(root)
    for child in (link for link in catalog["links"] if link["rel"] == "child"):
        cpath = child["href"].removeprefix("./")
        collection = read(cpath)
        assert collection["id"] and collection["type"] == "Collection"
        base = cpath.rsplit("/", 1)[0]
        for link in (link for link in collection["links"] if link["rel"] == "item"):
            item = read(f"{base}/{link['href'].removeprefix('./')}")
            assert item["collection"] == collection["id"] and item["type"] == "Feature"
            items.append(item["id"])
    return items


# -- object-store destination -------------------------------------------------------------
_buckets = itertools.count()


@pytest.fixture
def out_bucket(s3_server):
    """A new bucket that anyone may read (as a published catalogue's would be)."""
    name = f"stac-out-{next(_buckets)}"
    s3_server.create_bucket(name, public=True)
    return name


def test_bucket_destination_with_absolute_links(out_bucket, s3_server, storage):
    cols, items = synthetic(20)
    base_url = f"{s3_server.endpoint_url}/{out_bucket}/stac"
    report = write_catalog(cols, items, f"s3://{out_bucket}/stac", storage=storage, base_url=base_url)
    assert report.written == 20 + 2 * 2 + 1  # items, collections (stable + snapshot), root
    fs = storage.filesystem(f"s3://{out_bucket}")
    assert fs.info(f"{out_bucket}/stac/catalog.json")["ContentType"] == "application/json"
    # Walk the published catalogue over HTTP with pystac: every item exactly once.
    reached = [i.id for i in pystac.Catalog.from_file(f"{base_url}/catalog.json").get_items(recursive=True)]
    assert sorted(reached) == sorted(i.id for i in items)


def test_rerun_writes_zero_objects_to_the_bucket(out_bucket, s3_server, storage):
    cols, items = synthetic(50)
    write_catalog(cols, items, f"s3://{out_bucket}/stac", storage=storage)
    with FaultProxy(s3_server.endpoint_url) as proxy:
        through_proxy = storage.model_copy(update={"endpoint_url": proxy.url})
        report = write_catalog(cols, items, f"s3://{out_bucket}/stac", storage=through_proxy)
        puts = [r for r in proxy.requests if r.method in ("PUT", "POST", "DELETE")]
    assert (report.written, report.unchanged) == (0, 50 + 2 * 2 + 1)
    assert puts == [], "nothing changed, nothing may be written"
    # One changed item rewrites that item and nothing else (its collection is unchanged).
    changed = copy.deepcopy(items)
    changed[3].properties["version"] = 1
    with FaultProxy(s3_server.endpoint_url) as proxy:
        report = write_catalog(
            cols, changed, f"s3://{out_bucket}/stac", storage=storage.model_copy(update={"endpoint_url": proxy.url})
        )
        puts = [r.path for r in proxy.requests if r.method == "PUT"]
    assert report.written == 1 and puts == [f"/{out_bucket}/stac/beta/item-00003/item-00003.json"]


# -- readers during an update ---------------------------------------------------------------
def test_a_reader_never_sees_a_missing_or_broken_object(tmp_path):
    cols, items = synthetic(400)
    write_catalog(cols, items, str(tmp_path))
    errors, walks = [], []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                walks.append(len(walk_json(lambda p: json.loads((tmp_path / p).read_text()))))
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 4):
            # Every item changes; a third of them move to a new collection, then back.
            moved_cols, moved = synthetic(
                400, collections=("alpha", "beta", "gamma") if version % 2 else ("alpha", "beta"), version=version
            )
            report = write_catalog(moved_cols, moved, str(tmp_path), may_delete=lambda cid: True)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    # Every walk saw one whole snapshot: each item exactly once.
    assert len(walks) > 3 and all(n == 400 for n in walks)
    # The objects unlinked by the moves wait out their grace period, then go.
    assert report.pending > 0 and report.deleted == 0
    report = write_catalog(moved_cols, moved, str(tmp_path), may_delete=lambda cid: True, delete_grace=0)
    assert report.pending == 0 and report.deleted > 0
    assert sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.glob("*/*/*.json")).count("gamma") == (
        133 if len(moved_cols) == 3 else 0
    )


# -- what may be deleted --------------------------------------------------------------------
def test_complete_crawl_removes_a_vanished_store(tmp_path):
    cols, items = synthetic(10)
    write_catalog(cols, items, str(tmp_path))
    report = write_catalog(cols, items[:-1], str(tmp_path), may_delete=lambda cid: True)
    # Unlinked at once, deleted after the grace period: the item and the old snapshot
    # of its collection.
    assert (report.deleted, report.pending) == (0, 2)
    assert sorted(walk_json(lambda p: json.loads((tmp_path / p).read_text()))) == sorted(i.id for i in items[:-1])
    report = write_catalog(cols, items[:-1], str(tmp_path), may_delete=lambda cid: True, delete_grace=0)
    assert (report.deleted, report.pending, report.written) == (2, 0, 1)  # written: the pending list
    assert not (tmp_path / "beta" / "item-00009").exists()
    assert sorted(walk_json(lambda p: json.loads((tmp_path / p).read_text()))) == sorted(i.id for i in items[:-1])


def test_partial_crawl_deletes_nothing_and_keeps_earlier_items_linked(tmp_path):
    cols, items = synthetic(10)
    write_catalog(cols, items, str(tmp_path))
    # This time two stores (one per collection) and a whole collection failed to read.
    report = write_catalog(
        cols[:1], [i for i in items[2:] if i.collection_id == "alpha"], str(tmp_path), may_delete=lambda cid: False
    )
    assert report.deleted == 0 and report.kept == 6
    assert sorted(walk_json(lambda p: json.loads((tmp_path / p).read_text()))) == sorted(i.id for i in items)


def test_a_collection_extent_widens_to_cover_the_items_kept_from_before(tmp_path):
    cols, items = synthetic(10)
    write_catalog(cols, items, str(tmp_path))
    # The crawl now sees alpha's stores but one, and says alpha spans less than before.
    narrow = cols[0].clone()
    narrow.extent = pystac.Extent(
        pystac.SpatialExtent([[0.0, 0.0, 1.0, 1.0]]),
        pystac.TemporalExtent([[dt.datetime(2001, 1, 1, tzinfo=UTC), dt.datetime(2001, 6, 1, tzinfo=UTC)]]),
    )
    alpha = [i for i in items[2:] if i.collection_id == "alpha"]
    report = write_catalog([narrow], alpha, str(tmp_path), may_delete=lambda cid: False)
    assert report.kept == 6  # item-00000 of alpha, and beta's five
    extent = json.loads((tmp_path / "alpha" / "collection.json").read_text())["extent"]
    assert extent["spatial"]["bbox"] == [[-170.0, 0.0, 1.0, 1.0]]  # the kept item-00000 sits at -170..-169
    assert extent["temporal"]["interval"] == [["2000-01-01T00:00:00Z", "2001-06-01T00:00:00Z"]]


def test_failed_stores_are_kept_in_a_real_partial_crawl(s3_server, storage, sample_bucket, tmp_path):
    write_catalog(*_crawl_parts(crawl(sample_bucket, storage)), str(tmp_path))
    # The era store hangs now: its earlier item must survive the republish.
    with FaultProxy(s3_server.endpoint_url, FaultRules(hang=re.compile(r"/reanalysis/"))) as proxy:
        result = crawl(
            sample_bucket, StorageOptions(endpoint_url=proxy.url, anon=True, public_anon=True, timeout=2.0, retries=0)
        )  # 2 s: only the hang times out
    assert [(f.kind, f.collection_id) for f in result.failures] == [("timeout", "reanalysis")]
    report = write_catalog(result.collections, result.items, str(tmp_path), may_delete=result.may_delete)
    assert report.deleted == 0 and report.kept == 1
    reached = walk_json(lambda p: json.loads((tmp_path / p).read_text()))
    assert "era-like-daily" in reached and len(reached) == 10


def _crawl_parts(result):
    return result.collections, result.items


def test_geoparquet_copy_of_each_collection(tmp_path, sample_crawl):
    import pyarrow.parquet as pq

    write_catalog(sample_crawl.collections, sample_crawl.items, str(tmp_path), geoparquet=True)
    collection = json.loads((tmp_path / "cmip6" / "collection.json").read_text())
    asset = collection["assets"]["geoparquet-items"]
    assert (asset["href"], asset["type"], asset["roles"]) == (
        "./items.parquet",
        "application/vnd.apache.parquet",
        ["stac-items"],
    )
    table = pq.read_table(tmp_path / "cmip6" / "items.parquet")
    assert sorted(table.column("id").to_pylist()) == sorted(i.id for i in sample_crawl.items_of("cmip6"))


def test_ids_cannot_escape_the_destination(tmp_path):
    cols, items = synthetic(2)
    items[0].id = "../../etc/passwd"
    items[1].id = "a/b"
    write_catalog(cols, items, str(tmp_path / "out"))
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert all(p.startswith("out/") for p in written), written
    assert "out/alpha/etc-passwd/etc-passwd.json" in written and "out/beta/a-b/a-b.json" in written


def test_static_server_serves_what_was_published(tmp_path):
    from static_catalog.serve import serve_in_thread
    from zarr_stac.services import free_port

    cols, items = synthetic(5)
    write_catalog(cols, items, str(tmp_path))
    port = free_port()
    server = serve_in_thread(tmp_path, port=port)
    try:
        reached = walk_json(lambda p: httpx.get(f"http://127.0.0.1:{port}/{p}").json())
        assert sorted(reached) == sorted(i.id for i in items)
    finally:
        server.shutdown()
        server.server_close()
