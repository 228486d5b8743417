"""The shipped z2jh values validate against the chart's own schema and our MLTeams schema."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hub_ext.policy import load_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
VALUES = sorted((REPO / "helm-values").glob("*.yaml"))


def z2jh_dir() -> Path:
    path = Path(os.environ.get("MLTEAMS_Z2JH_DIR", REPO.parent / "shared" / "z2jh"))
    if not (path / "values.schema.yaml").is_file():
        raise FileNotFoundError(
            f"the z2jh chart's values.schema.yaml and values.yaml are expected in {path} "
            "(set MLTEAMS_Z2JH_DIR to their folder)"
        )
    return path


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


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.name)
def test_values_validate_against_the_chart_schema(path: Path) -> None:
    chart = z2jh_dir()
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    values = merged(defaults, yaml.safe_load(path.read_text()))
    jsonschema.validate(values, schema)


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.name)
def test_values_carry_a_valid_mlteams_section(path: Path) -> None:
    hub_config = yaml.safe_load(path.read_text())["hub"]["config"]
    assert hub_config["JupyterHub"]["spawner_class"] == "mlteams"
    section = hub_config["MLTeams"]
    config = load_config({k: section[k] for k in ("teams", "profiles", "datasets") if k in section})
    assert config.teams
    extra = yaml.safe_load(path.read_text())["hub"]["extraConfig"]
    assert any("at_hub_start(c)" in snippet for snippet in extra.values())


def test_schema_check_catches_a_misspelt_key() -> None:
    chart = z2jh_dir()
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    broken = merged(defaults, {"hub": {"extraConfg": {}}})
    with pytest.raises(jsonschema.ValidationError, match="extraConfg"):
        jsonschema.validate(broken, schema)
