"""The InferenceService the bundle renders, checked against KServe's own CRD schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub_ext.policy import load_config
from hub_ext.policy.config import Serving
from hub_ext.policy.fields import written_by_admin
from hub_ext.policy.inference_service import (
    DEPLOYMENT_MODE_ANNOTATION,
    DIGEST_ANNOTATION,
    ServedVersion,
    inference_service_name,
    render_inference_service,
    serving_state,
)
from hub_ext.policy.validation import ConfigError
from tests.kserve_schema import problems
from tests.unit.policy.sample import sample_raw

pytestmark = pytest.mark.unit

SERVED = ServedVersion(
    team="vision",
    namespace="team-vision",
    model="iris",
    governed_name="governed.vision.iris",
    version=3,
    storage_uri="s3://mlteams-governed/vision/iris/" + "b" * 32 + "/model",
    artifact_sha256="a" * 64,
    promotion_id="b" * 32,
)


def rendered(**settings: Any) -> dict[str, Any]:
    serving = Serving.model_validate(
        {"enabled": True, **settings}, context=written_by_admin("MLTeams.teams.vision.serving")
    )
    return render_inference_service(SERVED, serving)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"deployment_mode": "Serverless", "min_replicas": 0, "max_replicas": 4},
        {"cpu": "500m", "memory": "1Gi"},
        {
            "gpus": 1,
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
        {"service_account": "vision-models"},
    ],
)
def test_every_rendering_is_a_valid_inference_service(settings: dict[str, Any]) -> None:
    assert problems(rendered(**settings)) == []


def test_the_model_is_mlflow_on_v2_from_the_frozen_folder_with_no_credentials() -> None:
    obj = rendered()
    model = obj["spec"]["predictor"]["model"]
    assert obj["apiVersion"] == "serving.kserve.io/v1beta1" and obj["kind"] == "InferenceService"
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == SERVED.storage_uri
    assert obj["spec"]["predictor"]["serviceAccountName"] == "mlteams-serving"
    text = repr(obj).lower()
    assert "secret" not in text and "aws_" not in text and "password" not in text


def test_labels_and_annotations_name_team_model_version_and_digest() -> None:
    metadata = rendered()["metadata"]
    assert metadata["name"] == "iris" and metadata["namespace"] == "team-vision"
    assert metadata["labels"] == {
        "app.kubernetes.io/managed-by": "jupyterhub-mlteams",
        "mlteams.io/team": "vision",
        "mlteams.io/model": "iris",
        "mlteams.io/version": "3",
    }
    assert metadata["annotations"][DIGEST_ANNOTATION] == "a" * 64
    assert metadata["annotations"][DEPLOYMENT_MODE_ANNOTATION] == "RawDeployment"


@pytest.mark.parametrize("mode", ["RawDeployment", "Serverless"])
def test_the_deployment_mode_is_always_annotated(mode: str) -> None:
    assert (
        rendered(deployment_mode=mode)["metadata"]["annotations"][DEPLOYMENT_MODE_ANNOTATION]
        == mode
    )


@pytest.mark.parametrize(
    ("settings", "requests", "limits"),
    [
        ({}, {"cpu": "1", "memory": "2Gi"}, {"cpu": "1", "memory": "2Gi"}),
        (
            {"cpu": 2, "memory": "8Gi", "gpus": 2},
            {"cpu": "2", "memory": "8Gi"},
            {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "2"},
        ),
        ({"cpu": "250m", "memory": "512Mi"}, {"cpu": "250m", "memory": "512Mi"}, None),
    ],
)
def test_resources(
    settings: dict[str, Any], requests: dict[str, str], limits: dict[str, str] | None
) -> None:
    resources = rendered(**settings)["spec"]["predictor"]["model"]["resources"]
    assert resources["requests"] == requests
    assert resources["limits"] == (limits or requests)


BROKEN: list[tuple[str, Any, str]] = [
    ("a misspelt model field", ("spec", "predictor", "model", "storageUrl"), "storageUrl"),
    ("a misspelt predictor field", ("spec", "predictor", "minReplica"), "minReplica"),
    ("a misspelt spec field", ("spec", "predicter"), "predicter"),
    ("a misspelt metadata field", ("metadata", "label"), "label"),
]


@pytest.mark.parametrize(("what", "path", "named"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_typo_is_rejected_not_pruned(what: str, path: tuple[str, ...], named: str) -> None:
    obj = copy.deepcopy(rendered())
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 1
    found = problems(obj)
    assert found and any(named in problem for problem in found), found


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "predictor", "minReplicas"), "one"),
        (("spec", "predictor", "model", "modelFormat"), "mlflow"),
        (("spec", "predictor", "model", "resources", "limits"), ["cpu"]),
    ],
)
def test_a_wrong_type_is_rejected(path: tuple[str, ...], value: Any) -> None:
    obj = copy.deepcopy(rendered())
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert problems(obj)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("iris", "iris"),
        ("churn-v2", "churn-v2"),
        ("2024-model", None),
        ("a" * 63, None),
    ],
)
def test_names_are_dns_1035_labels_kserve_accepts(model: str, expected: str | None) -> None:
    name = inference_service_name(model)
    if expected is not None:
        assert name == expected
    assert len(name) <= 45 and name[0].isalpha() and name[-1].isalnum()
    assert name == inference_service_name(model)
    assert name != inference_service_name(model + "x")


def test_only_a_frozen_s3_folder_with_its_digest_is_served() -> None:
    serving = Serving.model_validate({"enabled": True})
    for bad in (
        ServedVersion(**{**SERVED.__dict__, "storage_uri": "models:/governed.vision.iris/3"}),
        ServedVersion(**{**SERVED.__dict__, "artifact_sha256": "-"}),
    ):
        with pytest.raises(ValueError):
            render_inference_service(bad, serving)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),
        ({"deployment_mode": "Knative"}, "deployment_mode"),
        ({"mode": "push"}, "mode"),
        ({"service_account": "Not_A_Name"}, "service_account"),
        ({"gpus": -1}, "gpus"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_bad_serving_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    raw = sample_raw()
    team = next(iter(raw["teams"]))
    raw["teams"][team]["serving"] = settings
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    assert f"teams.{team}.serving.{key}" in str(caught.value)


STATES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "no status yet",
        {},
        {"ready": False, "url": None, "reason": "KServe has not reported on it yet"},
    ),
    (
        "ready",
        {
            "observedGeneration": 2,
            "url": "http://iris.team-vision.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
        {"ready": True, "url": "http://iris.team-vision.example.com", "reason": None},
    ),
    (
        "ready for the spec before",
        {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
        {"ready": False, "reason": "KServe has not reconciled the latest version yet"},
    ),
    (
        "failing",
        {
            "observedGeneration": 2,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "StorageInitializerFailed",
                    "message": "no such key",
                }
            ],
        },
        {"ready": False, "reason": "StorageInitializerFailed: no such key"},
    ),
    (
        "the address only",
        {
            "observedGeneration": 2,
            "address": {"url": "http://iris-predictor.team-vision.svc"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
        {"ready": True, "url": "http://iris-predictor.team-vision.svc"},
    ),
]


@pytest.mark.parametrize(("what", "status", "expected"), STATES, ids=[s[0] for s in STATES])
def test_state_read_back(what: str, status: dict[str, Any], expected: dict[str, Any]) -> None:
    obj = rendered()
    obj["metadata"]["generation"] = 2
    obj["status"] = status
    state = serving_state(obj).to_json()
    assert state["version"] == 3 and state["storage_uri"] == SERVED.storage_uri
    for key, value in expected.items():
        if key == "reason" and value is not None:
            assert state[key] is not None and state[key].startswith(value)
        else:
            assert state[key] == value, key


NAMES: list[tuple[str, str]] = [
    ("a" * 45, "a" * 45),
    ("a" * 46, "m-" + "a" * 34 + "-6643110c"),
    ("Churn_Model", "m-churn-model-431ffbc9"),
    ("_x_", "m-x-f1f6bd62"),
    ("__" + "a" * 50, "m-" + "a" * 34 + "-aef26905"),
    ("a" * 33 + "_" + "b" * 20, "m-" + "a" * 33 + "-dc15a1b4"),
    ("___", "m-bda25155"),
    ("2024-model", "m-2024-model-be4f16e2"),
]


@pytest.mark.parametrize(("model", "expected"), NAMES)
def test_names_kept_or_shortened_with_a_digest_suffix(model: str, expected: str) -> None:
    """A model name KServe accepts (at most 45 characters) is kept; any other becomes ``m-``, its
    lower-cased name with other characters as dashes (trimmed, cut to 34), and the first 8 hex
    digits of the sha256 of the model's name."""
    assert inference_service_name(model) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"storage_uri": "models:/governed.vision.iris/3"},
            "a governed version is served from its frozen s3:// folder, "
            "got 'models:/governed.vision.iris/3'",
        ),
        (
            {"artifact_sha256": "A" * 64},
            "a governed version is served with its artifact's sha256 digest",
        ),
    ],
)
def test_refusals_to_serve_say_why(changes: dict[str, str], message: str) -> None:
    bad = ServedVersion(**{**SERVED.__dict__, **changes})
    with pytest.raises(ValueError) as caught:
        render_inference_service(bad, Serving.model_validate({"enabled": True}))
    assert str(caught.value) == message


