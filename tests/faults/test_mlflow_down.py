"""MLflow stopped in the middle of a promotion, on the rig: the real ``mlteams`` service has read
the candidate from the registry, frozen it and started the evaluation Job in the team's
namespace when the MLflow server process is stopped. The service's next registry calls (the
champion's alias, the governed model, the new version) find nothing answering.

Nothing is half-done: the request answers 503 naming MLflow, ``champion`` is where it was, the
governed model has no new version, the frozen copy and its card are removed, and the audit holds
the failure. Once MLflow is back on the same port the same request is promoted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.mlflow_server import MLflowServer
from tests.integration.sharing_helpers import SERVICE_API, user_token
from tests.integration.team_data import GOVERNED_BUCKET, TeamData
from tests.integration.test_promotion_on_rig import audit, champion_or_none, log_model_as
from tests.kube_helpers import eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

USER = "v-dora"
MODEL = "iris-faults"
GOVERNED = f"governed.vision.{MODEL}"
NAMESPACE = "it-vision"


def versions(mlflow_server: MLflowServer) -> list[int]:
    """The governed model's versions in the registry (none while it does not exist)."""
    response = requests.get(
        f"{mlflow_server.url}/api/2.0/mlflow/model-versions/search",
        params={"filter": f"name='{GOVERNED}'"},
        auth=(mlflow_server.admin_username, mlflow_server.admin_password),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return sorted(int(v["version"]) for v in response.json().get("model_versions", []))


def promote(hub: LocalHub, token: str, body: dict[str, str]) -> tuple[int, Any]:
    """``POST /promotions?wait=300`` as the member: ``(status, JSON)``."""
    response = requests.post(
        f"{hub.url}{SERVICE_API}/promotions?wait=300",
        json=body,
        headers={"Authorization": f"token {token}"},
        timeout=400,
    )
    return response.status_code, response.json()


def evaluation_jobs(cluster: LocalCluster) -> list[dict[str, Any]]:
    """The evaluation Jobs of this model in the team's namespace."""
    found = cluster.api.get(
        f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs?labelSelector=mlteams.io/model%3D{MODEL}"
    )
    return list(found.get("items", []))


def governed_objects(team_data: TeamData, promotion_id: str) -> list[str]:
    store = team_data.store.client()
    prefix = f"vision/{MODEL}/{promotion_id}/"
    return [o.object_name for o in store.list_objects(GOVERNED_BUCKET, prefix, recursive=True)]


async def test_mlflow_stopped_during_the_evaluation_leaves_nothing_and_the_retry_is_promoted(
    cluster: LocalCluster,
    team_hub: LocalHub,
    mlflow_server: MLflowServer,
    team_data: TeamData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = user_token(team_hub, USER, note="mlflow fault test")
    run_id = log_model_as(mlflow_server, token, "vision", monkeypatch)
    champion_before = champion_or_none(mlflow_server, GOVERNED)
    versions_before = versions(mlflow_server)
    jobs_before = {job["metadata"]["name"] for job in evaluation_jobs(cluster)}
    body = {"model": MODEL, "run_id": run_id, "team": "vision"}
    request = asyncio.create_task(asyncio.to_thread(promote, team_hub, token, body))

    async def evaluation_started() -> list[dict[str, Any]]:
        assert not request.done(), request.result()
        jobs = await asyncio.to_thread(evaluation_jobs, cluster)
        return [job for job in jobs if job["metadata"]["name"] not in jobs_before]

    try:
        [job] = await eventually(evaluation_started, timeout=240, what="the evaluation Job")
        mlflow_server.stop()
        status, failed = await request
    finally:
        if mlflow_server.child is None:
            mlflow_server.start()
    promotion_id = job["metadata"]["labels"]["mlteams.io/promotion"]

    # a clear 503, naming MLflow and saying nothing changed
    assert status == 503, failed
    assert failed["id"] == promotion_id and failed["state"] == "failed", failed
    assert "MLflow" in failed["message"] and "nothing was changed" in failed["message"]
    # nothing half-done: the alias, the versions, the frozen copy and its card
    assert champion_or_none(mlflow_server, GOVERNED) == champion_before
    assert versions(mlflow_server) == versions_before
    assert governed_objects(team_data, promotion_id) == []
    # the audit records the request and its failure, nothing more
    entries = [e for e in audit(team_hub, token, MODEL) if e["promotion_id"] == promotion_id]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("requested", "evaluating"),
        ("failed", "failed"),
    ]
    assert "MLflow" in entries[-1]["detail"]

    # the same request once MLflow is back
    status, promoted = await asyncio.to_thread(promote, team_hub, token, body)
    assert status == 201 and promoted["state"] == "promoted", promoted
    assert versions(mlflow_server) == [*versions_before, promoted["version"]]
    assert champion_or_none(mlflow_server, GOVERNED) == promoted["version"]
    card = f"vision/{MODEL}/{promoted['id']}/MODEL_CARD.md"
    assert card in governed_objects(team_data, promoted["id"])
    # team vision serves its champions: this one's predictor is not kept for the later tests
    served = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/{MODEL}"
    cluster.api.request("DELETE", served)
