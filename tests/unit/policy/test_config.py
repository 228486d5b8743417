"""The MLTeams configuration schema: a good config, each kind of mistake, all errors at once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from hub_ext.policy import (
    ConfigError,
    GpuRange,
    QuantityError,
    Quota,
    QuotaOverride,
    Toleration,
    load_config,
    parse_memory,
    parse_quota_override,
)
from hub_ext.policy.config import Evidence, Gate, json_schema
from hub_ext.policy.fields import QUANTITY_PATTERN
from hub_ext.policy.validation import LABEL_KEY_PATTERN, is_label_key
from tests.unit.policy.sample import GIB, sample_raw

pytestmark = pytest.mark.unit

Mutation = Callable[[dict[str, Any]], None]


def test_sample_config_loads_with_defaults_and_parsed_quantities() -> None:
    config = load_config(sample_raw())
    vision = config.teams["vision"]
    assert vision.namespace == "team-vision"
    assert config.teams["nlp"].namespace == "ml-nlp"
    assert vision.quota.gpus == 8 and vision.quota.gpus_per_user == 2
    assert vision.quota.cpu is None and vision.quota.memory is None
    assert config.teams["nlp"].quota.cpu == 64_000
    assert config.teams["nlp"].quota.memory == 256 * GIB
    assert config.teams["research"].quota.gpus_per_user == 0
    assert vision.groups == ("/ml/vision", "vision-engineers")
    assert vision.lead_groups == ("/ml/vision/leads",)
    assert vision.default_profile == "cpu"
    assert vision.contact == "#ml-vision"
    assert vision.promotion.gates["accuracy"] == Gate(min=0.9)
    assert config.namespace_teams == {
        "team-vision": "vision",
        "ml-nlp": "nlp",
        "team-research": "research",
    }

    gpu = config.profiles["pytorch-1gpu"]
    assert (gpu.gpus, gpu.gpus_min, gpu.gpus_max, gpu.gpu_choice) == (1, 1, 1, False)
    assert gpu.cpu == 8000 and gpu.memory == 64 * GIB
    assert dict(gpu.node_selector) == {"nvidia.com/gpu.product": "A100"}
    assert gpu.tolerations == (
        Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
    )
    assert gpu.tolerations[0].to_k8s() == {
        "key": "nvidia.com/gpu",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    assert dict(gpu.env) == {"NCCL_DEBUG": "WARN"}
    assert gpu.queue.enabled is False
    assert config.profiles["pytorch-2gpu"].display_name == "pytorch-2gpu"

    flex = config.profiles["flex"]
    assert (flex.gpus, flex.gpus_min, flex.gpus_max, flex.gpu_choice) == (1, 1, 4, True)
    queued = config.profiles["queued-1gpu"]
    assert queued.queue.enabled and queued.queue.max_wait_seconds == 600
    assert config.datasets["imagenet"].credentials_secret == "lake-readonly"


def test_config_is_immutable() -> None:
    config = load_config(sample_raw())
    with pytest.raises(ValidationError) as info:
        config.teams["vision"].quota.gpus = 100  # type: ignore[misc]
    assert [error["type"] for error in info.value.errors()] == ["frozen_instance"]
    with pytest.raises(TypeError):
        config.teams["ghost"] = config.teams["vision"]  # type: ignore[index]
    with pytest.raises(TypeError):
        config.profiles["cpu"].env["X"] = "1"  # type: ignore[index]


def test_minimal_config() -> None:
    config = load_config(
        {
            "teams": {"a": {"quota": {"gpus": 0}, "profiles": ["cpu"]}},
            "profiles": {"cpu": {"image": "img"}},
        }
    )
    assert config.teams["a"].namespace == "team-a"
    assert config.profiles["cpu"].gpus == 0
    assert dict(config.datasets) == {}


def _set(path: str, value: Any) -> Mutation:
    keys = path.split(".")

    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


def _delete(path: str) -> Mutation:
    keys = path.split(".")

    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


def _rename(path: str, new: str) -> Mutation:
    keys = path.split(".")

    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[new] = node.pop(keys[-1])

    return mutate


BAD_CONFIGS: list[tuple[str, Mutation, str]] = [
    (
        "per-user cap not an integer",
        _set("teams.vision.quota.gpus_per_user", "two"),
        'MLTeams.teams.vision.quota.gpus_per_user: must be an integer >= 0, got "two"',
    ),
    (
        "negative team gpus",
        _set("teams.vision.quota.gpus", -1),
        "MLTeams.teams.vision.quota.gpus: must be an integer >= 0, got -1",
    ),
    (
        "boolean gpus",
        _set("teams.vision.quota.gpus", True),
        "MLTeams.teams.vision.quota.gpus: must be an integer >= 0, got true",
    ),
    (
        "float gpus",
        _set("teams.vision.quota.gpus", 2.5),
        "MLTeams.teams.vision.quota.gpus: must be an integer >= 0, got 2.5",
    ),
    (
        "absurd gpus",
        _set("teams.vision.quota.gpus", 10**9),
        "MLTeams.teams.vision.quota.gpus: must be at most 4096, got 1000000000",
    ),
    (
        "per-user cap above the team's",
        _set("teams.vision.quota.gpus_per_user", 10),
        "MLTeams.teams.vision.quota.gpus_per_user: must not exceed the team's gpus (8), got 10",
    ),
    (
        "bad memory quantity",
        _set("teams.nlp.quota.memory", "256GB"),
        'MLTeams.teams.nlp.quota.memory: must be a Kubernetes quantity: "256GB" is not a '
        "Kubernetes quantity",
    ),
    (
        "unknown quota key",
        _set("teams.vision.quota.gpu", 4),
        'MLTeams.teams.vision.quota.gpu: unknown key (did you mean "gpus"?)',
    ),
    (
        "missing quota gpus",
        _delete("teams.vision.quota.gpus"),
        "MLTeams.teams.vision.quota.gpus: is required",
    ),
    (
        "misspelt team key",
        _rename("teams.vision.profiles", "profile"),
        'MLTeams.teams.vision.profile: unknown key (did you mean "profiles"?); allowed keys: ',
    ),
    (
        "misspelt top-level key",
        _rename("datasets", "dataset"),
        'MLTeams.dataset: unknown key (did you mean "datasets"?)',
    ),
    (
        "unknown key without a close match",
        _set("teams.vision.colour", "blue"),
        "MLTeams.teams.vision.colour: unknown key; allowed keys: display_name, groups",
    ),
    (
        "missing quota",
        _delete("teams.vision.quota"),
        "MLTeams.teams.vision.quota: is required",
    ),
    (
        "missing profiles",
        _delete("teams.vision.profiles"),
        "MLTeams.teams.vision.profiles: is required",
    ),
    (
        "empty profiles",
        _set("teams.vision.profiles", []),
        "MLTeams.teams.vision.profiles: must list at least one profile",
    ),
    (
        "profile listed twice",
        _set("teams.vision.profiles", ["cpu", "cpu"]),
        'MLTeams.teams.vision.profiles[1]: "cpu" is listed twice',
    ),
    (
        "undeclared profile",
        _set("teams.vision.profiles", ["cpu", "pytorch-8gpu"]),
        'MLTeams.teams.vision.profiles[1]: profile "pytorch-8gpu" is not declared under '
        'MLTeams.profiles (did you mean "pytorch-2gpu"?)',
    ),
    (
        "undeclared dataset",
        _set("teams.vision.datasets", ["coco"]),
        'MLTeams.teams.vision.datasets[0]: dataset "coco" is not declared under '
        "MLTeams.datasets; declared: imagenet",
    ),
    (
        "profile needs more GPUs than the team allows per user",
        _set("teams.vision.profiles", ["cpu", "queued-4gpu"]),
        'MLTeams.teams.vision.profiles[1]: profile "queued-4gpu" needs 4 GPUs but team vision '
        "allows at most 2 per user",
    ),
    (
        "profile needs more CPU than the team quota",
        _set("teams.research.quota.cpu", "1"),
        'MLTeams.teams.research.profiles[0]: profile "cpu" needs 2 CPUs but team research\'s '
        "quota is 1 CPU",
    ),
    (
        "duplicate namespace",
        _set("teams.nlp.namespace", "team-vision"),
        'MLTeams.teams.nlp.namespace: namespace "team-vision" is already used by team vision',
    ),
    (
        "namespace not a DNS label",
        _set("teams.vision.namespace", "Team_Vision"),
        "MLTeams.teams.vision.namespace: namespace must be a DNS-1123 label",
    ),
    (
        "reserved namespace",
        _set("teams.vision.namespace", "kube-system"),
        'MLTeams.teams.vision.namespace: "kube-system" is reserved by Kubernetes',
    ),
    (
        "team name not a DNS label",
        _rename("teams.vision", "Vision Team"),
        'MLTeams.teams["Vision Team"]: team name must be a DNS-1123 label',
    ),
    (
        "team name too long for the default namespace",
        _rename("teams.research", "r" * 60),
        f"MLTeams.teams.{'r' * 60}.namespace: the default namespace",
    ),
    (
        "groups not a list",
        _set("teams.vision.groups", "/ml/vision"),
        'MLTeams.teams.vision.groups: must be a list, got "/ml/vision"',
    ),
    (
        "group not a string",
        _set("teams.vision.lead_groups", [42]),
        "MLTeams.teams.vision.lead_groups[0]: must be a string, got 42",
    ),
    (
        "promotion high_stakes not a boolean",
        _set("teams.vision.promotion.high_stakes", "no"),
        'MLTeams.teams.vision.promotion.high_stakes: must be true or false, got "no"',
    ),
    (
        "promotion gate not a mapping",
        _set("teams.vision.promotion.gates", {"accuracy": 0.9}),
        "MLTeams.teams.vision.promotion.gates.accuracy: must be a mapping, got 0.9",
    ),
    (
        "profile without image",
        _delete("profiles.cpu.image"),
        "MLTeams.profiles.cpu.image: is required",
    ),
    (
        "image with spaces",
        _set("profiles.cpu.image", "mlteams/cpu:1 --privileged"),
        "MLTeams.profiles.cpu.image: must not contain spaces",
    ),
    (
        "profile gpus negative",
        _set("profiles.pytorch-1gpu.gpus", -1),
        "MLTeams.profiles.pytorch-1gpu.gpus: must be an integer >= 0, got -1",
    ),
    (
        "gpu range upside down",
        _set("profiles.flex.gpus", {"min": 3, "max": 1}),
        "MLTeams.profiles.flex.gpus.max: must be >= min (3), got 1",
    ),
    (
        "gpu range default outside",
        _set("profiles.flex.gpus", {"min": 1, "max": 2, "default": 4}),
        "MLTeams.profiles.flex.gpus.default: must be between min (1) and max (2), got 4",
    ),
    (
        "profile cpu not a quantity",
        _set("profiles.cpu.cpu", "two"),
        'MLTeams.profiles.cpu.cpu: must be a Kubernetes quantity: "two" is not a Kubernetes',
    ),
    (
        "misspelt profile key",
        _set("profiles.cpu.nodeSelector", {}),
        'MLTeams.profiles.cpu.nodeSelector: unknown key (did you mean "node_selector"?)',
    ),
    (
        "node selector value not a string",
        _set("profiles.pytorch-1gpu.node_selector", {"gpu": True}),
        "MLTeams.profiles.pytorch-1gpu.node_selector.gpu: must be a string (quote it in YAML), "
        "got true",
    ),
    (
        "node selector key invalid",
        _set("profiles.pytorch-1gpu.node_selector", {"bad key!": "x"}),
        'MLTeams.profiles.pytorch-1gpu.node_selector["bad key!"]: is not a valid Kubernetes '
        "label key",
    ),
    (
        "toleration operator",
        _set("profiles.pytorch-1gpu.tolerations", [{"key": "gpu", "operator": "Maybe"}]),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].operator: must be one of Equal, Exists, "
        'got "Maybe"',
    ),
    (
        "toleration effect misspelt",
        _set(
            "profiles.pytorch-1gpu.tolerations",
            [{"key": "gpu", "operator": "Exists", "effect": "NoSchedul"}],
        ),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].effect: must be one of NoSchedule, "
        'PreferNoSchedule, NoExecute, got "NoSchedul" (did you mean "NoSchedule"?)',
    ),
    (
        "toleration value with Exists",
        _set(
            "profiles.pytorch-1gpu.tolerations",
            [{"key": "gpu", "operator": "Exists", "value": "x"}],
        ),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].value: must not be set when operator is "
        "Exists",
    ),
    (
        "toleration seconds without NoExecute",
        _set(
            "profiles.pytorch-1gpu.tolerations",
            [{"key": "gpu", "value": "x", "effect": "NoSchedule", "tolerationSeconds": 30}],
        ),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].tolerationSeconds: only applies when "
        "effect is NoExecute",
    ),
    (
        "toleration without key",
        _set("profiles.pytorch-1gpu.tolerations", [{"value": "x"}]),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].key: is required unless operator is Exists",
    ),
    (
        "toleration unknown key",
        _set(
            "profiles.pytorch-1gpu.tolerations",
            [{"key": "gpu", "operator": "Exists", "toleration_seconds": 5}],
        ),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].toleration_seconds: unknown key "
        '(did you mean "tolerationSeconds"?)',
    ),
    (
        "toleration not a mapping",
        _set("profiles.pytorch-1gpu.tolerations", ["gpu"]),
        'MLTeams.profiles.pytorch-1gpu.tolerations[0]: must be a mapping, got "gpu"',
    ),
    (
        "env name invalid",
        _set("profiles.cpu.env", {"1FOO": "x"}),
        "MLTeams.profiles.cpu.env.1FOO: is not a valid environment variable name",
    ),
    (
        "env name reserved",
        _set("profiles.cpu.env", {"JUPYTERHUB_API_TOKEN": "x"}),
        "MLTeams.profiles.cpu.env.JUPYTERHUB_API_TOKEN: names starting with JUPYTERHUB_ or "
        "MLTEAMS_ are set by the hub",
    ),
    (
        "env value not a string",
        _set("profiles.cpu.env", {"THREADS": 4}),
        "MLTeams.profiles.cpu.env.THREADS: must be a string (quote it in YAML), got 4",
    ),
    (
        "queue wait zero",
        _set("profiles.queued-1gpu.queue.max_wait_seconds", 0),
        "MLTeams.profiles.queued-1gpu.queue.max_wait_seconds: must be an integer >= 1, got 0",
    ),
    (
        "queue enabled not a boolean",
        _set("profiles.queued-1gpu.queue.enabled", "yes"),
        'MLTeams.profiles.queued-1gpu.queue.enabled: must be true or false, got "yes"',
    ),
    (
        "queue misspelt key",
        _set("profiles.queued-1gpu.queue", {"enabled": True, "max_wait": 60}),
        "MLTeams.profiles.queued-1gpu.queue.max_wait: unknown key (did you mean "
        '"max_wait_seconds"?)',
    ),
    (
        "display name with a newline",
        _set("profiles.cpu.display_name", "CPU\nonly"),
        "MLTeams.profiles.cpu.display_name: must not contain control characters",
    ),
    (
        "dataset without uri",
        _delete("datasets.imagenet.uri"),
        "MLTeams.datasets.imagenet.uri: is required",
    ),
    (
        "dataset uri not a uri",
        _set("datasets.imagenet.uri", "lake/imagenet"),
        "MLTeams.datasets.imagenet.uri: must be a URI such as s3://bucket/path/",
    ),
    (
        "dataset secret name invalid",
        _set("datasets.imagenet.credentials_secret", "Lake Secret"),
        "MLTeams.datasets.imagenet.credentials_secret: must be a Kubernetes Secret name, got "
        '"Lake Secret"',
    ),
    (
        "dataset volume not a mapping",
        _set("datasets.imagenet.volume", "pvc"),
        'MLTeams.datasets.imagenet.volume: must be a mapping, got "pvc"',
    ),
    (
        "teams not a mapping",
        _set("teams", ["vision"]),
        'MLTeams.teams: must be a mapping, got ["vision"]',
    ),
    (
        "team not a mapping",
        _set("teams.vision", None),
        "MLTeams.teams.vision: must be a mapping, got null",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in BAD_CONFIGS],
)
def test_bad_config_names_the_key_path_and_why(mutate: Mutation, expected: str) -> None:
    raw = sample_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    messages = [str(problem) for problem in info.value.problems]
    assert any(message.startswith(expected) for message in messages), messages
    assert expected in str(info.value)


@pytest.mark.parametrize("raw", [None, [], "teams: {}", 42])
def test_root_must_be_a_mapping(raw: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert str(info.value.problems[0]).startswith("MLTeams: must be a mapping")


def test_root_name_is_configurable() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["quota"]["gpus"] = "eight"
    with pytest.raises(ConfigError) as info:
        load_config(raw, root="c.MLTeams")
    assert info.value.problems[0].path == "c.MLTeams.teams.vision.quota.gpus"


def test_all_problems_are_collected_in_one_error() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["quota"]["gpus_per_user"] = "two"
    raw["teams"]["nlp"]["namespace"] = "team-vision"
    raw["teams"]["research"]["profile"] = ["cpu"]
    raw["profiles"]["cpu"]["memory"] = "8GB"
    raw["profiles"]["pytorch-1gpu"]["tolerations"][0]["effect"] = "Never"
    raw["datasets"]["imagenet"]["credentials_secret"] = "BAD"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    paths = [problem.path for problem in info.value.problems]
    assert sorted(paths) == sorted(
        [
            "MLTeams.teams.vision.quota.gpus_per_user",
            "MLTeams.teams.nlp.namespace",
            "MLTeams.teams.research.profile",
            "MLTeams.profiles.cpu.memory",
            "MLTeams.profiles.pytorch-1gpu.tolerations[0].effect",
            "MLTeams.datasets.imagenet.credentials_secret",
        ]
    )
    text = str(info.value)
    assert text.startswith("invalid MLTeams configuration (6 problems):\n  - ")
    assert text.count("\n  - ") == 6


def test_a_bad_quota_does_not_cascade_into_profile_errors() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["quota"]["gpus_per_user"] = "two"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [problem.path for problem in info.value.problems] == [
        "MLTeams.teams.vision.quota.gpus_per_user"
    ]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"MLTeams\.teams: is required"):
        load_config({"profiles": {}})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, QuotaOverride()),
        ({"gpus": 4}, QuotaOverride(gpus=4)),
        ({"gpus": 4, "gpus_per_user": 1}, QuotaOverride(gpus=4, gpus_per_user=1)),
        ({"cpu": "32", "memory": "1Gi"}, QuotaOverride(cpu=32_000, memory=GIB)),
        ({"gpus": None}, QuotaOverride()),
    ],
)
def test_parse_quota_override(raw: dict[str, Any], expected: QuotaOverride) -> None:
    assert parse_quota_override(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"gpus": -2}, "quota_override.gpus: must be an integer >= 0, got -2"),
        ({"gpus": "4"}, 'quota_override.gpus: must be an integer >= 0, got "4"'),
        ({"gpus": 2, "gpus_per_user": 3}, "quota_override.gpus_per_user: must not exceed gpus"),
        ({"gpu": 2}, 'quota_override.gpu: unknown key (did you mean "gpus"?)'),
        ({"memory": "lots"}, "quota_override.memory: must be a Kubernetes quantity"),
        ([], "quota_override: must be a mapping"),
    ],
)
def test_bad_quota_override(raw: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_quota_override(raw)
    assert str(info.value.problems[0]).startswith(expected)
    assert str(info.value).startswith("invalid quota override (1 problem)")


# -- the promotion settings and the hub's own settings --------------------------------------------


def test_promotion_defaults_and_values() -> None:
    config = load_config(sample_raw())
    vision = config.teams["vision"].promotion
    assert vision.gates == {"accuracy": Gate(min=0.9)}
    assert vision.evaluation is not None and vision.evaluation.task == "classification"
    assert vision.evaluation.timeout_seconds == 600
    nlp = config.teams["nlp"].promotion
    assert dict(nlp.gates) == {} and nlp.high_stakes is False and nlp.evaluation is None
    assert nlp.evidence == Evidence(signature=True, dataset_inputs=False)
    assert (nlp.aliases.champion, nlp.aliases.previous) == ("champion", "previous")
    assert nlp.approval_ttl_hours == 72 and nlp.approver_groups == ()
    raw = sample_raw()
    raw["teams"]["nlp"]["promotion"] = {
        "evaluation": {"uri": "s3://gov/eval/nlp.csv", "label_column": "y", "task": "regression"},
        "gates": {"rmse": {"max": 0.5, "max_regression": 0.05}},
        "high_stakes": True,
        "approver_groups": ["model-risk"],
        "models": {"fraud": {"gates": {"mae": {"max": 0.1}}, "high_stakes": False}},
    }
    promotion = load_config(raw).teams["nlp"].promotion
    assert promotion.high_stakes is True and promotion.approver_groups == ("model-risk",)
    assert promotion.gates["rmse"] == Gate(max=0.5, max_regression=0.05)
    assert promotion.models["fraud"].high_stakes is False
    with pytest.raises(TypeError):
        promotion.gates["new"] = Gate(min=1)  # type: ignore[index]


EVALUATION = {"uri": "s3://gov/eval/v.csv", "label_column": "y", "task": "classification"}


@pytest.mark.parametrize(
    ("promotion", "expected"),
    [
        ("strict", 'MLTeams.teams.vision.promotion: must be a mapping, got "strict"'),
        (
            {"gate": {}},
            'MLTeams.teams.vision.promotion.gate: unknown key (did you mean "gates"?)',
        ),
        (
            {"gates": ["accuracy"]},
            'MLTeams.teams.vision.promotion.gates: must be a mapping, got ["accuracy"]',
        ),
        (
            {"gates": {"accuracy": {"min": 0.9}}},
            "MLTeams.teams.vision.promotion.gates: gates need an evaluation set: set "
            "promotion.evaluation (uri, label_column, task)",
        ),
        (
            {"evaluation": EVALUATION, "gates": {"acuracy": {"min": 0.9}}},
            'MLTeams.teams.vision.promotion.gates.acuracy: unknown metric "acuracy" (did you '
            'mean "accuracy"?)',
        ),
        (
            {"evaluation": EVALUATION, "gates": {"rmse": {"max": 1}}},
            "MLTeams.teams.vision.promotion.gates.rmse: rmse is a regression metric but the "
            "evaluation's task is classification",
        ),
        (
            {"evaluation": EVALUATION, "gates": {"accuracy": {}}},
            "MLTeams.teams.vision.promotion.gates.accuracy: set at least one of min, max",
        ),
        (
            {"evaluation": EVALUATION, "gates": {"accuracy": {"min": 0.9, "max": 0.5}}},
            "MLTeams.teams.vision.promotion.gates.accuracy.max: must be >= min (0.9), got 0.5",
        ),
        (
            {"evaluation": EVALUATION, "gates": {"accuracy": {"max_regression": -1}}},
            "MLTeams.teams.vision.promotion.gates.accuracy.max_regression: must be a number >= 0",
        ),
        (
            {"evaluation": {**EVALUATION, "uri": "http://lake/eval.csv"}},
            "MLTeams.teams.vision.promotion.evaluation.uri: must be an s3://bucket/key URI",
        ),
        (
            {"evaluation": {**EVALUATION, "task": "ranking"}},
            "MLTeams.teams.vision.promotion.evaluation.task: must be one of",
        ),
        (
            {"evaluation": {**EVALUATION, "uri": "s3://lake/imagenet/labels.csv"}},
            "MLTeams.teams.vision.promotion.evaluation.uri: the evaluation set lies inside "
            "dataset imagenet",
        ),
        (
            {"aliases": {"champion": "prod", "previous": "prod"}},
            "MLTeams.teams.vision.promotion.aliases.previous: must differ from champion, "
            'got "prod"',
        ),
        (
            {"aliases": {"champion": "v2"}},
            "MLTeams.teams.vision.promotion.aliases.champion: must be an MLflow alias",
        ),
        (
            {"approval_ttl_hours": 0},
            "MLTeams.teams.vision.promotion.approval_ttl_hours: must be",
        ),
        (
            {"models": {"Fraud": {}}},
            "MLTeams.teams.vision.promotion.models.Fraud",
        ),
        (
            {"models": {"fraud": {"gates": {"f1_macro": {"min": 0.8}}}}},
            "MLTeams.teams.vision.promotion.models.fraud.gates: gates need an evaluation set: "
            "set promotion.evaluation or promotion.models.fraud.evaluation",
        ),
    ],
)
def test_bad_promotion(promotion: Any, expected: str) -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["promotion"] = promotion
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert str(info.value.problems[0]).startswith(expected)


def test_the_hub_settings_beside_the_teams_are_checked_too() -> None:
    raw = sample_raw()
    raw.update(provision=False, hub_namespace="ml-hub", hub_service_account="hub-sa")
    raw["queue_poll_seconds"] = 5
    config = load_config(raw)
    assert (config.provision, config.hub_namespace, config.hub_service_account) == (
        False,
        "ml-hub",
        "hub-sa",
    )
    assert config.queue_poll_seconds == 5.0
    raw.update(provision="no", hub_namespace="ML Hub", queue_poll_seconds=0)
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        'MLTeams.provision: must be true or false, got "no"',
        "MLTeams.hub_namespace: must be empty or a DNS-1123 label (lower-case letters, digits "
        "and '-', starting and ending with a letter or digit, at most 63 characters), "
        'got "ML Hub"',
        "MLTeams.queue_poll_seconds: must be a number > 0, got 0",
    ]


# -- more than one problem, and no cascades -----------------------------------------------------


def test_every_problem_of_one_toleration_is_reported() -> None:
    raw = sample_raw()
    raw["profiles"]["pytorch-1gpu"]["tolerations"] = [
        {"operator": "Exists", "value": "x", "effect": "NoSchedule", "tolerationSeconds": 5}
    ]
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].value: must not be set when operator is "
        "Exists",
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].tolerationSeconds: only applies when "
        "effect is NoExecute",
    ]


def test_each_repeated_entry_is_named() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["groups"] = ["a", "b", "a", "b"]
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        'MLTeams.teams.vision.groups[2]: "a" is listed twice',
        'MLTeams.teams.vision.groups[3]: "b" is listed twice',
    ]


def test_a_bad_team_name_is_reported_once() -> None:
    raw = sample_raw()
    raw["teams"]["Vision Team"] = raw["teams"].pop("research")
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [problem.path for problem in info.value.problems] == ['MLTeams.teams["Vision Team"]']


def test_a_team_with_a_bad_name_is_checked_no_further() -> None:
    raw = sample_raw()
    raw["teams"]["Vision Team"] = {
        "quota": {"gpus": 0},
        "profiles": ["ghost"],
        "namespace": "ml-nlp",
    }
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        'MLTeams.teams["Vision Team"]: team name must be a DNS-1123 label (lower-case letters, '
        "digits and '-', at most 63 characters)"
    ]


def test_a_team_keyed_by_a_number_is_refused_by_its_key() -> None:
    raw = sample_raw()
    raw["teams"][7] = {"quota": {"gpus": 0}, "profiles": ["ghost"], "namespace": "ml-nlp"}
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        "MLTeams.teams[7]: keys must be strings, got 7"
    ]


def test_an_entry_takes_its_name_from_its_key_only() -> None:
    raw = sample_raw()
    raw["profiles"]["cpu"]["name"] = "other"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        "MLTeams.profiles.cpu.name: unknown key; allowed keys: "
        "display_name, description, image, gpus, cpu, memory, node_selector, tolerations, env, "
        "queue"
    ]


def test_keys_are_read_only_as_written() -> None:
    raw = sample_raw()
    raw["profiles"]["flex"] = {"image": "mlteams/pytorch:1", "gpu_request": 2}
    raw["profiles"]["pytorch-1gpu"]["tolerations"][0]["toleration_seconds"] = 5
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [problem.path for problem in info.value.problems] == [
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].toleration_seconds",
        "MLTeams.profiles.flex.gpu_request",
    ]


def test_undeclared_names_are_reported_below_the_configured_root() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["profiles"] = ["cpu", "flexx"]
    with pytest.raises(ConfigError) as info:
        load_config(raw, root="c.MLTeams")
    assert [str(problem) for problem in info.value.problems] == [
        'c.MLTeams.teams.vision.profiles[1]: profile "flexx" is not declared under '
        'c.MLTeams.profiles (did you mean "flex"?); declared: cpu, flex, pytorch-1gpu, '
        "pytorch-2gpu, queued-1gpu, queued-4gpu"
    ]


def test_a_profile_too_big_for_the_memory_quota() -> None:
    raw = sample_raw()
    raw["teams"]["research"]["quota"]["memory"] = "4Gi"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        'MLTeams.teams.research.profiles[0]: profile "cpu" needs 8 GiB of memory but team '
        "research's quota is 4 GiB"
    ]


@pytest.mark.parametrize(
    "mutate", [mutate for _, mutate, _ in BAD_CONFIGS], ids=[name for name, _, _ in BAD_CONFIGS]
)
def test_messages_are_in_the_projects_words(mutate: Mutation) -> None:
    raw = sample_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    text = str(info.value)
    for pydantic_wording in ("Input should", "Extra inputs", "errors.pydantic.dev", "type="):
        assert pydantic_wording not in text


# -- models built in Python -------------------------------------------------------------------


def test_models_built_in_python_take_millicores_and_bytes() -> None:
    quota = Quota(gpus=2, gpus_per_user=1, cpu=500, memory=GIB)
    assert (quota.cpu, quota.memory) == (500, GIB)
    assert Quota(gpus=3).gpus_per_user == 3
    assert QuotaOverride(gpus=1).apply(quota) == Quota(gpus=1, gpus_per_user=1, cpu=500, memory=GIB)
    with pytest.raises(ValidationError):
        Quota(gpus=2, gpus_per_user=3)


def test_gpu_ranges() -> None:
    raw = sample_raw()
    raw["profiles"]["flex"]["gpus"] = {"min": 2, "max": 4}
    flex = load_config(raw).profiles["flex"]
    assert (flex.gpus, flex.gpus_min, flex.gpus_max, flex.gpu_choice) == (2, 2, 4, True)
    assert flex.gpu_request == GpuRange(min=2, max=4, default=2)


# -- the JSON Schema ---------------------------------------------------------------------------


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"MLTeams.{key}", spec) for key, spec in schema["properties"].items()]
    for name, definition in schema["$defs"].items():
        found += [(f"{name}.{key}", spec) for key, spec in definition["properties"].items()]
    return found


def test_every_key_of_the_json_schema_is_described() -> None:
    schema = json_schema()
    properties = _properties(schema)
    assert len(properties) > 40
    for where, spec in properties:
        assert spec.get("description"), where
    assert "name" not in schema["$defs"]["Team"]["properties"]
    assert schema["$defs"]["Profile"]["additionalProperties"] is False


def test_the_json_schema_accepts_what_load_config_accepts() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.check_schema(json_schema())
    validator.validate(sample_raw())
    broken = sample_raw()
    broken["teams"]["vision"]["quota"]["gpus_per_user"] = "two"
    assert not validator.is_valid(broken)


@pytest.mark.parametrize(
    "quantity",
    ["8", "500m", "64Gi", "1.5", ".5", "1e3", "128974848", "1T", "+2", "2Ki", "10k"],
)
def test_the_json_schema_documents_the_quantities_that_parse(quantity: str) -> None:
    assert parse_memory(quantity) >= 0
    assert re.fullmatch(QUANTITY_PATTERN, quantity)


@pytest.mark.parametrize("text", ["256GB", "two", "1 Gi", "", "Gi", "1e", "0x10", "-1"])
def test_the_json_schema_refuses_the_quantities_that_do_not(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_memory(text)
    assert not re.fullmatch(QUANTITY_PATTERN, text)


@pytest.mark.parametrize(
    "key",
    [
        "gpu",
        "nvidia.com/gpu.product",
        "example.com/a_b-c.d",
        "a/b/c",
        "/gpu",
        "Example.com/gpu",
        "bad key!",
        "-gpu",
        "gpu-",
        "node-role.kubernetes.io/worker",
    ],
)
def test_the_json_schema_documents_the_label_key_rule(key: str) -> None:
    assert bool(re.fullmatch(LABEL_KEY_PATTERN, key)) == is_label_key(key)


# -- whole messages of the promotion settings --------------------------------------------------

REGRESSION = {"uri": "s3://gov/eval/fraud.csv", "label_column": "y", "task": "regression"}
ALIAS_RULE = "must be an MLflow alias (letters, digits, _ and -; not latest or v1)"


def _promotion_problems(promotion: Any) -> list[str]:
    raw = sample_raw()
    raw["teams"]["vision"]["promotion"] = promotion
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return [str(problem) for problem in info.value.problems]


def _promotion(promotion: Any) -> Any:
    raw = sample_raw()
    raw["teams"]["vision"]["promotion"] = promotion
    return load_config(raw).teams["vision"].promotion


@pytest.mark.parametrize("alias", ["latest", "LATEST", "Latest", "v1", "V2", "v10"])
def test_an_alias_mlflow_reserves_is_refused(alias: str) -> None:
    assert _promotion_problems({"aliases": {"champion": alias}}) == [
        f'MLTeams.teams.vision.promotion.aliases.champion: {ALIAS_RULE}, got "{alias}"'
    ]


@pytest.mark.parametrize("alias", ["prod", "latest-good", "v2-beta", "vision_v2", "V"])
def test_an_alias_that_only_looks_like_a_reserved_one_is_accepted(alias: str) -> None:
    assert _promotion({"aliases": {"champion": alias}}).aliases.champion == alias


def test_an_evaluation_set_not_in_s3_is_refused_with_the_uri_written() -> None:
    assert _promotion_problems({"evaluation": {**EVALUATION, "uri": "http://lake/eval.csv"}}) == [
        "MLTeams.teams.vision.promotion.evaluation.uri: must be an s3://bucket/key URI of one "
        'CSV file, got "http://lake/eval.csv"'
    ]


def test_a_gate_may_pin_one_value_with_min_equal_to_max() -> None:
    promotion = _promotion({"evaluation": EVALUATION, "gates": {"accuracy": {"min": 1, "max": 1}}})
    assert promotion.gates["accuracy"] == Gate(min=1.0, max=1.0)


def test_no_gates_need_no_evaluation_set() -> None:
    promotion = _promotion({"gates": {}, "models": {"fraud": {"gates": {}}}})
    assert dict(promotion.gates) == {} and promotion.evaluation is None
    assert promotion.models["fraud"].gates == {}


def test_gates_not_a_mapping_is_the_only_problem_reported() -> None:
    assert _promotion_problems({"gates": ["accuracy"]}) == [
        'MLTeams.teams.vision.promotion.gates: must be a mapping, got ["accuracy"]'
    ]


def test_a_model_with_its_own_evaluation_set_is_gated_on_its_own_task() -> None:
    promotion = _promotion(
        {
            "evaluation": EVALUATION,
            "gates": {"accuracy": {"min": 0.9}},
            "models": {"fraud": {"evaluation": REGRESSION, "gates": {"rmse": {"max": 0.5}}}},
        }
    )
    fraud = promotion.models["fraud"]
    assert fraud.evaluation is not None and fraud.evaluation.task == "regression"
    assert fraud.gates == {"rmse": Gate(max=0.5)}


def test_a_model_with_its_own_evaluation_set_keeps_the_teams_gates() -> None:
    """The team's gates apply to the model's evaluation set, so their metrics must fit its task."""
    problems = _promotion_problems(
        {
            "evaluation": EVALUATION,
            "gates": {"accuracy": {"min": 0.9}},
            "models": {"fraud": {"evaluation": REGRESSION}},
        }
    )
    assert problems == [
        "MLTeams.teams.vision.promotion.models.fraud.gates.accuracy: accuracy is a "
        "classification metric but the evaluation's task is regression"
    ]


def test_gate_problems_of_the_team_and_of_each_model_are_all_reported() -> None:
    problems = _promotion_problems(
        {
            "gates": {"accuracy": {"min": 0.9}},
            "models": {
                "churn": "strict",
                "fraud": {"gates": {"f1_macro": {"min": 0.8}}},
                "ranker": {"high_stakes": True},
            },
        }
    )
    assert problems == [
        'MLTeams.teams.vision.promotion.models.churn: must be a mapping, got "strict"',
        "MLTeams.teams.vision.promotion.gates: gates need an evaluation set: set "
        "promotion.evaluation (uri, label_column, task)",
        "MLTeams.teams.vision.promotion.models.fraud.gates: gates need an evaluation set: set "
        "promotion.evaluation or promotion.models.fraud.evaluation (uri, label_column, task)",
    ]


READABLE = "which team vision's users can read: its labels would not be held out"


def test_a_models_evaluation_set_inside_a_teams_dataset_is_refused() -> None:
    inside = {**EVALUATION, "uri": "s3://lake/imagenet/labels.csv"}
    assert _promotion_problems({"models": {"fraud": {"evaluation": inside}}}) == [
        "MLTeams.teams.vision.promotion.models.fraud.evaluation.uri: the evaluation set lies "
        f"inside dataset imagenet (s3://lake/imagenet/), {READABLE}"
    ]


@pytest.mark.parametrize(
    ("dataset", "evaluation", "inside"),
    [
        ("s3://lake/imagenet/", "s3://lake/imagenet/labels.csv", True),
        ("s3://lake/imagenet", "s3://lake/imagenet/val/labels.csv", True),
        ("s3://lake/imagenet//", "s3://lake/imagenet/labels.csv", True),
        ("s3://lake/scans-X", "s3://lake/scans-X/labels.csv", True),
        ("s3://lake/scans-X", "s3://lake/scans-/labels.csv", False),
        ("s3://lake/imagenet", "s3://lake/imagenet-eval/labels.csv", False),
        ("s3://other/imagenet/", "s3://lake/imagenet/labels.csv", False),
    ],
)
def test_an_evaluation_set_is_inside_a_dataset_below_its_folder_only(
    dataset: str, evaluation: str, inside: bool
) -> None:
    raw = sample_raw()
    raw["datasets"]["imagenet"]["uri"] = dataset
    raw["teams"]["vision"]["promotion"]["evaluation"]["uri"] = evaluation
    expected = [
        "MLTeams.teams.vision.promotion.evaluation.uri: the evaluation set lies inside dataset "
        f"imagenet ({dataset}), {READABLE}"
    ]
    problems: list[str] = []
    try:
        load_config(raw)
    except ConfigError as error:
        problems = [str(problem) for problem in error.problems]
    assert problems == (expected if inside else [])


def test_a_bad_datasets_list_beside_an_evaluation_set_is_its_only_problem() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["datasets"] = "imagenet"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        'MLTeams.teams.vision.datasets: must be a list, got "imagenet"'
    ]


def test_a_dataset_listed_when_none_is_declared() -> None:
    raw = sample_raw()
    raw["datasets"] = {}
    raw["teams"]["vision"]["datasets"] = ["coco"]
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        'MLTeams.teams.vision.datasets[0]: dataset "coco" is not declared under '
        "MLTeams.datasets; declared: none"
    ]


# -- serving and tolerations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serving", "expected"),
    [
        (
            {"min_replicas": 2},
            ["MLTeams.teams.vision.serving.max_replicas: must be at least min_replicas (2)"],
        ),
        (
            {"max_replicas": 0},
            [
                "MLTeams.teams.vision.serving.max_replicas: must be an integer >= 1, got 0",
                "MLTeams.teams.vision.serving.max_replicas: must be at least min_replicas (1)",
            ],
        ),
        (
            {"min_replicas": 2, "max_replicas": "two"},
            ['MLTeams.teams.vision.serving.max_replicas: must be an integer >= 1, got "two"'],
        ),
    ],
)
def test_serving_replicas_left_out_default_to_one(
    serving: dict[str, Any], expected: list[str]
) -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["serving"] = serving
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == expected


def test_a_toleration_in_a_pod_spec_carries_each_key_set() -> None:
    toleration = Toleration(key="node.kubernetes.io/unreachable", value="true", effect="NoExecute")
    assert toleration.to_k8s() == {
        "operator": "Equal",
        "key": "node.kubernetes.io/unreachable",
        "value": "true",
        "effect": "NoExecute",
    }
    evicting = Toleration.model_validate(
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    )
    assert evicting.to_k8s() == {
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }


def test_a_missing_key_does_not_hide_the_other_problems_of_its_entry() -> None:
    raw = sample_raw()
    del raw["teams"]["vision"]["quota"]
    raw["teams"]["vision"]["datasets"] = ["coco"]
    del raw["profiles"]["cpu"]["image"]
    raw["teams"]["research"]["quota"]["cpu"] = "1"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert [str(problem) for problem in info.value.problems] == [
        "MLTeams.teams.vision.quota: is required",
        "MLTeams.profiles.cpu.image: is required",
        'MLTeams.teams.vision.datasets[0]: dataset "coco" is not declared under '
        "MLTeams.datasets; declared: imagenet",
        'MLTeams.teams.research.profiles[0]: profile "cpu" needs 2 CPUs but team research\'s '
        "quota is 1 CPU",
    ]


def _problems(raw: dict[str, Any], root: str = "MLTeams") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw, root=root)
    return [str(problem) for problem in info.value.problems]


DECLARED_PROFILES = "declared: cpu, flex, pytorch-1gpu, pytorch-2gpu, queued-1gpu, queued-4gpu"


def test_a_cpu_quota_written_as_a_number_is_in_cores() -> None:
    raw = sample_raw()
    raw["teams"]["research"]["quota"]["cpu"] = 1
    assert _problems(raw) == [
        'MLTeams.teams.research.profiles[0]: profile "cpu" needs 2 CPUs but team research\'s '
        "quota is 1 CPU"
    ]


def test_a_team_that_is_not_a_mapping_does_not_hide_the_next_teams_problems() -> None:
    raw = sample_raw()
    raw["teams"]["vision"] = None
    raw["teams"]["research"]["profiles"] = ["cpu", "ghost"]
    assert _problems(raw) == [
        "MLTeams.teams.vision: must be a mapping, got null",
        'MLTeams.teams.research.profiles[1]: profile "ghost" is not declared under '
        f"MLTeams.profiles; {DECLARED_PROFILES}",
    ]


def test_every_problem_across_the_keys_of_one_team_is_reported() -> None:
    raw = sample_raw()
    vision = raw["teams"]["vision"]
    vision["profiles"] = ["cpu", "ghost"]
    vision["datasets"] = ["imagenet", "coco"]
    vision["promotion"]["evaluation"]["uri"] = "s3://lake/imagenet/eval.csv"
    assert _problems(raw) == [
        'MLTeams.teams.vision.profiles[1]: profile "ghost" is not declared under '
        f"MLTeams.profiles; {DECLARED_PROFILES}",
        "MLTeams.teams.vision.promotion.evaluation.uri: the evaluation set lies inside dataset "
        f"imagenet (s3://lake/imagenet/), {READABLE}",
        'MLTeams.teams.vision.datasets[1]: dataset "coco" is not declared under '
        "MLTeams.datasets; declared: imagenet",
    ]


def test_undeclared_datasets_are_reported_below_the_configured_root() -> None:
    raw = sample_raw()
    raw["teams"]["vision"]["datasets"] = ["imagenet", "coco"]
    assert _problems(raw, root="c.MLTeams") == [
        'c.MLTeams.teams.vision.datasets[1]: dataset "coco" is not declared under '
        "c.MLTeams.datasets; declared: imagenet"
    ]
