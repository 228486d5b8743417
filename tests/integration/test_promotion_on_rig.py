"""Governed promotion end to end on the rig: a notebook in a spawned server trains and logs a
model; ``/mlteams/promote`` reaches the real ``mlteams`` service, which evaluates the model in a
Job in the team's namespace (through the process kubelet), scores it on the held-out set in the
object store, freezes it, registers it in the real MLflow server (with its auth app and the
bundle's plugin) and moves ``champion``. Then: gates that refuse, metrics that lie, direct
MLflow calls from the server that are refused, approvals, expiry, rollback and the audit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devenv.hub import LocalHub
from devenv.mlflow_server import MLflowServer
from tests.integration.remote_kernel import CellResult, RemoteNotebook
from tests.integration.sharing_helpers import SERVICE_API, as_user, user_token
from tests.integration.team_data import GOVERNED_BUCKET, TeamData
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

USER = "v-alice"
NOTEBOOK = "promote/train.ipynb"
READ_AND_TRAIN = """\
import mlflow
from sklearn.{module} import {estimator}

X, y = df.drop(columns="species"), df["species"]
with mlflow.start_run() as run:
    model = {estimator}({args}).fit(X, y)
{extra}
print("run", run.info.run_id)
"""
GOOD = {"module": "tree", "estimator": "DecisionTreeClassifier", "args": "", "extra": ""}
BETTER = {
    "module": "linear_model",
    "estimator": "LogisticRegression",
    "args": "max_iter=500",
    "extra": "",
}
POOR = {"module": "dummy", "estimator": "DummyClassifier", "args": 'strategy="most_frequent"'}
LIAR = {**POOR, "extra": '    mlflow.log_metric("accuracy", 0.99)'}
POOR["extra"] = ""
DIRECT_CALLS = """\
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

name = "governed.vision.iris"
client = MlflowClient()
print("read", client.get_registered_model(name).name == name)
attempts = {
    "alias": lambda: client.set_registered_model_alias(name, "champion", 1),
    "version": lambda: client.create_model_version(name, "s3://anywhere/model", run_id=None),
    "rename": lambda: client.rename_registered_model(name, "mine"),
    "delete": lambda: client.delete_registered_model(name),
    "delete_version": lambda: client.delete_model_version(name, 1),
    "tag": lambda: client.set_registered_model_tag(name, "mlteams.approved", "yes"),
    "version_tag": lambda: client.set_model_version_tag(name, 1, "stage", "prod"),
    "squat": lambda: client.create_registered_model("governed.vision.other"),
}
for what, attempt in attempts.items():
    try:
        attempt()
        print(what, "allowed")
    except MlflowException as exc:
        print(what, "refused", exc.get_http_status_code(), "governed model" in str(exc))
