"""The local platform's serving controller: KServe InferenceServices, applied server-side with
strict validation against KServe's own CRD, become predictor pods that download the model from the
object store with the credentials of the predictor's ServiceAccount and answer V2 inference with
MLServer; the status follows the pod, a new storageUri rolls the pod, and deleting the object
removes it."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.sklearn
import pandas as pd
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from devenv.cluster import LocalCluster
from devenv.object_store import REGION, ObjectStore, S3Credentials, team_bucket
from tests.kube_helpers import eventually, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
ACCOUNT, SECRET = "mlteams-serving", "mlteams-serving-s3"
READY_TIMEOUT = 240


@dataclass
class Models:
    """Two different iris models in a team's bucket, and the rows to ask them about."""

    bucket: str
    uris: dict[str, str]
    expected: dict[str, list[int]]
    rows: pd.DataFrame
    credentials: S3Credentials
    other_team: S3Credentials


@pytest.fixture(scope="module")
def models(object_store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Models:
    team = unique("serving")
    creds = object_store.add_team(team)
    other = object_store.add_team(unique("other"))
    bucket = team_bucket(team)
    features, labels = load_iris(return_X_y=True, as_frame=True)
    rows = features.iloc[[0, 1, 50, 51, 100, 101]]
    trained = {
        "iris": LogisticRegression(max_iter=500).fit(features, labels),
        # the same flowers with the species shifted by one: every answer differs
        "shifted": LogisticRegression(max_iter=500).fit(features, (labels + 1) % 3),
    }
    uris, expected = {}, {}
    for name, model in trained.items():
        folder = tmp_path_factory.mktemp(name) / "model"
        mlflow.sklearn.save_model(model, str(folder), input_example=rows.head(2))
        prefix = f"vision/{name}/{unique('v')}/model"
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            object_store.upload(bucket, f"{prefix}/{path.relative_to(folder)}", path)
        uris[name] = f"s3://{bucket}/{prefix}"
        expected[name] = [int(v) for v in model.predict(rows)]
    assert expected["iris"] != expected["shifted"]
    return Models(bucket, uris, expected, rows, creds, other)


async def publish_key(
    core: client.CoreV1Api, namespace: str, creds: S3Credentials, store: ObjectStore
) -> None:
    """The Secret with KServe's S3 annotations and the ServiceAccount that lists it."""
    endpoint = store.endpoint_url.removeprefix("http://")
    secret = {
        "metadata": {
            "name": SECRET,
            "annotations": {
                "serving.kserve.io/s3-endpoint": endpoint,
                "serving.kserve.io/s3-usehttps": "0",
                "serving.kserve.io/s3-region": REGION,
            },
        },
        "stringData": {
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        },
    }
    await core.create_namespaced_secret(namespace, secret)
    account = {"metadata": {"name": ACCOUNT}, "secrets": [{"name": SECRET}]}
    await core.create_namespaced_service_account(namespace, account)


def inference_service(name: str, namespace: str, storage_uri: str, **model: Any) -> dict[str, Any]:
    """An InferenceService of the shape the bundle applies."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "jupyterhub-mlteams",
                "mlteams.io/team": "vision",
            },
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {
            "predictor": {
                "serviceAccountName": ACCOUNT,
                "minReplicas": 1,
                "maxReplicas": 1,
                "model": {
                    "modelFormat": {"name": "mlflow"},
                    "protocolVersion": "v2",
                    "storageUri": storage_uri,
                    "resources": {
                        "requests": {"cpu": "1", "memory": "2Gi"},
                        "limits": {"cpu": "1", "memory": "2Gi"},
                    },
                    **model,
                },
            }
        },
    }


class Services:
    def __init__(self, kube: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.namespace = namespace

    async def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with strict field validation, as the bundle applies."""
        result = await getattr(self.custom, "patch_namespaced_custom_object")(  # noqa: B009
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            body["metadata"]["name"],
            body,
            field_manager="mlteams-test",
            field_validation="Strict",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        # the client reads the object from a 200 answer only, not from a 201 (created)
        return dict(result) if result else await self.get(body["metadata"]["name"])

    async def get(self, name: str) -> dict[str, Any]:
        return dict(
            await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        )

    async def delete(self, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )

    async def status_when(self, name: str, ready: bool, timeout: float = READY_TIMEOUT) -> dict:
        """The status once it describes the latest spec with Ready ``ready``."""

        async def reached() -> dict[str, Any] | None:
            obj = await self.get(name)
            status = obj.get("status") or {}
            if status.get("observedGeneration") != obj["metadata"]["generation"]:
                return None
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            wanted = "True" if ready else "False"
            if (conditions.get("Ready") or {}).get("status") != wanted:
                return None
            if not ready and (conditions["Ready"].get("reason") or "") in (
                "PodNotCreated",
                "StorageInitializing",
                "ModelLoading",
            ):
                return None
            return status

        return await eventually(
            reached, timeout=timeout, interval=0.5, what=f"{name} Ready {ready}"
        )

    async def pods(self, name: str) -> list[client.V1Pod]:
        listed = await self.core.list_namespaced_pod(
            self.namespace, label_selector=f"serving.kserve.io/inferenceservice={name}"
        )
        return list(listed.items)

    async def pods_gone(self, name: str, timeout: float = 120) -> None:
        async def gone() -> bool:
            return not await self.pods(name)

        await eventually(gone, timeout=timeout, interval=0.5, what=f"pods of {name} gone")


@pytest.fixture
async def services(
    kube: client.ApiClient, namespace: str, models: Models, object_store: ObjectStore
) -> AsyncIterator[Services]:
    await publish_key(client.CoreV1Api(kube), namespace, models.credentials, object_store)
    yield Services(kube, namespace)


async def predict(url: str, name: str, rows: pd.DataFrame) -> list[int]:
    """V2 inference: one input per column."""
    body = {
        "inputs": [
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": "FP64",
                "data": rows[column].tolist(),
            }
            for column in rows.columns
        ]
    }

    def post() -> dict[str, Any]:
        request = urllib.request.Request(
            f"{url}/v2/models/{name}/infer",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    answer = await asyncio.to_thread(post)
    assert answer["model_name"] == name
    return [int(v) for v in answer["outputs"][0]["data"]]


async def test_serves_predictions_and_follows_a_new_storage_uri(
    services: Services, models: Models, object_store: ObjectStore
) -> None:
    applied = await services.apply(
        inference_service("iris", services.namespace, models.uris["iris"])
    )
    assert applied["spec"]["predictor"]["model"]["storageUri"] == models.uris["iris"]
    # a second model served at the same time, on its own pod address with the same ports
    await services.apply(inference_service("shifted", services.namespace, models.uris["shifted"]))

    status = await services.status_when("iris", ready=True)
    other = await services.status_when("shifted", ready=True)
    assert status["url"] != other["url"]
    assert status["url"].endswith(":8080") and status["address"]["url"] == status["url"]
    assert status["annotations"]["mlteams.io/storage-uri"] == models.uris["iris"]
    assert status["deploymentMode"] == "Standard"
    assert status["clusterServingRuntimeName"] == "kserve-mlserver"
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    predictor = status["components"]["predictor"]
    assert predictor["url"] == status["url"]
    assert predictor["latestReadyRevision"] == predictor["latestCreatedRevision"]
    assert await predict(status["url"], "iris", models.rows) == models.expected["iris"]
    assert await predict(other["url"], "shifted", models.rows) == models.expected["shifted"]

    (pod,) = await services.pods("iris")
    assert pod.metadata.name == predictor["latestReadyRevision"]
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("InferenceService", "iris", True)
    assert pod.spec.service_account_name == ACCOUNT
    (init,) = pod.spec.init_containers
    assert init.name == "storage-initializer"
    assert init.args == [models.uris["iris"], "/mnt/models"]
    refs = {e.name: e.value_from.secret_key_ref for e in init.env if e.value_from}
    assert {n: (r.name, r.key) for n, r in refs.items()} == {
        "AWS_ACCESS_KEY_ID": (SECRET, "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": (SECRET, "AWS_SECRET_ACCESS_KEY"),
    }
    plain = {e.name: e.value for e in init.env if not e.value_from}
    assert plain["AWS_ENDPOINT_URL"] == object_store.endpoint_url
    assert plain["AWS_DEFAULT_REGION"] == REGION
    spec_text = json.dumps(client.ApiClient().sanitize_for_serialization(pod))
    assert models.credentials.secret_key not in spec_text
    (main,) = pod.spec.containers
    assert main.name == "kserve-container"
    assert main.resources.limits == {"cpu": "1", "memory": "2Gi"}
    assert main.readiness_probe.http_get.path == "/v2/models/iris/ready"

    # promotion or rollback: a new storageUri; the status is not Ready for it until it serves
    old_pod = pod.metadata.name
    await services.apply(inference_service("iris", services.namespace, models.uris["shifted"]))
    status = await services.status_when("iris", ready=True)
    assert status["annotations"]["mlteams.io/storage-uri"] == models.uris["shifted"]
    assert status["components"]["predictor"]["latestReadyRevision"] != old_pod
    assert await predict(status["url"], "iris", models.rows) == models.expected["shifted"]

    async def old_pod_gone() -> bool:
        return old_pod not in [p.metadata.name for p in await services.pods("iris")]

    await eventually(old_pod_gone, timeout=120, what=f"old predictor pod {old_pod} deleted")

    # deleting the InferenceService removes its pod (the garbage collector, by ownerReference)
    await services.delete("iris")
    await services.pods_gone("iris")
    assert [p.metadata.name for p in await services.pods("shifted")]
    await services.delete("shifted")
    await services.pods_gone("shifted")


def message(refused: pytest.ExceptionInfo[ApiException]) -> str:
    """The apiserver's message in a refusal (the body is a JSON ``Status``)."""
    return str(json.loads(refused.value.body)["message"])


async def test_a_typo_in_the_spec_is_refused_with_the_field_named(
    services: Services, models: Models
) -> None:
    body = inference_service("typo", services.namespace, models.uris["iris"])
    model = body["spec"]["predictor"]["model"]
    model["storageUrl"] = model.pop("storageUri")
    with pytest.raises(ApiException) as refused:
        await services.apply(body)
    # the apiserver answers a server-side apply with an undeclared field "failed to create typed
    # patch object ... field not declared in schema", with a 500 on some versions
    assert refused.value.status in (400, 422, 500)
    assert ".spec.predictor.model.storageUrl: field not declared in schema" in message(refused)
    with pytest.raises(ApiException) as created:
        await services.custom.create_namespaced_custom_object(
            GROUP, VERSION, services.namespace, PLURAL, body, field_validation="Strict"
        )
    assert created.value.status == 400
    assert 'unknown field "spec.predictor.model.storageUrl"' in message(created)
    with pytest.raises(ApiException) as missing:
        await services.get("typo")
    assert missing.value.status == 404


@pytest.mark.parametrize("case", ["missing model", "refused key"])
async def test_a_model_that_cannot_be_downloaded_makes_ready_false_with_the_reason(
    kube: client.ApiClient,
    namespace: str,
    models: Models,
    object_store: ObjectStore,
    case: str,
) -> None:
    creds = models.credentials if case == "missing model" else models.other_team
    await publish_key(client.CoreV1Api(kube), namespace, creds, object_store)
    services = Services(kube, namespace)
    uri = models.uris["iris"]
    if case == "missing model":
        uri = f"s3://{models.bucket}/vision/iris/no-such-version/model"
    await services.apply(inference_service("broken", namespace, uri))

    status = await services.status_when("broken", ready=False)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ModelLoadFailed"
    assert "storage-initializer exited with code 1" in ready["message"]
    expected = "no model found" if case == "missing model" else "AccessDenied"
    assert expected in ready["message"]
    assert "url" not in status
    failure = status["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "ModelLoadFailed" and failure["exitCode"] == 1
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"

    await services.delete("broken")
    await services.pods_gone("broken")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model_format": "sklearn"}, "NoSupportingRuntime"),
        ({"mode": "ModelMesh"}, "DeploymentModeNotSupported"),
        ({"account": "nobody"}, "ServiceAccountNotFound"),
    ],
)
async def test_what_the_platform_cannot_serve_is_not_ready_with_the_reason_and_no_pod(
    services: Services, models: Models, change: dict[str, str], reason: str
) -> None:
    body = inference_service("unserved", services.namespace, models.uris["iris"])
    predictor = body["spec"]["predictor"]
    if "model_format" in change:
        predictor["model"]["modelFormat"]["name"] = change["model_format"]
    if "mode" in change:
        body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = change["mode"]
    if "account" in change:
        predictor["serviceAccountName"] = change["account"]
    await services.apply(body)

    status = await services.status_when("unserved", ready=False, timeout=60)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == reason
    assert ready["message"]
    assert not await services.pods("unserved")
    await services.delete("unserved")


def test_the_crds_and_the_mlserver_runtime_are_installed(cluster: LocalCluster) -> None:
    api = cluster.api
    for plural in ("inferenceservices", "servingruntimes", "clusterservingruntimes"):
        crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{GROUP}")
        assert any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd["status"]["conditions"]
        )
    runtime = api.get(f"/apis/{GROUP}/v1alpha1/clusterservingruntimes/kserve-mlserver")
    assert "mlflow" in [f["name"] for f in runtime["spec"]["supportedModelFormats"]]


def test_the_controller_logs_to_the_state_folder(cluster: LocalCluster) -> None:
    assert cluster.serving is not None and cluster.serving.alive()
    log = Path(cluster.state_dir / "logs" / "serving.log").read_text()
    assert "serving controller starting" in log
