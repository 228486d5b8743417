"""Serving handoff end to end on the rig: models trained in a spawned server's notebook are
promoted through the real ``mlteams`` service, which applies their KServe InferenceService into
the team's namespace (the real apiserver, KServe's CRDs, strict field validation); the rig's
serving controller runs the frozen model with MLServer, and V2 inference requests answer as the
notebook's models do. Then rollback re-points it, a typo is refused by the apiserver, and a
tampered frozen artifact blocks the apply with an audit row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from hub_ext.service.kube import kube_client
from hub_ext.service.serving import InferenceServices, ServingError
from tests.integration.sharing_helpers import SERVICE_API, as_user, user_token
from tests.integration.team_data import GOVERNED_BUCKET, TeamData
from tests.integration.team_hub_helpers import wait_server_sync
from tests.integration.test_promotion_on_rig import (
    BETTER,
    GOOD,
    READ_AND_TRAIN,
    run_cells,
    server_call,
)
from tests.kube_helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

USER = "v-dora"
MODEL = "iris-served"
NAMESPACE = "it-vision"
NOTEBOOK = "serve/train.ipynb"
READY_SECONDS = 300
# rows spread over the measurements' range, where a tree and a linear model disagree somewhere
GRID = """\
import json
import numpy as np

rng = np.random.default_rng(7)
features = df.drop(columns="species")
grid = features.sample(0).copy()
for column in features.columns:
    low, high = features[column].min(), features[column].max()
    grid[column] = rng.uniform(low - 1, high + 1, 60).round(2)