"""


def server_call(hub: LocalHub, user: str, method: str, path: str, body: Any = None) -> Any:
    """``method`` on ``/user/<user>/mlteams/<path>`` through the proxy: ``(status, JSON)``."""
    response = requests.request(
        method,
        f"{hub.url}/user/{user}/mlteams/{path}",
        json=body,
        headers={"Authorization": f"token {hub.api_token}"},
        timeout=600,
    )
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


@pytest.fixture(scope="module")
def vision_server(team_hub: LocalHub) -> Iterator[str]:
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
def read_iris(team_hub: LocalHub, vision_server: str) -> str:
    status, body = server_call(team_hub, vision_server, "GET", "datasets/iris")
    assert status == 200, body
    return str(body["snippet"])


async def run_cells(hub: LocalHub, user: str, path: str, *cells: str) -> list[CellResult]:
    notebook = RemoteNotebook(hub, user, path)
    await notebook.save(*cells)
    await notebook.open_session()
    try:
        results = await notebook.run(timeout=300)
    finally:
        await notebook.close_session()
    assert [c.status for c in results] == ["ok"] * len(cells), [c.error for c in results]
    return results


async def train(hub: LocalHub, user: str, read_iris: str, recipe: dict[str, str]) -> str:
    """Train and log a model in a notebook of ``user``'s server; the run's id."""
    cells = await run_cells(hub, user, NOTEBOOK, read_iris, READ_AND_TRAIN.format(**recipe))
    return cells[-1].stdout.split("run ")[-1].split()[0]


async def promote(hub: LocalHub, user: str, run_id: str, **body: Any) -> tuple[int, Any]:
    payload = {"model": "iris", "run_id": run_id, **body}
    return await asyncio.to_thread(server_call, hub, user, "POST", "promote", payload)


def registry(mlflow_server: MLflowServer, method: str, path: str, **params: Any) -> Any:
    """MLflow's REST API as its admin (the service's user)."""
    response = requests.request(
        method,
        f"{mlflow_server.url}/api/2.0/mlflow/{path}",
        params=params,
        auth=(mlflow_server.admin_username, mlflow_server.admin_password),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def champion(mlflow_server: MLflowServer, name: str) -> int:
    found = registry(mlflow_server, "GET", "registered-models/alias", name=name, alias="champion")
    return int(found["model_version"]["version"])


def champion_or_none(mlflow_server: MLflowServer, name: str) -> int | None:
    """The champion's version, ``None`` while the governed model has none (or does not exist)."""
    response = requests.get(
        f"{mlflow_server.url}/api/2.0/mlflow/registered-models/alias",
        params={"name": name, "alias": "champion"},
        auth=(mlflow_server.admin_username, mlflow_server.admin_password),
        timeout=30,
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return int(response.json()["model_version"]["version"])


def audit(hub: LocalHub, token: str, model: str) -> list[dict[str, Any]]:
    status, body = as_user(hub, token, "GET", f"{SERVICE_API}/audit?model={model}")
    assert status == 200, body
    return list(reversed(body["audit"]))


async def test_a_notebook_model_is_evaluated_frozen_registered_and_becomes_champion(
    team_hub: LocalHub,
    vision_server: str,
    read_iris: str,
    mlflow_server: MLflowServer,
    team_data: TeamData,
) -> None:
    run_id = await train(team_hub, vision_server, read_iris, GOOD)
    status, promoted = await promote(team_hub, vision_server, run_id)
    assert status == 201, promoted
    assert promoted["state"] == "promoted" and promoted["version"] == 1
    gates = {gate["gate"]: gate for gate in promoted["gates"]}
    assert gates["accuracy.min"]["passed"] and gates["accuracy.min"]["value"] == 1.0
    assert gates["evidence.signature"]["passed"]
    name = "governed.vision.iris"
    assert champion(mlflow_server, name) == 1
    version = registry(mlflow_server, "GET", "model-versions/get", name=name, version=1)
    prefix = f"s3://{GOVERNED_BUCKET}/vision/iris/{promoted['id']}"
    assert version["model_version"]["source"] == f"{prefix}/model"
    tags = {t["key"]: t["value"] for t in version["model_version"]["tags"]}
    assert tags["mlteams.artifact_sha256"] == promoted["artifact_sha256"]
    assert tags["mlteams.promotion_id"] == promoted["id"]
    store = team_data.store.client()
    key = f"vision/iris/{promoted['id']}/MODEL_CARD.md"
    card = store.get_object(GOVERNED_BUCKET, key).read().decode()
    card_path = f"promotions/{promoted['id']}/card"
    status, served_card = server_call(team_hub, vision_server, "GET", card_path)
    assert status == 200 and served_card == card
    assert card.startswith("---\n") and name in card and USER in card
    status, model = server_call(team_hub, vision_server, "GET", "models/vision/iris")
    assert status == 200, model
    assert model["aliases"]["champion"] == 1
    assert [entry["action"] for entry in reversed(model["audit"])] == [
        "requested",
        "gates-passed",
        "promoted",
    ]
    (row,) = [entry for entry in model["audit"] if entry["action"] == "promoted"]
    assert row["actor"] == USER and row["to_version"] == 1
    assert row["card_sha256"] == promoted["card_sha256"]
    # the evaluation Job is gone, with its temporary objects
    work = f"vision/iris/{promoted['id']}/evaluation/"
    assert not list(store.list_objects(GOVERNED_BUCKET, prefix=work, recursive=True))


async def test_worse_models_and_lying_metrics_are_refused_by_name(
    team_hub: LocalHub, vision_server: str, read_iris: str, mlflow_server: MLflowServer
) -> None:
    poor = await train(team_hub, vision_server, read_iris, POOR)
    status, refused = await promote(team_hub, vision_server, poor)
    assert status == 422, refused
    failed = {g["gate"]: g for g in refused["gates"] if not g["passed"]}
    assert set(failed) >= {"accuracy.min"}
    assert failed["accuracy.min"]["threshold"] == 0.9
    assert failed["accuracy.min"]["value"] < 0.5
    assert "accuracy" in failed["accuracy.min"]["message"]

    liar = await train(team_hub, vision_server, read_iris, LIAR)
    status, refused = await promote(team_hub, vision_server, liar)
    assert status == 422, refused
    gate = next(g for g in refused["gates"] if g["gate"] == "accuracy.min")
    assert gate["advisory"] == 0.99 and gate["value"] < 0.5 and not gate["passed"]
    versions = registry(
        mlflow_server, "GET", "model-versions/search", filter="name='governed.vision.iris'"
    )
    assert len(versions.get("model_versions", [])) == 1


async def test_direct_mlflow_calls_from_the_server_cannot_touch_the_governed_model(
    team_hub: LocalHub, vision_server: str, mlflow_server: MLflowServer
) -> None:
    [cell] = await run_cells(team_hub, vision_server, "promote/direct.ipynb", DIRECT_CALLS)
    lines = dict(line.split(" ", 1) for line in cell.stdout.strip().splitlines())
    assert lines.pop("read") == "True"
    assert lines == {what: "refused 403 True" for what in lines}, cell.stdout
    assert len(lines) == 8
    assert champion(mlflow_server, "governed.vision.iris") == 1


async def test_rollback_restores_the_previous_version_with_an_audit_row(
    team_hub: LocalHub, vision_server: str, read_iris: str, mlflow_server: MLflowServer
) -> None:
    run_id = await train(team_hub, vision_server, read_iris, BETTER)
    status, promoted = await promote(team_hub, vision_server, run_id)
    assert status == 201, promoted
    assert champion(mlflow_server, "governed.vision.iris") == promoted["version"] == 2
    rollback = "models/vision/iris/rollback"
    status, rolled = server_call(team_hub, vision_server, "POST", rollback, {})
    assert status == 200, rolled
    assert rolled["aliases"] == {"champion": 1, "previous": 2}
    assert champion(mlflow_server, "governed.vision.iris") == 1
    token = user_token(team_hub, USER, note="promotion test")
    entries = audit(team_hub, token, "iris")
    assert entries[-1]["action"] == "rolled-back" and entries[-1]["actor"] == USER
    assert (entries[-1]["from_version"], entries[-1]["to_version"]) == (2, 1)


def log_model_as(
    mlflow_server: MLflowServer, token: str, team: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Train and log a good model in this process with a user's hub token, as their kernel
    would; the run's id."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from tests.integration.team_data import IRIS_CSV

    rows = [line.split(",") for line in IRIS_CSV.splitlines()[1:]]
    features = [[float(v) for v in row[:4]] for row in rows]
    labels = [row[4] for row in rows]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    import pandas as pd

    frame = pd.DataFrame(features, columns=IRIS_CSV.splitlines()[0].split(",")[:4])
    client = mlflow.MlflowClient(mlflow_server.url)
    name = f"teams/{team}/promotion-test"
    found = client.get_experiment_by_name(name)
    experiment_id = found.experiment_id if found else client.create_experiment(name)
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            model = LogisticRegression(max_iter=500).fit(frame, labels)
            signature = mlflow.models.infer_signature(frame, model.predict(frame))
            mlflow.sklearn.log_model(model, name="model", signature=signature)
    finally:
        mlflow.set_tracking_uri(None)
    return str(run.info.run_id)


@pytest.fixture
def nlp_people(team_hub: LocalHub) -> dict[str, str]:
    return {user: user_token(team_hub, user, note="promotion") for user in ("n-bob", "n-lead")}


async def test_high_stakes_waits_for_a_lead_and_the_requester_cannot_approve(
    team_hub: LocalHub,
    mlflow_server: MLflowServer,
    nlp_people: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bob, lead = nlp_people["n-bob"], nlp_people["n-lead"]
    run_id = log_model_as(mlflow_server, bob, "nlp", monkeypatch)
    human = {"intended_use": "triage", "out_of_scope_use": "credit", "limitations": "tiny set"}
    body = {"model": "iris", "run_id": run_id, "team": "nlp", **human}
    status, waiting = as_user(team_hub, bob, "POST", f"{SERVICE_API}/promotions?wait=300", body)
    assert status == 202 and waiting["state"] == "pending_approval", waiting
    decide = f"{SERVICE_API}/promotions/{waiting['id']}/approve"
    status, refused = as_user(team_hub, bob, "POST", decide, {"comment": "mine"})
    assert status == 403 and "another lead" in refused["message"], refused
    status, approved = as_user(team_hub, lead, "POST", decide, {"comment": "card reviewed"})
    assert status == 200 and approved["state"] == "promoted", approved
    assert approved["approver"] == "n-lead"
    assert champion(mlflow_server, "governed.nlp.iris") == 1
    entries = audit(team_hub, lead, "iris")
    actions = [(e["action"], e["actor"]) for e in entries if e["team"] == "nlp"]
    assert actions == [
        ("requested", "n-bob"),
        ("awaiting-approval", "mlteams-service"),
        ("approved", "n-lead"),
        ("promoted", "n-lead"),
    ]


async def test_an_expired_request_cannot_be_approved(
    team_hub: LocalHub, mlflow_server: MLflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for group, users in (("audio-engineers", ["a-cat"]), ("audio-leads", ["a-lead"])):
        for user in users:
            status, body = team_hub.call("POST", f"/users/{user}")
            assert status in (201, 409), body
        status, body = team_hub.call("POST", f"/groups/{group}")
        assert status in (201, 409), body
        status, body = team_hub.call("POST", f"/groups/{group}/users", {"users": users})
        assert status in (200, 201), body
    cat, lead = (user_token(team_hub, user, note="promotion") for user in ("a-cat", "a-lead"))
    run_id = log_model_as(mlflow_server, cat, "audio", monkeypatch)
    human = {"intended_use": "demo", "out_of_scope_use": "all", "limitations": "all"}
    body = {"model": "iris", "run_id": run_id, "team": "audio", **human}
    status, waiting = as_user(team_hub, cat, "POST", f"{SERVICE_API}/promotions?wait=300", body)
    assert status == 202 and waiting["state"] == "pending_approval", waiting
    from datetime import datetime, timezone

    expires = datetime.fromisoformat(waiting["expires_at"])
    await eventually(lambda: _past(expires), timeout=120, interval=0.5, what="the request's expiry")
    decide = f"{SERVICE_API}/promotions/{waiting['id']}/approve"
    status, refused = as_user(team_hub, lead, "POST", decide, {"comment": "too late"})
    assert status == 409 and "expired" in refused["message"], refused
    status, row = as_user(team_hub, cat, "GET", f"{SERVICE_API}/promotions/{waiting['id']}")
    assert row["state"] == "expired"
    assert datetime.now(timezone.utc) > expires


async def _past(moment: Any) -> bool:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc) > moment


async def test_the_object_store_stopped_mid_promotion_leaves_nothing_and_a_retry_works(
    team_hub: LocalHub,
    vision_server: str,
    read_iris: str,
    mlflow_server: MLflowServer,
    team_data: TeamData,
) -> None:
    run_id = await train(team_hub, vision_server, read_iris, GOOD)
    before = champion_or_none(mlflow_server, "governed.vision.iris")
    team_data.store.stop()
    try:
        status, failed = await promote(team_hub, vision_server, run_id)
    finally:
        team_data.store.start()
    assert status == 503, failed
    assert "object store" in failed["message"]
    assert champion_or_none(mlflow_server, "governed.vision.iris") == before
    status, retried = await promote(team_hub, vision_server, run_id)
    assert status == 201 and retried["state"] == "promoted", retried


async def test_mlflow_stopped_is_a_clear_503_and_nothing_is_recorded(
    team_hub: LocalHub, vision_server: str, mlflow_server: MLflowServer
) -> None:
    token = user_token(team_hub, USER, note="promotion test")
    before = len(audit(team_hub, token, "iris"))
    mlflow_server.stop()
    try:
        status, failed = await promote(team_hub, vision_server, "e" * 32)
    finally:
        mlflow_server.start()
    assert status == 503, failed
    assert "MLflow" in failed["message"] and "nothing was changed" in failed["message"]
    assert len(audit(team_hub, token, "iris")) == before
