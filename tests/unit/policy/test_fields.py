"""The value rules of the configuration as pydantic annotations, on a small model of their own.

Each rule checks a value before pydantic does, documents what it accepts in the JSON Schema, and
reads values as an admin writes them (quantities, keys by their written name) only with the
``written_by_admin`` context. Models built in Python get pydantic's own ``ValidationError``,
with the project's message and the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

import pytest
from pydantic import Field, ValidationError

from hub_ext.policy.config import MLTeamsConfig, Schema, Team
from hub_ext.policy.fields import (
    CountOrModel,
    Frozen,
    Listed,
    Number,
    OneOf,
    PositiveNumber,
    Quantity,
    Text,
    WholeNumber,
    written_by_admin,
)
from hub_ext.policy.quantities import parse_memory
from hub_ext.policy.validation import problems_from

pytestmark = pytest.mark.unit

GIB = 2**30


class Slice(Schema):
    """A mapping whose key is written differently from its Python name."""

    memory_limit: Annotated[int, Quantity(parse_memory)] = Field(alias="memory")


def _settings_model() -> type[Schema]:
    """A model using each rule, built anew so that the rules make its schema at call time."""

    class Settings(Schema):
        replicas: Annotated[int, WholeNumber(1, 5)] = 1
        ratio: Annotated[float, Number(minimum=0)] = 0.0
        poll: Annotated[float, PositiveNumber(60)] = 1.0
        mode: Annotated[str, OneOf(("fast", "slow"))] = "fast"
        label: Annotated[str, Text(8)] = "x"
        tags: Annotated[tuple[Annotated[str, Text(8)], ...], Listed("tag")] = ("a",)
        env: Annotated[Mapping[str, str], Frozen()] = {}
        size: Annotated[int | Slice, CountOrModel(WholeNumber(0, 8), Slice)] = 0

    return Settings


def _written(raw: dict[str, Any]) -> Any:
    return _settings_model().model_validate(
        raw, context=written_by_admin("X"), by_alias=True, by_name=False
    )


def _written_problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        _written(raw)
    return [str(problem) for problem in problems_from(info.value, "X")]


def test_each_rule_documents_what_it_accepts_in_the_json_schema() -> None:
    properties = _settings_model().model_json_schema()["properties"]
    assert properties == {
        "replicas": {
            "default": 1,
            "maximum": 5,
            "minimum": 1,
            "title": "Replicas",
            "type": "integer",
        },
        "ratio": {"default": 0.0, "minimum": 0, "title": "Ratio", "type": "number"},
        "poll": {
            "default": 1.0,
            "exclusiveMinimum": 0,
            "maximum": 60,
            "title": "Poll",
            "type": "number",
        },
        "mode": {"default": "fast", "enum": ["fast", "slow"], "title": "Mode", "type": "string"},
        "label": {
            "default": "x",
            "maxLength": 8,
            "minLength": 1,
            "title": "Label",
            "type": "string",
        },
        "tags": {
            "default": ["a"],
            "items": {"maxLength": 8, "minLength": 1, "type": "string"},
            "minItems": 1,
            "title": "Tags",
            "type": "array",
            "uniqueItems": True,
        },
        "env": {
            "additionalProperties": {"type": "string"},
            "default": {},
            "title": "Env",
            "type": "object",
        },
        "size": {
            "anyOf": [{"type": "integer"}, {"$ref": "#/$defs/Slice"}],
            "default": 0,
            "title": "Size",
        },
    }


def test_values_within_the_rules_are_kept_as_written() -> None:
    settings = _written(
        {
            "replicas": 5,
            "ratio": 0,
            "poll": 60,
            "mode": "slow",
            "label": "eight ch",
            "tags": ["a", "b"],
            "env": {"A": "1"},
            "size": 8,
        }
    )
    kept = {name: getattr(settings, name) for name in type(settings).model_fields}
    assert kept == {
        "replicas": 5,
        "ratio": 0.0,
        "poll": 60.0,
        "mode": "slow",
        "label": "eight ch",
        "tags": ("a", "b"),
        "env": MappingProxyType({"A": "1"}),
        "size": 8,
    }
    assert isinstance(settings.env, MappingProxyType)
    assert type(settings.ratio) is float and type(settings.poll) is float


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"replicas": 0}, "X.replicas: must be an integer >= 1, got 0"),
        ({"replicas": 6}, "X.replicas: must be at most 5, got 6"),
        ({"ratio": -0.1}, "X.ratio: must be a number >= 0, got -0.1"),
        ({"poll": 0}, "X.poll: must be a number > 0, got 0"),
        ({"poll": 60.5}, "X.poll: must be at most 60, got 60.5"),
        ({"mode": "slw"}, 'X.mode: must be one of fast, slow, got "slw" (did you mean "slow"?)'),
        ({"label": "nine chrs"}, "X.label: must be at most 8 characters, got 9"),
        ({"tags": []}, "X.tags: must list at least one tag"),
        ({"tags": ("a", "a")}, 'X.tags[1]: "a" is listed twice'),
        ({"env": ["A"]}, 'X.env: must be a mapping, got ["A"]'),
        ({"size": 9}, "X.size: must be at most 8, got 9"),
    ],
)
def test_a_value_outside_a_rule_is_refused_in_its_words(raw: dict[str, Any], expected: str) -> None:
    assert _written_problems(raw) == [expected]


def test_a_mapping_in_place_of_a_count_is_read_by_its_written_keys() -> None:
    assert _written({"size": {"memory": "1Gi"}}).size == Slice(memory=GIB)
    assert _written_problems({"size": {"memory_limit": "1Gi"}}) == [
        "X.size.memory: is required",
        'X.size.memory_limit: unknown key (did you mean "memory"?); allowed keys: memory',
    ]


def test_a_mapping_in_place_of_a_count_built_in_python_takes_names_and_bytes() -> None:
    model = _settings_model()
    assert model.model_validate({"size": {"memory_limit": GIB}}).size == Slice(memory=GIB)
    assert model.model_validate({"size": {"memory": GIB}}).size == Slice(memory=GIB)
    with pytest.raises(ValidationError) as info:
        model.model_validate({"size": {"memory": "1Gi"}})
    assert [(error["loc"], error["msg"]) for error in info.value.errors()] == [
        (("size", "memory"), 'must be an integer >= 0, got "1Gi"')
    ]


def test_a_model_already_built_is_taken_as_it_is() -> None:
    built = Slice(memory=GIB)
    assert _written({"size": built}).size is built


def test_a_team_built_in_python_reports_each_problem_with_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        Team.model_validate(
            {"name": 5, "quota": {"gpus": 0}, "profiles": ["cpu"], "groups": ["a", "b", "a"]}
        )
    assert [
        (error["type"], error["loc"], error["msg"], error["input"]) for error in info.value.errors()
    ] == [
        ("mlteams", ("name",), "must be a string, got 5", 5),
        ("mlteams", ("groups", 2), '"a" is listed twice', "a"),
    ]


def test_a_configuration_built_in_python_names_other_keys_below_mlteams() -> None:
    with pytest.raises(ValidationError) as info:
        MLTeamsConfig.model_validate(
            {
                "teams": {"a": {"quota": {"gpus": 0}, "profiles": ["pytorch"]}},
                "profiles": {"cpu": {"image": "img"}},
            }
        )
    assert [(error["loc"], error["msg"]) for error in info.value.errors()] == [
        (
            ("teams", "a", "profiles", 0),
            'profile "pytorch" is not declared under MLTeams.profiles; declared: cpu',
        )
    ]
