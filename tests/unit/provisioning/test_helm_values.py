"""The shipped z2jh values validate against the chart's own schema and our MLTeams schema.

The chart's schema and defaults are the copies in ``tests/data/z2jh`` (see its README); the
MLTeams schema is ``helm-values/mlteams.schema.json``, generated from the configuration models.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from traitlets.config import Config

from hub_ext.policy import load_config
from hub_ext.policy.config import render_json_schema
from hub_ext.settings import MLTeams

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
Z2JH = REPO / "tests" / "data" / "z2jh"
HELM_VALUES = REPO / "helm-values"
MLTEAMS_SCHEMA = HELM_VALUES / "mlteams.schema.json"
VALUES = sorted(path for path in HELM_VALUES.iterdir() if path.suffix in (".yaml", ".yml"))


@cache
def chart_schema() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    return schema


@cache
def chart_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = yaml.safe_load((Z2JH / "values.yaml").read_text())
    return defaults


def mlteams_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(MLTEAMS_SCHEMA.read_text())
    return schema


def values_of(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


def merged(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def test_there_are_values_files() -> None:
    assert VALUES, "helm-values/ holds at least one values file"


def test_the_chart_files_are_in_the_repository() -> None:
    for name in ("values.schema.yaml", "values.yaml", "LICENSE", "README.md"):
        assert (Z2JH / name).is_file(), name


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.name)
def test_values_validate_against_the_chart_schema(path: Path) -> None:
    values = merged(chart_defaults(), values_of(path))
    jsonschema.validate(values, chart_schema())


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.name)
def test_values_validate_against_the_mlteams_schema(path: Path) -> None:
    section = values_of(path)["hub"]["config"]["MLTeams"]
    jsonschema.Draft202012Validator(mlteams_schema()).validate(section)


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.name)
def test_values_carry_a_valid_mlteams_section(path: Path) -> None:
    hub_config = values_of(path)["hub"]["config"]
    assert hub_config["JupyterHub"]["spawner_class"] == "mlteams"
    section = hub_config["MLTeams"]
    config = load_config(section)
    assert config.teams
    as_the_hub_reads_it = MLTeams(config=Config(hub_config)).load()
    assert as_the_hub_reads_it.teams == config.teams
    assert as_the_hub_reads_it.profiles == config.profiles
    assert as_the_hub_reads_it.datasets == config.datasets
    extra = values_of(path)["hub"]["extraConfig"]
    assert any("at_hub_start(c)" in snippet for snippet in extra.values())


def test_schema_check_catches_a_misspelt_key() -> None:
    broken = merged(chart_defaults(), {"hub": {"extraConfg": {}}})
    with pytest.raises(jsonschema.ValidationError, match="extraConfg"):
        jsonschema.validate(broken, chart_schema())


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (lambda s: s["teams"]["vision"].update(profile=["cpu"]), "'profile' was unexpected"),
        (lambda s: s["teams"]["vision"]["quota"].update(gpus="eight"), "'eight'"),
        (lambda s: s["profiles"]["cpu"].update(memory="8GB"), "'8GB'"),
        (lambda s: s["teams"].update({"Vision": s["teams"]["vision"]}), "'Vision'"),
        (lambda s: s["profiles"]["cpu"].update(env={"MLTEAMS_TEAM": "x"}), "MLTEAMS_TEAM"),
        (lambda s: s.update(provision="yes"), "'yes'"),
    ],
    ids=["misspelt key", "gpus", "quantity", "team name", "reserved env", "hub setting"],
)
def test_mlteams_schema_catches_mistakes(change: Any, found: str) -> None:
    section = copy.deepcopy(values_of(VALUES[0])["hub"]["config"]["MLTeams"])
    change(section)
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.Draft202012Validator(mlteams_schema()).validate(section)
    assert found in str(info.value)


def test_the_committed_mlteams_schema_is_current() -> None:
    assert MLTEAMS_SCHEMA.read_text() == render_json_schema(), (
        "helm-values/mlteams.schema.json is stale; regenerate it with "
        "`mlteams-manifests --schema > helm-values/mlteams.schema.json`"
    )
