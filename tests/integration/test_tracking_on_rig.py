"""Tracking and datasets end to end on the rig: a server spawned by the team hub, a notebook run
in its kernel, the real MLflow server and the real object store.

The notebook reads the team's dataset with the snippet the extension hands out and trains a
scikit-learn model; nothing in it mentions MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes_asyncio import client
from mlflow.tracking import MlflowClient
from tornado.httpclient import HTTPClientError

from devenv.hub import LocalHub
from devenv.mlflow_server import MLflowServer
from server_ext.contract import experiment_name
from tests.integration.remote_kernel import CellResult, RemoteNotebook
from tests.integration.team_data import REVIEWS_CSV, SHARED_README, TeamData
from tests.integration.team_hub_helpers import call, wait_server_sync

# the rig's MLflow takes hub tokens or its admin's password: this module's clients are the admin
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("mlflow_admin"),
]

USER = "v-dora"
NOTEBOOK = "proj/train.ipynb"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3-FAKE"  # the fake GPU nodes' nvidia.com/gpu.product label
# run once in a notebook of its own: the project folder becomes a git repository
GIT_INIT = """\
import subprocess

run = dict(cwd="proj", check=True, capture_output=True, text=True)
subprocess.run(["git", "init", "-q"], **run)
subprocess.run(["git", "add", "-A"], **run)
subprocess.run(
    ["git", "-c", "user.name=Dora", "-c", "user.email=dora@example.com", "commit", "-qm", "start"],
    **run,
)
print("commit", subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip())
"""
TRAIN = """\
from sklearn.linear_model import LogisticRegression

X, y = df.drop(columns="species"), df["species"]
model = LogisticRegression(max_iter=200).fit(X, y)
print("score", round(model.score(X, y), 3))
"""
FOREIGN_READ = """\
import os
import pandas as pd

try:
    pd.read_csv(
        "s3://team-nlp/reviews/reviews.csv",
        storage_options={{
            "key": os.environ[{key!r}],
            "secret": os.environ[{secret!r}],
            "client_kwargs": {{"endpoint_url": {endpoint!r}}},
        }},
    )
    print("foreign read: allowed")
except PermissionError as exc:
    print("foreign read: refused", type(exc).__name__)
"""
SHARED = """\
from pathlib import Path

shared = Path.home() / "datasets" / "vision-shared"
print("shared:", (shared / "README.txt").read_text().strip())
try:
    (shared / "new.txt").write_text("x")
    print("shared write: allowed")
except OSError as exc:
    print("shared write: refused", exc.errno)
"""


@pytest.fixture(scope="module")
def vision_server(team_hub: LocalHub) -> Iterator[str]:
    """A one-GPU server of team vision, shared by this module's tests."""
    status, body = team_hub.call(
        "POST", f"/users/{USER}/server", {"team": "vision", "profile": "gpu1"}
    )
    assert status in (201, 202), body
    try:
        wait_server_sync(team_hub, USER, ready=True)
        yield USER
    finally:
        team_hub.call("DELETE", f"/users/{USER}/server")
        wait_server_sync(team_hub, USER, ready=False)


async def run_notebook(notebook: RemoteNotebook, *cells: str) -> list[CellResult]:
    """Save ``cells`` (when given) and run the notebook in a new kernel, closed afterwards."""
    if cells:
        await notebook.save(*cells)
    await notebook.open_session()
    try:
        return await notebook.run()
    finally:
        await notebook.close_session()


async def server_api(hub: LocalHub, user: str, path: str) -> tuple[int, str]:
    notebook = RemoteNotebook(hub, user, "")
    try:
        return 200, json.dumps(await notebook.request("GET", path))
    except HTTPClientError as exc:
        body = exc.response.body.decode() if exc.response else ""
        return exc.code, body


