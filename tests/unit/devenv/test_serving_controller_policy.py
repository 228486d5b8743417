"""The serving controller's pure parts: what it reads from an InferenceService, which runtime it
chooses, the storage initializer's credentials and the reconciliation plan (create, roll, keep
serving, refuse)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from devenv.serving import crds
from devenv.serving.credentials import storage_variables
from devenv.serving.pods import Programs, predictor_hash
from devenv.serving.predictor import Predictor, Refusal, read_predictor
from devenv.serving.reconcile import Facts, reconcile
from devenv.serving.runtimes import select_runtime

NOW = "2026-12-03T12:00:00Z"
PROGRAMS = Programs(mlserver="/venv/bin/mlserver", python="/venv/bin/python", pythonpath="/repo")
MLSERVER_RUNTIME = crds.load(crds.KSERVE_DIR / "kserve-mlserver.yaml")


def isvc(uri: str = "s3://team-vision/governed/iris/3/model", **change: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "storageUri": uri,
    }
    model.update(change.pop("model", {}))
    body: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris",
            "namespace": "it-vision",
            "uid": "uid-1",
            "generation": 1,
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {"predictor": {"serviceAccountName": "mlteams-serving", "model": model}},
    }
    for key, value in change.items():
        body["spec"]["predictor"][key] = value
    return body


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"model": {"modelFormat": {"name": "tensorflow"}}}, "NoSupportingRuntime", "tensorflow"),
        ({"model": {"protocolVersion": "v1"}}, "NoSupportingRuntime", "v1"),
        ({"model": {"storageUri": ""}}, "StorageURIMissing", "storageUri is required"),
        ({"model": {"storageUri": "gs://b/m"}}, "StorageURINotSupported", "s3://<bucket>"),
        ({"model": {"storageUri": "s3:///m"}}, "StorageURINotSupported", "s3://<bucket>"),
        ({"containers": [{"name": "x"}]}, "PredictorNotSupported", "spec.predictor.containers"),
    ],
)
def test_what_the_platform_cannot_run_is_refused_with_a_reason(
    change: dict[str, Any], reason: str, words: str
) -> None:
    refusal = read_predictor(isvc(**change))
    assert isinstance(refusal, Refusal)
    assert refusal.reason == reason and words in refusal.message


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("RawDeployment", "Standard"), ("Standard", "Standard"), ("Serverless", "Knative")],
)
def test_deployment_modes_are_named_as_kserve_names_them(mode: str, expected: str) -> None:
    body = isvc()
    body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    predictor = read_predictor(body)
    assert isinstance(predictor, Predictor) and predictor.deployment_mode == expected


def test_an_unknown_deployment_mode_and_a_transformer_are_refused() -> None:
    body = isvc()
    body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "ModelMesh"
    refusal = read_predictor(body)
    assert isinstance(refusal, Refusal) and refusal.reason == "DeploymentModeNotSupported"
    body = isvc()
    body["spec"]["transformer"] = {"containers": [{"name": "t"}]}
    refusal = read_predictor(body)
    assert isinstance(refusal, Refusal) and "spec.transformer" in refusal.message


def predictor(**change: Any) -> Predictor:
    read = read_predictor(isvc(**change))
    assert isinstance(read, Predictor)
    return read


def runtime(name: str, priority: int, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "ServingRuntime",
        "metadata": {"name": name, "annotations": {"serving.kserve.io/server-type": "mlserver"}},
        "spec": {
            "supportedModelFormats": [
                {"name": "mlflow", "version": "2", "autoSelect": True, "priority": priority}
            ],
            "protocolVersions": ["v2"],
            "containers": [{"name": "kserve-container", "image": "mlserver:1"}],
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("namespaced", "change", "chosen"),
    [
        ([], {}, "kserve-mlserver"),
        ([runtime("team-low", 0)], {}, "team-low"),
        ([runtime("a", 1), runtime("b", 5)], {}, "b"),
        ([runtime("off", 9, disabled=True)], {}, "kserve-mlserver"),
        ([runtime("team", 1)], {"model": {"runtime": "kserve-mlserver"}}, "kserve-mlserver"),
    ],
)
def test_the_runtime_is_chosen_as_kserve_chooses_it(
    namespaced: list[dict[str, Any]], change: dict[str, Any], chosen: str
) -> None:
    selected = select_runtime(predictor(**change), namespaced, [MLSERVER_RUNTIME])
    assert not isinstance(selected, Refusal), selected
    assert selected.name == chosen


def test_a_missing_named_runtime_or_another_server_is_refused() -> None:
    missing = select_runtime(predictor(model={"runtime": "nope"}), [], [MLSERVER_RUNTIME])
    assert isinstance(missing, Refusal) and "'nope' not found" in missing.message
    triton = runtime("triton", 1)
    triton["metadata"]["annotations"] = {}
    triton["spec"]["containers"][0]["image"] = "nvcr.io/tritonserver:24"
    other = select_runtime(predictor(), [triton], [])
    assert isinstance(other, Refusal) and other.reason == "RuntimeNotRecognized"
    nothing = select_runtime(predictor(), [], [])
    assert isinstance(nothing, Refusal) and nothing.reason == "NoSupportingRuntime"


def secret(name: str, annotations: dict[str, str], **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"name": name, "annotations": annotations}, "data": encoded}


S3_SECRET = secret(
    "mlteams-serving-s3",
    {
        "serving.kserve.io/s3-endpoint": "http://127.0.0.1:9000",
        "serving.kserve.io/s3-region": "us-east-1",
    },
    AWS_ACCESS_KEY_ID="reader",
    AWS_SECRET_ACCESS_KEY="s3cret",
)
ACCOUNT = {"metadata": {"name": "mlteams-serving"}, "secrets": [{"name": "mlteams-serving-s3"}]}


def test_the_key_pair_is_referenced_never_inlined_and_the_annotations_set_the_endpoint() -> None:
    variables = storage_variables("mlteams-serving", ACCOUNT, {"mlteams-serving-s3": S3_SECRET})
    assert isinstance(variables, list)
    by_name = {v["name"]: v for v in variables}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert by_name[key] == {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": "mlteams-serving-s3", "key": key}},
        }
    assert by_name["AWS_ENDPOINT_URL"]["value"] == "http://127.0.0.1:9000"
    assert by_name["S3_ENDPOINT"]["value"] == "127.0.0.1:9000"
    assert by_name["S3_USE_HTTPS"]["value"] == "0"
    assert by_name["AWS_DEFAULT_REGION"]["value"] == "us-east-1"
    assert "s3cret" not in repr(variables)


@pytest.mark.parametrize(
    ("account", "secrets", "reason"),
    [
        (None, {}, "ServiceAccountNotFound"),
        (ACCOUNT, {"mlteams-serving-s3": None}, "SecretNotFound"),
    ],
)
def test_missing_credentials_are_a_refusal(
    account: dict[str, Any] | None, secrets: dict[str, Any], reason: str
) -> None:
    refusal = storage_variables("mlteams-serving", account, secrets)
    assert isinstance(refusal, Refusal) and refusal.reason == reason


def test_a_secret_without_an_s3_key_adds_nothing() -> None:
    token = secret("registry", {}, token="x")
    account = {"secrets": [{"name": "registry"}]}
    assert storage_variables("sa", account, {"registry": token}) == []


FACTS = {
    "service_account": ACCOUNT,
    "secrets": {"mlteams-serving-s3": S3_SECRET},
    "cluster_runtimes": [MLSERVER_RUNTIME],
}


def ready(pod: dict[str, Any], is_ready: bool = True) -> dict[str, Any]:
    pod = dict(pod)
    pod["metadata"] = dict(pod["metadata"], uid=f"pod-{predictor_hash(pod)}")
    pod["status"] = {
        "podIP": "127.10.0.5",
        "conditions": [{"type": "Ready", "status": "True" if is_ready else "False"}],
        "initContainerStatuses": [
            {"name": "storage-initializer", "state": {"terminated": {"exitCode": 0}}}
        ],
    }
    return pod


def test_a_new_object_gets_one_pod_owned_by_it_and_is_not_ready_yet() -> None:
    plan = reconcile(isvc(), Facts(**FACTS), PROGRAMS, NOW)
    assert plan.create is not None and plan.delete == []
    owner = plan.create["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("InferenceService", "uid-1", True)
    init = plan.create["spec"]["initContainers"][0]
    assert init["name"] == "storage-initializer" and init["args"][-2:] == [
        "s3://team-vision/governed/iris/3/model",
        "/mnt/models",
    ]
    conditions = {c["type"]: c["status"] for c in plan.status["conditions"]}
    assert conditions == {"PredictorReady": "False", "Ready": "False"}


def test_a_ready_pod_makes_the_object_ready_with_its_url() -> None:
    pod = ready(reconcile(isvc(), Facts(**FACTS), PROGRAMS, NOW).create or {})
    plan = reconcile(isvc(), Facts(pods=[pod], **FACTS), PROGRAMS, NOW)
    assert plan.create is None and plan.delete == []
    assert plan.status["url"] == "http://127.10.0.5:8080"
    assert all(c["status"] == "True" for c in plan.status["conditions"])
    assert plan.status["observedGeneration"] == 1


def test_a_new_storage_uri_rolls_the_pod_keeping_the_old_one_until_the_new_one_is_ready() -> None:
    old = ready(reconcile(isvc(), Facts(**FACTS), PROGRAMS, NOW).create or {})
    moved = isvc("s3://team-vision/governed/iris/4/model")
    moved["metadata"]["generation"] = 2
    rolling = reconcile(moved, Facts(pods=[old], **FACTS), PROGRAMS, NOW)
    assert rolling.create is not None and rolling.delete == []
    assert rolling.create["metadata"]["name"] != old["metadata"]["name"]
    assert rolling.status["url"] == "http://127.10.0.5:8080"
    loading = ready(rolling.create, is_ready=False)
    waiting = reconcile(moved, Facts(pods=[old, loading], **FACTS), PROGRAMS, NOW)
    assert waiting.create is None and waiting.delete == []
    assert waiting.status["url"] == "http://127.10.0.5:8080"
    new = ready(rolling.create)
    new["status"]["podIP"] = "127.10.0.6"
    done = reconcile(moved, Facts(pods=[old, new], **FACTS), PROGRAMS, NOW)
    assert done.create is None
    assert [p["metadata"]["name"] for p in done.delete] == [old["metadata"]["name"]]
    assert done.status["url"] == "http://127.10.0.6:8080"


def test_a_refused_object_keeps_no_pods_and_says_why() -> None:
    pod = ready(reconcile(isvc(), Facts(**FACTS), PROGRAMS, NOW).create or {})
    broken = isvc(model={"modelFormat": {"name": "onnx"}})
    plan = reconcile(broken, Facts(pods=[pod], **FACTS), PROGRAMS, NOW)
    assert plan.create is None and plan.delete == [pod]
    ready_condition = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert ready_condition["status"] == "False" and "onnx" in ready_condition["message"]


def test_a_lost_secret_keeps_the_serving_pod_and_creates_nothing() -> None:
    pod = ready(reconcile(isvc(), Facts(**FACTS), PROGRAMS, NOW).create or {})
    facts = Facts(
        pods=[pod],
        service_account=ACCOUNT,
        secrets={"mlteams-serving-s3": None},
        cluster_runtimes=[MLSERVER_RUNTIME],
    )
    plan = reconcile(isvc("s3://team-vision/governed/iris/5/model"), facts, PROGRAMS, NOW)
    assert plan.create is None and plan.delete == []
    ready_condition = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert "mlteams-serving-s3" in ready_condition["message"]


def test_every_crd_the_rig_installs_is_kept_in_the_repository() -> None:
    kinds = {crds.load(crds.KSERVE_DIR / name)["spec"]["names"]["kind"] for name in crds.CRD_FILES}
    assert kinds == {"InferenceService", "ServingRuntime", "ClusterServingRuntime"}
