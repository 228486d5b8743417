"""The KubeSpawner settings of a team and profile, whole, and the user label's rendering."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy import validate_user_options
from hub_ext.policy.pod_settings import literal, pod_settings
from hub_ext.policy.validation import is_label_value
from tests.unit.policy.sample import sample_config

pytestmark = pytest.mark.unit


def test_a_gpu_profile_on_the_default_server() -> None:
    config = sample_config()
    options = validate_user_options(
        config, {"team": "vision", "profile": "pytorch-1gpu"}, groups=["vision-engineers"]
    )
    assert pod_settings(config, options, user="Ada.Lovelace@x.org") == {
        "namespace": "team-vision",
        "image": "mlteams/pytorch:1",
        "node_selector": {"nvidia.com/gpu.product": "A100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "extra_resource_limits": {"nvidia.com/gpu": "1"},
        "extra_resource_guarantees": {"nvidia.com/gpu": "1"},
        "extra_labels": {
            "mlteams.io/team": "vision",
            "mlteams.io/profile": "pytorch-1gpu",
            "mlteams.io/user": "Ada.Lovelace-x.org",
        },
        "extra_annotations": {
            "mlteams.io/user": "Ada.Lovelace@x.org",
            "mlteams.io/server": "Ada.Lovelace@x.org/",
        },
        "environment": {
            "NCCL_DEBUG": "WARN",
            "MLTEAMS_TEAM": "vision",
            "MLTEAMS_PROFILE": "pytorch-1gpu",
            "MLTEAMS_IMAGE": "mlteams/pytorch:1",
            "MLTEAMS_GPUS": "1",
        },
        "cpu_guarantee": 8.0,
        "cpu_limit": 8.0,
        "mem_guarantee": 64 * 2**30,
        "mem_limit": 64 * 2**30,
    }


def test_a_cpu_profile_on_a_named_server() -> None:
    config = sample_config()
    options = validate_user_options(config, {"team": "nlp", "profile": "cpu"}, groups=["/ml/nlp"])
    assert pod_settings(config, options, user="bob", server_name="small") == {
        "namespace": "ml-nlp",
        "image": "mlteams/cpu:1",
        "node_selector": {},
        "tolerations": [],
        "extra_resource_limits": {},
        "extra_resource_guarantees": {},
        "extra_labels": {
            "mlteams.io/team": "nlp",
            "mlteams.io/profile": "cpu",
            "mlteams.io/user": "bob",
        },
        "extra_annotations": {"mlteams.io/user": "bob", "mlteams.io/server": "bob/small"},
        "environment": {
            "MLTEAMS_TEAM": "nlp",
            "MLTEAMS_PROFILE": "cpu",
            "MLTEAMS_IMAGE": "mlteams/cpu:1",
            "MLTEAMS_GPUS": "0",
        },
        "cpu_guarantee": 2.0,
        "cpu_limit": 2.0,
        "mem_guarantee": 8 * 2**30,
        "mem_limit": 8 * 2**30,
    }


def test_the_gpus_chosen_in_a_range_and_no_cpu_or_memory_settings() -> None:
    config = sample_config()
    options = validate_user_options(
        config, {"team": "vision", "profile": "flex", "gpus": 3}, groups=["vision-engineers"]
    )
    settings = pod_settings(config, options, user="ada")
    assert settings["extra_resource_limits"] == {"nvidia.com/gpu": "3"}
    assert settings["extra_resource_guarantees"] == {"nvidia.com/gpu": "3"}
    assert settings["environment"]["MLTEAMS_GPUS"] == "3"
    assert not {"cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit"} & set(settings)


@pytest.mark.parametrize(
    ("user", "label"),
    [
        ("ada", "ada"),
        ("Xena", "Xena"),
        ("ada.", "ada"),
        ("-ada_", "ada"),
        ("ada lovelace", "ada-lovelace"),
        ("josé", "jos"),
        ("zoë.m", "zo-.m"),
        ("渡辺", "user"),
        ("@@@", "user"),
        ("...", "user"),
        ("a" * 64, "a" * 63),
        ("a" * 62 + ".b", "a" * 62),
    ],
)
def test_the_user_label_is_label_safe(user: str, label: str) -> None:
    config = sample_config()
    options = validate_user_options(config, {"team": "nlp", "profile": "cpu"}, groups=["/ml/nlp"])
    settings = pod_settings(config, options, user=user)
    assert settings["extra_labels"]["mlteams.io/user"] == label
    assert is_label_value(label)
    assert settings["extra_annotations"]["mlteams.io/user"] == user


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{username}", "{{username}}"),
        ({"a": "{x}", "b": ["{y}", 1, None]}, {"a": "{{x}}", "b": ["{{y}}", 1, None]}),
        (["{", ["}"]], ["{{", ["}}"]]),
        (3, 3),
    ],
)
def test_literal_doubles_braces_in_every_string(value: Any, expected: Any) -> None:
    assert literal(value) == expected
