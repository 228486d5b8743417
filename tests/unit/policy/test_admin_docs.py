"""The admin guide's examples are real: the worked example loads, the broken one fails as shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from hub_ext.policy import ConfigError, Ledger, load_config, profile_choices

pytestmark = pytest.mark.unit

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "admin" / "teams-and-quotas.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def mlteams(block: str) -> Any:
    return yaml.safe_load(block)["hub"]["config"]["MLTeams"]


def test_worked_example_loads() -> None:
    config = load_config(mlteams(blocks("yaml")[0]))
    assert sorted(config.teams) == ["nlp", "vision"]
    assert len(config.profiles) == 4
    assert config.teams["nlp"].namespace == "ml-nlp"
    assert config.teams["vision"].namespace == "team-vision"
    choices = profile_choices(config, Ledger(), "vision", "ada")
    assert choices[1].availability == "team vision: 8 of 8 GPUs free; you hold 0 of your 2"


def test_worked_example_loads_from_hub_config_object() -> None:
    hub_config = Config({"MLTeams": mlteams(blocks("yaml")[0])})
    assert sorted(load_config(hub_config.MLTeams).teams) == ["nlp", "vision"]


def test_broken_example_fails_exactly_as_documented() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(mlteams(blocks("yaml")[1]))
    assert str(info.value) == blocks("text")[0].rstrip("\n")
