"""The mapping configuration: templates, collections, public hrefs, secrets, errors."""

import json
import textwrap
import warnings

import pytest

from zarr_stac.loaders.config import CollectionConfig, ConfigError, load_config
from zarr_stac.loaders.running.crawl import crawl
from zarr_stac.samples import write_dataset

from .cases import antimeridian, descending_lat

CMIP6_TEMPLATE = "{source_id}/{experiment_id}/{member_id}/{table_id}/{variable_id}/{grid_label}/v{version}"


@pytest.fixture(scope="module")
def cmip6_bucket(s3_server, storage):
    """Stores laid out as Pangeo's CMIP6 bucket, one of them off-layout."""
    s3_server.create_bucket("cmip6", public=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, build in {
            "CMIP6/ModelX/historical/r1i1p1f1/Amon/tas/gn/v20190308": antimeridian,
            "CMIP6/ModelX/ssp585/r1i1p1f1/Amon/tas/gn/v20190308": antimeridian,
            "CMIP6/ModelX/ssp585/r1i1p1f1/Omon/tos/gr/v20200101": descending_lat,
            "CMIP6/ModelX/scratch/test.zarr": antimeridian,
        }.items():
            ds = build()
            ds.attrs.update(
                license="CMIP6 model data is licensed under a Creative Commons Attribution 4.0 International License",
                institution="Model X Centre",
                keywords="climate, CMIP6",
            )
            write_dataset(ds, f"s3://cmip6/{path}", storage, public=True)
    return "s3://cmip6/CMIP6"


def write_config(tmp_path, text: str):
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def cmip6_config(tmp_path, cmip6_bucket, s3_server, monkeypatch):
    monkeypatch.setenv("TEST_S3_KEY", "planted-key-7f3a")
    monkeypatch.setenv("TEST_S3_SECRET", "planted-secret-91bd")
    return load_config(
        write_config(
            tmp_path,
            f"""
            catalog:
              id: test-centre
              title: Test centre
            sources:
              - url: {cmip6_bucket}
                storage:
                  endpoint_url: {s3_server.endpoint_url}
                  key: ${{TEST_S3_KEY}}
                  secret: ${{TEST_S3_SECRET}}
                  public_anon: true
                public_href:
                  prefix: s3://cmip6/
                  public: https://objects.example.org/cmip6/
                path_template: "{CMIP6_TEMPLATE}"
                item_id: "{{source_id}}.{{experiment_id}}.{{member_id}}.{{table_id}}.{{variable_id}}.{{grid_label}}"
                collection:
                  id: "cmip6-{{table_id}}"
                  title: "CMIP6 {{table_id}}"
                properties:
                  project: CMIP6
            """,
        )
    )


def test_templates_place_items_and_become_properties(cmip6_config):
    result = crawl(cmip6_config)
    assert sorted((i.collection_id, i.id) for i in result.items) == [
        ("cmip6-Amon", "ModelX.historical.r1i1p1f1.Amon.tas.gn"),
        ("cmip6-Amon", "ModelX.ssp585.r1i1p1f1.Amon.tas.gn"),
        ("cmip6-Omon", "ModelX.ssp585.r1i1p1f1.Omon.tos.gr"),
    ]
    tos = next(i for i in result.items if i.id.endswith("tos.gr"))
    fields = ("source_id", "experiment_id", "member_id", "table_id", "variable_id", "grid_label", "version", "project")
    assert {k: tos.properties[k] for k in fields} == {
        "source_id": "ModelX", "experiment_id": "ssp585", "member_id": "r1i1p1f1", "table_id": "Omon",
        "variable_id": "tos", "grid_label": "gr", "version": "20200101", "project": "CMIP6",
    }  # fmt: skip
    # The store that does not fit the layout is reported, not dropped silently.
    assert [(f.kind, f.url) for f in result.failures] == [("layout", "s3://cmip6/CMIP6/ModelX/scratch/test.zarr")]


def test_collections_from_templates_and_dataset_attributes(cmip6_config):
    collections = {c.id: c for c in crawl(cmip6_config).collections}
    amon = collections["cmip6-Amon"]
    assert amon.title == "CMIP6 Amon"
    assert amon.license == "CC-BY-4.0"  # from the CF license text all stores share
    assert amon.keywords == ["climate", "CMIP6"]
    assert [(p.name, p.roles) for p in amon.providers] == [("Model X Centre", ["producer"])]


def test_public_href_with_the_crawled_form_as_alternate(cmip6_config, s3_server):
    item = next(i for i in crawl(cmip6_config).items if i.id.endswith("tos.gr"))
    asset = item.assets["zarr"].to_dict()
    assert asset["href"] == "https://objects.example.org/cmip6/CMIP6/ModelX/ssp585/r1i1p1f1/Omon/tos/gr/v20200101"
    assert "xarray:storage_options" not in asset  # plain HTTPS needs none
    assert asset["alternate:name"] == "HTTPS"
    assert asset["alternate"] == {
        "s3": {
            "href": "s3://cmip6/CMIP6/ModelX/ssp585/r1i1p1f1/Omon/tos/gr/v20200101",
            "alternate:name": "S3",
            "xarray:storage_options": {"anon": True, "endpoint_url": s3_server.endpoint_url},
            # storage v2.0.0 (issue 17): the crawled form's scheme, the public endpoint
            "storage:refs": [f"custom-s3-{s3_server.endpoint_url.removeprefix('http://')}-cmip6"],
        }
    }
    assert "storage:refs" not in asset  # plain HTTPS: no object-store scheme
    assert "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json" in item.stac_extensions


def test_secrets_from_the_environment_never_reach_stac(cmip6_config):
    result = crawl(cmip6_config)
    text = json.dumps([i.to_dict() for i in result.items] + [c.to_dict() for c in result.collections])
    assert "planted-key-7f3a" not in text and "planted-secret-91bd" not in text
    assert "planted" not in repr(cmip6_config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: []\n", "mapping.yaml: sources: List should have at least 1 item"),
        (
            "sources:\n  - url: s3://b\n    storage: {endpoint: x}\n",
            "mapping.yaml: sources.0.storage.endpoint: Extra inputs are not permitted",
        ),
        (
            "sources:\n  - url: s3://b\n    collection: {id: '{table_id}'}\n",
            "collection.id uses {table_id}, which path_template does not define (defined: none: set path_template)",
        ),
        ("sources:\n  - url: s3://b\n    path_template: '{a}/{a}'\n", "repeats a field"),
        (
            "sources:\n  - url: s3://b\n    storage: {key: '${ZARR_STAC_TEST_UNSET}'}\n",
            "mapping.yaml.sources[0].storage.key: environment variable ZARR_STAC_TEST_UNSET is not set",
        ),
        ("sources: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_invalid_configurations_name_the_culprit(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path, text))
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ([{"summary": "Monthly means."}, {"summary": "Monthly means."}], "Monthly means."),
        (
            [{"summary": "Monthly means."}, {"summary": "Daily means."}],
            "2 Zarr datasets in `x`.",
        ),  # not shared: not used
        ([{}, {}], "2 Zarr datasets in `x`."),
    ],
    ids=["shared", "conflicting", "absent"],
)
def test_collection_description_defaults_to_the_shared_acdd_summary(sample_crawl, attrs, expected):
    from zarr_stac.loaders.mapping.collections import build_collection

    items = [item.clone() for item in sample_crawl.items[:2]]
    # (without the lines of Python that open a store, which follow by default)
    assert (
        build_collection("x", items, config=CollectionConfig(open_instructions=False), attrs=attrs).description
        == expected
    )
    assert build_collection("x", items, attrs=attrs).description.startswith(f"{expected}\n\nEach item is one store")
