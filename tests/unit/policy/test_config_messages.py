"""What an admin reads for each kind of bad value in the MLTeams section, word for word.

Each case changes one value of the sample configuration and pins every problem reported, whole:
the key path, the rule that was broken and the value as written. The values at the edge of each
rule (the longest name, the largest number) are accepted.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from hub_ext.policy import ConfigError, load_config
from tests.unit.policy.sample import sample_raw

pytestmark = pytest.mark.unit

Change = Callable[[dict[str, Any]], None]

DNS_RULE = (
    "(lower-case letters, digits and '-', starting and ending with a letter or digit, "
    "at most 63 characters)"
)
METRICS_KNOWN = "known: accuracy, f1_macro, precision_macro, recall_macro, rmse, mae, r2"


def _put(path: str, value: Any) -> Change:
    keys = path.split(".")

    def change(raw: dict[str, Any]) -> None:
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = copy.deepcopy(value)

    return change


def _gate(**values: Any) -> Change:
    return _put("teams.vision.promotion.gates", {"accuracy": dict(values)})


def _problems(change: Change) -> list[str]:
    raw = sample_raw()
    change(raw)
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return [str(problem) for problem in info.value.problems]


BAD_VALUES: list[tuple[str, Change, str]] = [
    (
        "display name empty",
        _put("profiles.cpu.display_name", ""),
        "MLTeams.profiles.cpu.display_name: must not be empty",
    ),
    (
        "display name one character too long",
        _put("profiles.cpu.display_name", "x" * 101),
        "MLTeams.profiles.cpu.display_name: must be at most 100 characters, got 101",
    ),
    (
        "display name with a newline",
        _put("profiles.cpu.display_name", "CPU\nonly"),
        'MLTeams.profiles.cpu.display_name: must not contain control characters, got "CPU\\nonly"',
    ),
    (
        "display name with DEL",
        _put("profiles.cpu.display_name", "CPU\x7f"),
        'MLTeams.profiles.cpu.display_name: must not contain control characters, got "CPU\\u007f"',
    ),
    (
        "image that YAML read as a date",
        _put("profiles.cpu.image", datetime.date(2024, 1, 1)),
        'MLTeams.profiles.cpu.image: must be a string, got "<date>"',
    ),
    (
        "image with spaces",
        _put("profiles.cpu.image", "mlteams/cpu:1 --privileged"),
        'MLTeams.profiles.cpu.image: must not contain spaces, got "mlteams/cpu:1 --privileged"',
    ),
    (
        "namespace not a DNS label",
        _put("teams.vision.namespace", "Team_Vision"),
        f"MLTeams.teams.vision.namespace: namespace must be a DNS-1123 label {DNS_RULE}, "
        'got "Team_Vision"',
    ),
    (
        "namespace one character too long",
        _put("teams.vision.namespace", "n" * 64),
        "MLTeams.teams.vision.namespace: must be at most 63 characters, got 64",
    ),
    (
        "namespace default",
        _put("teams.vision.namespace", "default"),
        'MLTeams.teams.vision.namespace: "default" is reserved by Kubernetes; choose a team '
        "namespace",
    ),
    (
        "namespace kube-public",
        _put("teams.vision.namespace", "kube-public"),
        'MLTeams.teams.vision.namespace: "kube-public" is reserved by Kubernetes; choose a team '
        "namespace",
    ),
    (
        "profile name in a team's list not a DNS label",
        _put("teams.vision.profiles", ["cpu", "GPU"]),
        f'MLTeams.teams.vision.profiles[1]: profile must be a DNS-1123 label {DNS_RULE}, got "GPU"',
    ),
    (
        "secret one character too long",
        _put("datasets.imagenet.credentials_secret", "s" * 254),
        "MLTeams.datasets.imagenet.credentials_secret: must be at most 253 characters, got 254",
    ),
    (
        "dataset uri without a scheme",
        _put("datasets.imagenet.uri", "lake/imagenet"),
        "MLTeams.datasets.imagenet.uri: must be a URI such as s3://bucket/path/ or an absolute "
        'path, got "lake/imagenet"',
    ),
    (
        "dataset volume keyed by a number",
        _put("datasets.imagenet.volume", {1: "x"}),
        "MLTeams.datasets.imagenet.volume[1]: keys must be strings, got 1",
    ),
    (
        "model keyed by a number",
        _put("teams.vision.promotion.models", {7: {}}),
        "MLTeams.teams.vision.promotion.models[7]: keys must be strings, got 7",
    ),
    (
        "model name not a DNS label",
        _put("teams.vision.promotion.models", {"Fraud": {}}),
        "MLTeams.teams.vision.promotion.models.Fraud: model name must be a DNS-1123 label "
        "(lower-case letters, digits and '-', at most 63 characters)",
    ),
    (
        "environment variable name starting with a digit",
        _put("profiles.cpu.env", {"1FOO": "x"}),
        "MLTeams.profiles.cpu.env.1FOO: is not a valid environment variable name (letters, "
        "digits and '_', not starting with a digit)",
    ),
    (
        "environment variable reserved in lower case",
        _put("profiles.cpu.env", {"mlteams_team": "x"}),
        "MLTeams.profiles.cpu.env.mlteams_team: names starting with JUPYTERHUB_ or MLTEAMS_ are "
        "set by the hub",
    ),
    (
        "node selector key invalid",
        _put("profiles.pytorch-1gpu.node_selector", {"bad key!": "x"}),
        'MLTeams.profiles.pytorch-1gpu.node_selector["bad key!"]: is not a valid Kubernetes '
        'label key: "bad key!"',
    ),
    (
        "node selector value invalid",
        _put("profiles.pytorch-1gpu.node_selector", {"gpu": "A100 80GB"}),
        "MLTeams.profiles.pytorch-1gpu.node_selector.gpu: is not a valid Kubernetes label "
        'value: "A100 80GB"',
    ),
    (
        "node selector value one character too long",
        _put("profiles.pytorch-1gpu.node_selector", {"gpu": "v" * 64}),
        "MLTeams.profiles.pytorch-1gpu.node_selector.gpu: is not a valid Kubernetes label "
        f'value: "{"v" * 56}...',
    ),
    (
        "taint key invalid",
        _put("profiles.pytorch-1gpu.tolerations", [{"key": "-gpu", "operator": "Exists"}]),
        'MLTeams.profiles.pytorch-1gpu.tolerations[0].key: is not a valid taint key: "-gpu"',
    ),
    (
        "taint value not a string",
        _put("profiles.pytorch-1gpu.tolerations", [{"key": "gpu", "value": 1}]),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].value: must be a string (quote it in "
        "YAML), got 1",
    ),
    (
        "toleration operator a number",
        _put("profiles.pytorch-1gpu.tolerations", [{"key": "gpu", "operator": 5}]),
        "MLTeams.profiles.pytorch-1gpu.tolerations[0].operator: must be one of Equal, Exists, "
        "got 5",
    ),
    (
        "gate metric a number",
        _put("teams.vision.promotion.gates", {1: {"min": 0.5}}),
        f"MLTeams.teams.vision.promotion.gates[1]: unknown metric 1; {METRICS_KNOWN}",
    ),
    (
        "gate metric misspelt",
        _put("teams.vision.promotion.gates", {"acuracy": {"min": 0.5}}),
        'MLTeams.teams.vision.promotion.gates.acuracy: unknown metric "acuracy" (did you mean '
        f'"accuracy"?); {METRICS_KNOWN}',
    ),
    (
        "gate threshold a word",
        _gate(min="high"),
        'MLTeams.teams.vision.promotion.gates.accuracy.min: must be a number, got "high"',
    ),
    (
        "gate threshold a boolean",
        _gate(min=True),
        "MLTeams.teams.vision.promotion.gates.accuracy.min: must be a number, got true",
    ),
    (
        "gate threshold not a number",
        _gate(min=float("nan")),
        "MLTeams.teams.vision.promotion.gates.accuracy.min: must be a number, got NaN",
    ),
    (
        "gate threshold infinite",
        _gate(max=float("inf")),
        "MLTeams.teams.vision.promotion.gates.accuracy.max: must be a number, got Infinity",
    ),
    (
        "gate regression negative",
        _gate(max_regression=-0.5),
        "MLTeams.teams.vision.promotion.gates.accuracy.max_regression: must be a number >= 0, "
        "got -0.5",
    ),
    (
        "approval lifetime a boolean",
        _put("teams.vision.promotion.approval_ttl_hours", True),
        "MLTeams.teams.vision.promotion.approval_ttl_hours: must be a number > 0, got true",
    ),
    (
        "approval lifetime a string",
        _put("teams.vision.promotion.approval_ttl_hours", "72"),
        'MLTeams.teams.vision.promotion.approval_ttl_hours: must be a number > 0, got "72"',
    ),
    (
        "approval lifetime above 90 days",
        _put("teams.vision.promotion.approval_ttl_hours", 2160.5),
        "MLTeams.teams.vision.promotion.approval_ttl_hours: must be at most 2160, got 2160.5",
    ),
    (
        "queue poll above an hour",
        _put("queue_poll_seconds", 3601),
        "MLTeams.queue_poll_seconds: must be at most 3600, got 3601",
    ),
    (
        "shared folder claim named like a home",
        _put("teams.vision.shared_folder", {"claim_name": "claim-alice"}),
        'MLTeams.teams.vision.shared_folder.claim_name: must not start with "claim-", which '
        'names the members\' homes, got "claim-alice"',
    ),
    (
        "shared folder mounted at a relative path",
        _put("teams.vision.shared_folder", {"mount_path": "home/team"}),
        "MLTeams.teams.vision.shared_folder.mount_path: must be an absolute folder path such "
        "as /home/jovyan/team (letters, digits, '.', '_', '-' and spaces; no trailing '/'), "
        'got "home/team"',
    ),
    (
        "shared folder mounted through '..' first",
        _put("teams.vision.shared_folder", {"mount_path": "/../etc"}),
        "MLTeams.teams.vision.shared_folder.mount_path: must not contain '.' or '..' parts, "
        'got "/../etc"',
    ),
    (
        "shared folder mounted through '.'",
        _put("teams.vision.shared_folder", {"mount_path": "/home/./team"}),
        "MLTeams.teams.vision.shared_folder.mount_path: must not contain '.' or '..' parts, "
        'got "/home/./team"',
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [pytest.param(change, expected, id=name) for name, change, expected in BAD_VALUES],
)
def test_a_bad_value_is_reported_once_in_full(change: Change, expected: str) -> None:
    assert _problems(change) == [expected]


def test_a_default_namespace_too_long_names_the_derived_namespace() -> None:
    """A team name that is a label but too long for ``team-<name>`` asks for a namespace."""
    name = "r" * 60

    def rename(raw: dict[str, Any]) -> None:
        raw["teams"][name] = raw["teams"].pop("research")

    assert _problems(rename) == [
        f'MLTeams.teams.{name}.namespace: the default namespace "team-{"r" * 51}... is longer '
        "than 63 characters; set a shorter namespace"
    ]


ACCEPTED: list[tuple[str, str, Any, Any]] = [
    ("display name of 100 characters", "profiles.cpu.display_name", "x" * 100, "x" * 100),
    ("namespace of 63 characters", "teams.vision.namespace", "n" * 63, "n" * 63),
    (
        "secret of 253 characters",
        "datasets.imagenet.credentials_secret",
        "s" * 253,
        "s" * 253,
    ),
    (
        "node selector of the longest key and value",
        "profiles.pytorch-1gpu.node_selector",
        {"k" * 63: "v" * 63},
        {"k" * 63: "v" * 63},
    ),
    (
        "gate regression of zero",
        "teams.vision.promotion.gates.accuracy.max_regression",
        0,
        0.0,
    ),
    ("approval lifetime of half an hour", "teams.vision.promotion.approval_ttl_hours", 0.5, 0.5),
    ("approval lifetime of 90 days", "teams.vision.promotion.approval_ttl_hours", 2160, 2160.0),
    ("queue poll of an hour", "queue_poll_seconds", 3600, 3600.0),
    (
        "shared folder with dots inside names",
        "teams.vision.shared_folder.mount_path",
        "/home/jovyan/.team..data",
        "/home/jovyan/.team..data",
    ),
]


def _read(node: Any, path: str) -> Any:
    for key in path.split("."):
        node = node[key] if isinstance(node, Mapping) else getattr(node, key)
    return node


@pytest.mark.parametrize(
    ("path", "written", "expected"),
    [pytest.param(path, written, expected, id=name) for name, path, written, expected in ACCEPTED],
)
def test_a_value_at_the_edge_of_its_rule_is_accepted(
    path: str, written: Any, expected: Any
) -> None:
    raw = sample_raw()
    if path == "teams.vision.promotion.gates.accuracy.max_regression":
        raw["teams"]["vision"]["promotion"]["gates"] = {"accuracy": {"max_regression": written}}
    elif path == "teams.vision.shared_folder.mount_path":
        raw["teams"]["vision"]["shared_folder"] = {"mount_path": written}
    else:
        _put(path, written)(raw)
    value = _read(load_config(raw), path)
    assert (dict(value) if isinstance(value, Mapping) else value) == expected