async def test_notebook_in_a_spawned_server_is_tracked_with_its_dataset_input(
    team_hub: LocalHub,
    vision_server: str,
    mlflow_server: MLflowServer,
    team_data: TeamData,
) -> None:
    status, listing = await server_api(team_hub, vision_server, "/mlteams/datasets")
    assert status == 200, listing
    names = {d["name"]: d for d in json.loads(listing)["datasets"]}
    assert set(names) == {"iris", "vision-shared"}
    assert names["vision-shared"]["mount_status"] == "mounted"
    status, iris = await server_api(team_hub, vision_server, "/mlteams/datasets/iris")
    assert status == 200, iris
    read_iris = json.loads(iris)["snippet"]

    notebook = RemoteNotebook(team_hub, vision_server, NOTEBOOK)
    await notebook.save(read_iris, TRAIN, SHARED)
    text = json.dumps(await notebook.request("GET", f"/api/contents/{NOTEBOOK}"))
    assert "mlflow" not in text.lower()
    [git] = await run_notebook(RemoteNotebook(team_hub, vision_server, "git-init.ipynb"), GIT_INIT)
    commit = git.stdout.split()[-1]
    cells = await run_notebook(notebook)
    assert [c.status for c in cells] == ["ok", "ok", "ok"], [c.error for c in cells]
    assert "score" in cells[1].stdout
    assert "mlteams warning" not in "".join(c.stderr for c in cells)
    assert f"shared: {SHARED_README.strip()}" in cells[2].stdout
    assert "shared write: refused" in cells[2].stdout

    mlflow = MlflowClient(mlflow_server.url)
    experiment = mlflow.get_experiment_by_name(experiment_name("vision", USER, NOTEBOOK))
    assert experiment is not None
    [run] = mlflow.search_runs([experiment.experiment_id])
    tags = run.data.tags
    assert tags["mlteams.team"] == "vision"
    assert tags["mlteams.user"] == USER
    assert tags["mlteams.profile"] == "gpu1"
    assert tags["mlteams.image"] == "mlteams/pytorch:dev"
    assert tags["mlteams.gpu_type"] == GPU_PRODUCT
    assert tags["mlteams.notebook_path"] == f"/home/jovyan/{NOTEBOOK}"
    assert tags["mlflow.source.git.commit"] == commit
    # autologging adds the training arrays as an input of its own; the catalog dataset is one more
    [dataset_input] = [i for i in run.inputs.dataset_inputs if i.dataset.name == "iris"]
    assert "s3://team-vision/iris/iris.csv" in dataset_input.dataset.source
    etag = team_data.store.client().stat_object("team-vision", "iris/iris.csv").etag
    assert dataset_input.dataset.digest == etag.strip('"')

    status, runs = await server_api(
        team_hub, vision_server, f"/mlteams/runs?path={NOTEBOOK}&page_size=1"
    )
    assert status == 200, runs
    [listed] = json.loads(runs)["runs"]
    assert listed["run_id"] == run.info.run_id
    link = f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
    assert listed["link"] == link

    # the run carries the environment that produced it, and the server hands out its recipe
    assert tags["mlteams.environment"] == "environment"
    assert tags["mlteams.git_commit"] == commit
    status, body = await server_api(
        team_hub, vision_server, f"/mlteams/runs/{run.info.run_id}/reproduce"
    )
    assert status == 200, body
    recipe = json.loads(body)
    assert recipe["link"] == link
    assert recipe["image"]["reference"] == "mlteams/pytorch:dev"
    assert recipe["git"]["commit"] == commit and recipe["git"]["notebook_path"] == "train.ipynb"
    assert recipe["notebook_path"] == f"/home/jovyan/{NOTEBOOK}"
    assert any(p.startswith("scikit-learn==") for p in recipe["packages"]["requirements"])
    assert recipe["params"]["max_iter"] == "200"
    [iris] = [d for d in recipe["datasets"] if d["name"] == "iris"]
    assert iris["source_uri"] == "s3://team-vision/iris/iris.csv"
    assert [m["part"] for m in recipe["missing"]] == ["image_digest"]


async def test_team_a_cannot_list_read_or_mount_team_bs_data(
    team_hub: LocalHub, vision_server: str, team_data: TeamData, kube: client.ApiClient
) -> None:
    status, body = await server_api(team_hub, vision_server, "/mlteams/datasets/reviews")
    assert status == 404, body
    assert "no dataset 'reviews'" in body

    status, body = await call(
        team_hub,
        "POST",
        "/users/v-alice/server",
        {"team": "vision", "profile": "cpu", "datasets": ["reviews"]},
    )
    assert status == 400 and "datasets" in json.dumps(body), body
    status, body = await call(
        team_hub, "POST", "/users/v-alice/server", {"team": "nlp", "profile": "cpu"}
    )
    assert status == 403, body

    [pod] = (
        await client.CoreV1Api(kube).list_namespaced_pod(
            "it-vision", label_selector=f"hub.jupyter.org/username={USER}"
        )
    ).items
    spec = json.dumps(client.ApiClient().sanitize_for_serialization(pod))
    assert "nlp-datasets" not in spec and "team-nlp" not in spec

    env = {e.name: e.value_from for e in pod.spec.containers[0].env if e.value_from}
    key_env = next(n for n in env if n.endswith("_KEY_ID"))
    notebook = RemoteNotebook(team_hub, vision_server, "proj/foreign.ipynb")
    foreign_read = FOREIGN_READ.format(
        key=key_env,
        secret=key_env.replace("_KEY_ID", "_SECRET_KEY"),
        endpoint=team_data.store.endpoint_url,
    )
    [cell] = await run_notebook(notebook, foreign_read)
    assert cell.status == "ok", cell.error
    assert "foreign read: refused" in cell.stdout
    assert REVIEWS_CSV.splitlines()[1] not in cell.stdout


async def test_no_secret_value_in_pod_specs_api_responses_or_logs(
    team_hub: LocalHub,
    vision_server: str,
    team_data: TeamData,
    kube: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    secrets = team_data.secret_values()
    assert all(len(s) >= 20 for s in secrets)
    pods = await client.CoreV1Api(kube).list_namespaced_pod("it-vision")
    texts = {"pod specs": json.dumps(client.ApiClient().sanitize_for_serialization(pods))}
    assert "secretKeyRef" in texts["pod specs"] and "vision-datasets" in texts["pod specs"]
    for path in ("/mlteams/datasets", "/mlteams/datasets/iris", "/mlteams/team", "/mlteams/status"):
        texts[path] = (await server_api(team_hub, vision_server, path))[1]
    texts["hub user model"] = json.dumps(await call(team_hub, "GET", f"/users/{USER}"))
    # the control plane's, the kubelet's, every container's, the hubs', MLflow's and the store's
    logs = sorted(tmp_path_factory.getbasetemp().rglob("*.log"))
    assert any("jupyterhub" in p.name for p in logs) and any("minio" in p.name for p in logs)
    for log in logs:
        texts[str(log)] = log.read_text(errors="replace")
    leaks = [where for where, text in texts.items() if any(s in text for s in secrets)]
    assert leaks == []