def _state_of(obj: dict[str, Any]) -> dict[str, Any]:
    return serving_state(obj).to_json()


def _with_status(status: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "iris",
            "namespace": "team-vision",
            "generation": 2,
            "labels": {"mlteams.io/version": "3", **labels},
        },
        "spec": {"predictor": {"model": {"storageUri": "s3://bucket/iris"}}},
        "status": status,
    }


READ_BACK: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "an empty object",
        {},
        {
            "name": "",
            "namespace": "",
            "version": None,
            "storage_uri": None,
            "ready": False,
            "url": None,
            "reason": "KServe has not reported on it yet (is KServe installed?)",
            "current": True,
        },
    ),
    (
        "no Ready condition",
        _with_status(
            {"observedGeneration": 2, "conditions": [{"type": "PredictorReady", "status": "True"}]}
        ),
        {
            "name": "iris",
            "namespace": "team-vision",
            "version": 3,
            "storage_uri": "s3://bucket/iris",
            "ready": False,
            "url": None,
            "reason": "KServe reports no Ready condition yet",
            "current": True,
        },
    ),
    (
        "not ready with neither reason nor message",
        _with_status(
            {
                "observedGeneration": 2,
                "url": "http://iris.example.com",
                "conditions": [{"type": "Ready", "status": "False"}],
            }
        ),
        {
            "name": "iris",
            "namespace": "team-vision",
            "version": 3,
            "storage_uri": "s3://bucket/iris",
            "ready": False,
            "url": "http://iris.example.com",
            "reason": "not ready",
            "current": True,
        },
    ),
    (
        "a stale status and a version label that is not a number",
        _with_status(
            {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
            **{"mlteams.io/version": "three"},
        ),
        {
            "name": "iris",
            "namespace": "team-vision",
            "version": None,
            "storage_uri": "s3://bucket/iris",
            "ready": False,
            "url": None,
            "reason": "KServe has not reconciled the latest version yet",
            "current": False,
        },
    ),
    (
        "ready with a URL that is not a string",
        _with_status(
            {
                "observedGeneration": 2,
                "url": {"host": "iris.example.com"},
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        ),
        {
            "name": "iris",
            "namespace": "team-vision",
            "version": 3,
            "storage_uri": "s3://bucket/iris",
            "ready": True,
            "url": None,
            "reason": None,
            "current": True,
        },
    ),
]


@pytest.mark.parametrize(
    ("what", "obj", "expected"), READ_BACK, ids=[case[0] for case in READ_BACK]
)
def test_the_whole_state_read_back(
    what: str, obj: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert _state_of(copy.deepcopy(obj)) == expected
