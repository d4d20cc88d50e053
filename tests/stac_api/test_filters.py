"""GET filters: what `filters.get_filter` makes of them is what stac-fastapi made of
them (its `clean_search_args`), validated once per distinct filter."""

import pytest
from fastapi import HTTPException
from stac_fastapi.pgstac.core import clean_search_args
from stac_fastapi.types.errors import InvalidQueryParameter

from stac_api.serving import filters

FILTERS = [
    pytest.param("variable_id = 'tas' AND experiment_id = 'ssp585'", "cql2-text", id="two facets"),
    pytest.param("variable_id IN ('tas', 'pr') OR NOT (member_id LIKE 'r1%')", "cql2-text", id="in, like, not"),
    pytest.param("S_INTERSECTS(geometry, POLYGON((0 0, 10 0, 10 10, 0 10, 0 0)))", "cql2-text", id="spatial"),
    pytest.param(
        "T_INTERSECTS(datetime, INTERVAL('2015-01-01T00:00:00Z', '2020-01-01T00:00:00Z'))", "cql2-text", id="temporal"
    ),
    pytest.param("eo:cloud_cover < 10.5", "cql2-text", id="prefixed name"),
    pytest.param('{"op": "=", "args": [{"property": "variable_id"}, "tas"]}', "cql2-json", id="cql2-json"),
    pytest.param(
        '{"op": "a_contains", "args": [{"property": "variables"}, ["tas"]]}', "cql2-json", id="array operator"
    ),
]


@pytest.mark.parametrize(("text", "lang"), FILTERS)
def test_a_filter_becomes_what_stac_fastapi_made_of_it(text, lang):
    theirs = clean_search_args({}, filter_query=text, filter_lang=lang)
    assert filters.get_filter(text, lang) == (theirs["filter"], theirs["filter_lang"])


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        pytest.param("variable_id = ", "cql2-text", id="cut short"),
        pytest.param("variable_id", "cql2-text", id="not a condition"),
        pytest.param("1 + 1", "cql2-text", id="arithmetic, not boolean"),
        pytest.param('{"op": "and", "args": []}', "cql2-json", id="and of nothing"),
        pytest.param('{"op": "=", "args": [', "cql2-json", id="broken JSON"),
    ],
)
def test_a_filter_stac_fastapi_refuses_is_refused_naming_the_filter(text, lang):
    with pytest.raises(HTTPException):
        clean_search_args({}, filter_query=text, filter_lang=lang)
    for _ in range(2):  # refusals are not remembered as valid
        with pytest.raises(InvalidQueryParameter, match="Invalid filter"):
            filters.get_filter(text, lang)


def test_a_repeated_filter_is_validated_once_and_each_caller_gets_its_own_copy():
    text = "variable_id = 'tas' AND source_id = 'validated-once'"
    before = filters._valid_json_cached.cache_info()
    first, _ = filters.get_filter(text, "cql2-text")
    first["args"].clear()  # stac-fastapi wraps and changes what it is given
    second, _ = filters.get_filter(text, "cql2-text")
    after = filters._valid_json_cached.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert second == clean_search_args({}, filter_query=text, filter_lang="cql2-text")["filter"]