print("grid", json.dumps({c: grid[c].tolist() for c in grid.columns}))
print("predicted", json.dumps(model.predict(grid).tolist()))
"""


@pytest.fixture(scope="module")
def server(team_hub: LocalHub) -> Iterator[str]:
    status, body = team_hub.call(
        "POST", f"/users/{USER}/server", {"team": "vision", "profile": "cpu"}
    )
    assert status in (201, 202), body
    try:
        wait_server_sync(team_hub, USER, ready=True)
        yield USER
    finally:
        team_hub.call("DELETE", f"/users/{USER}/server")
        wait_server_sync(team_hub, USER, ready=False)


@pytest.fixture(scope="module")
def read_iris(team_hub: LocalHub, server: str) -> str:
    status, body = server_call(team_hub, server, "GET", "datasets/iris")
    assert status == 200, body
    return str(body["snippet"])


async def train_and_predict(
    hub: LocalHub, user: str, read_iris: str, recipe: dict[str, str]
) -> tuple[str, dict[str, list[float]], list[Any]]:
    """Train in a notebook; the run id, the grid's rows and the notebook model's predictions."""
    cells = await run_cells(hub, user, NOTEBOOK, read_iris, READ_AND_TRAIN.format(**recipe), GRID)
    run_id = cells[1].stdout.split("run ")[-1].split()[0]
    lines = dict(line.split(" ", 1) for line in cells[2].stdout.strip().splitlines())
    return run_id, json.loads(lines["grid"]), json.loads(lines["predicted"])


async def promote(hub: LocalHub, user: str, run_id: str) -> dict[str, Any]:
    payload = {"model": MODEL, "run_id": run_id}
    status, body = await asyncio.to_thread(server_call, hub, user, "POST", "promote", payload)
    assert status == 201, body
    assert body["state"] == "promoted", body
    return dict(body)


async def served_version(hub: LocalHub, user: str, version: int) -> dict[str, Any]:
    """Wait until the InferenceService serves ``version`` and is Ready; its state."""

    async def probe() -> dict[str, Any] | None:
        status, body = await asyncio.to_thread(
            server_call, hub, user, "GET", f"models/vision/{MODEL}/serving"
        )
        assert status == 200, body
        state = body["serving"]
        if state.get("ready") and state.get("version") == version:
            return dict(state)
        return None

    return await eventually(
        probe, timeout=READY_SECONDS, interval=1, what=f"version {version} served and Ready"
    )


def infer(url: str, name: str, grid: dict[str, list[float]]) -> list[Any]:
    """A V2 (Open Inference Protocol) request, one input per column."""
    rows = len(next(iter(grid.values())))
    body = {
        "inputs": [
            {"name": column, "shape": [rows], "datatype": "FP64", "data": values}
            for column, values in grid.items()
        ]
    }
    response = requests.post(f"{url}/v2/models/{name}/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    return list(output["data"])


def inference_service(cluster: LocalCluster) -> dict[str, Any]:
    path = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/{MODEL}"
    return dict(cluster.api.request("GET", path))


async def test_promotion_serves_the_notebook_model_and_rollback_repoints_it(
    team_hub: LocalHub, server: str, read_iris: str, cluster: LocalCluster
) -> None:
    first_run, grid, first_predictions = await train_and_predict(team_hub, server, read_iris, GOOD)
    first = await promote(team_hub, server, first_run)
    state = await served_version(team_hub, server, first["version"])
    obj = inference_service(cluster)
    model = obj["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v2"
    assert model["storageUri"] == f"s3://{GOVERNED_BUCKET}/vision/{MODEL}/{first['id']}/model"
    assert (
        obj["metadata"]["annotations"]["mlteams.io/artifact-sha256"] == (first["artifact_sha256"])
    )
    managers = {entry["manager"] for entry in obj["metadata"]["managedFields"]}
    assert "jupyterhub-mlteams" in managers
    assert infer(state["url"], state["name"], grid) == first_predictions

    second_run, same_grid, second_predictions = await train_and_predict(
        team_hub, server, read_iris, BETTER
    )
    assert same_grid == grid
    differ = [
        i
        for i, (a, b) in enumerate(zip(first_predictions, second_predictions, strict=True))
        if a != b
    ]
    assert differ, "the two models agree on every row of the grid"
    second = await promote(team_hub, server, second_run)
    state = await served_version(team_hub, server, second["version"])
    assert infer(state["url"], state["name"], grid) == second_predictions

    status, rolled = server_call(team_hub, server, "POST", f"models/vision/{MODEL}/rollback", {})
    assert status == 200, rolled
    state = await served_version(team_hub, server, first["version"])
    assert inference_service(cluster)["spec"]["predictor"]["model"]["storageUri"].endswith(
        f"/{first['id']}/model"
    )
    assert infer(state["url"], state["name"], grid) == first_predictions


async def test_a_typo_in_the_rendered_object_is_refused_by_the_apiserver(
    team_hub: LocalHub, server: str, cluster: LocalCluster
) -> None:
    status, body = server_call(team_hub, server, "GET", f"models/vision/{MODEL}/serving")
    assert status == 200 and body.get("manifest"), body
    broken = json.loads(json.dumps(body["manifest"]))
    broken["spec"]["predictor"]["model"]["storageUrl"] = broken["spec"]["predictor"]["model"][
        "storageUri"
    ]
    api = await kube_client(str(cluster.kubeconfig))
    try:
        with pytest.raises(ServingError) as info:
            await InferenceServices(api).apply(broken)
    finally:
        await api.close()
    assert info.value.http_status == 422 and "storageUrl" in info.value.message
    spec = inference_service(cluster)["spec"]["predictor"]["model"]
    assert "storageUrl" not in spec


async def test_a_tampered_frozen_artifact_blocks_the_apply_with_an_audit_row(
    team_hub: LocalHub, server: str, team_data: TeamData, cluster: LocalCluster
) -> None:
    status, body = server_call(team_hub, server, "GET", f"models/vision/{MODEL}")
    assert status == 200, body
    champion = body["aliases"]["champion"]
    (row,) = [v for v in body["versions"] if v["version"] == champion]
    before = inference_service(cluster)
    key = f"vision/{MODEL}/{row['promotion_id']}/model/MLmodel"
    store = team_data.store.client()
    original = store.get_object(GOVERNED_BUCKET, key).read()
    team_data.store.upload(GOVERNED_BUCKET, key, original + b"\n# changed\n")
    try:
        path = f"models/vision/{MODEL}/serving"
        status, refused = server_call(team_hub, server, "POST", path)
        assert status == 409, refused
        assert "MLmodel" in refused["message"] and "not served" in refused["message"]
    finally:
        team_data.store.upload(GOVERNED_BUCKET, key, original)
    after = inference_service(cluster)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    token = user_token(team_hub, USER, note="serving test")
    status, audit = as_user(team_hub, token, "GET", f"{SERVICE_API}/audit?model={MODEL}")
    assert status == 200, audit
    blocked = audit["audit"][0]
    assert blocked["action"] == "serving-blocked" and blocked["actor"] == USER
    assert blocked["to_version"] == champion
    # with the files back, the champion is applied again
    status, served = server_call(team_hub, server, "POST", path)
    assert status == 200, served
