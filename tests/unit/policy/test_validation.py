"""The shared validation helpers: safe excerpts of untrusted input, and pydantic's own errors
reworded for the admin wherever a configuration mapping uses a plain type without a rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field, ValidationError

from hub_ext.policy.config import Schema
from hub_ext.policy.fields import written_by_admin
from hub_ext.policy.validation import excerpt, problems_from, show

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("a" * 32, None, "'" + "a" * 32 + "'"),
        ("a" * 33, None, "'" + "a" * 32 + "...'"),
        ("abcd", 4, "'abcd'"),
        ("abcde", 4, "'abcd...'"),
        ('<b onclick="x">', None, "'?b onclick=?x??'"),
        (12, None, "'12'"),
        (None, None, "'null'"),
        (("a",), None, "a tuple"),
    ],
)
def test_an_excerpt_is_cut_after_its_limit_and_sanitised(
    value: Any, limit: int | None, expected: str
) -> None:
    shown = excerpt(value) if limit is None else excerpt(value, limit)
    assert shown == expected


def _circular() -> list[Any]:
    looped: list[Any] = []
    looped.append(looped)
    return looped


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a" * 58, '"' + "a" * 58 + '"'),
        ("a" * 59, '"' + "a" * 56 + "..."),
        ("é\n", '"\\u00e9\\n"'),
        (lambda: {"gpus": {1, 2}}, '{"gpus": "<set>"}'),
        (lambda: {(1, 2): "pair"}, "<dict>"),
        (_circular, "<list>"),
    ],
)
def test_a_value_is_shown_as_json_cut_after_sixty_characters(value: Any, expected: str) -> None:
    assert show(value() if callable(value) else value) == expected


def _plain_model() -> type[Schema]:
    class Plain(Schema):
        items: tuple[int, ...] = ()
        word: str = ""
        count: int = 0
        table: dict[str, int] = Field(default_factory=dict)

    return Plain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"items": "1,2"}, 'X.items: must be a list, got "1,2"'),
        ({"word": 5}, "X.word: must be a string, got 5"),
        ({"count": "many"}, 'X.count: is not valid here, got "many"'),
        ({"table": {1: 2}}, "X.table[1]: keys must be strings, got 1"),
        ({"table": []}, "X.table: must be a mapping, got []"),
        (
            {"cuont": 1},
            'X.cuont: unknown key (did you mean "count"?); allowed keys: items, word, count, table',
        ),
    ],
)
def test_pydantic_errors_of_plain_types_are_in_the_projects_words(
    raw: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _plain_model().model_validate(raw, context=written_by_admin("X"))
    assert [str(problem) for problem in problems_from(info.value, "X")] == [expected]


def test_a_reworded_error_keeps_the_value_that_was_wrong() -> None:
    with pytest.raises(ValidationError) as info:
        _plain_model().model_validate({"word": 5, "count": "many"})
    assert [(error["loc"], error["input"]) for error in info.value.errors()] == [
        (("word",), 5),
        (("count",), "many"),
    ]
