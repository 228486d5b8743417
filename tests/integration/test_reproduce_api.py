"""``GET /mlteams/runs/<run_id>/reproduce`` and run links through a real Jupyter server against
the real MLflow server: a run made in a notebook kernel, a run recorded without its
environment, an unknown run; links under the tracking server's public URL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient
from tornado.httpclient import HTTPClientError

from devenv.mlflow_server import MLflowServer
from server_ext.contract import experiment_name
from tests.integration.test_tracking_kernel import (
    TRAIN,
    git_repo,
    run_notebook,
    stderr_of,
    team_env,
    write_notebook,
)
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch

__all__ = ["fetch"]

# the rig's MLflow takes hub tokens or its admin's password: this module's clients are the admin
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("mlflow_admin"),
]

globals().update(SERVER_FIXTURES)

PUBLIC_URL = "https://mlflow.example.org/"
USER = "v-rita"


@pytest.fixture
def jp_server_config(mlflow_server: MLflowServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLTEAMS_TRACKING_PUBLIC_URL", PUBLIC_URL)
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {"tracking_uri": mlflow_server.url, "team": "vision", "user": USER},
    }


def reproduce(fetch: Any, run_id: str) -> dict[str, Any]:
    return dict(json.loads(fetch("mlteams", "runs", run_id, "reproduce").body))


def test_a_notebook_run_carries_its_environment_and_reproduce_returns_it(
    fetch: Any, mlflow_server: MLflowServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    commit = git_repo(home / "proj")
    notebook = home / "proj" / "train.ipynb"
    write_notebook(notebook, TRAIN)
    nb = run_notebook(notebook, team_env(mlflow_server.url, USER, home, notebook))
    assert "mlteams warning" not in stderr_of(nb)
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(experiment_name("vision", USER, "proj/train.ipynb"))
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    run_id = run.info.run_id

    view = reproduce(fetch, run_id)
    assert view["run_id"] == run_id
    assert view["link"] == (
        f"https://mlflow.example.org/#/experiments/{experiment.experiment_id}/runs/{run_id}"
    )
    assert view["image"] == {"reference": "mlteams/pytorch:dev", "digest": None, "pinned": None}
    assert [m["part"] for m in view["missing"]] == ["image_digest"]
    assert view["git"]["commit"] == commit and view["git"]["notebook_path"] == "train.ipynb"
    assert view["notebook_path"] == str(notebook)
    assert (view["team"], view["user"]) == ("vision", USER)
    assert view["params"]["max_iter"] == "300"
    assert view["python"]["version"].count(".") == 2
    requirements = view["packages"]["requirements"]
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert view["packages"]["count"] == len(requirements)
    commands = "\n".join(s["command"] for s in view["instructions"])
    assert f"git checkout {commit}" in commands and "pip install -r requirements.txt" in commands

    listing = json.loads(fetch("mlteams", "runs", params={"path": "proj/train.ipynb"}).body)
    assert [r["link"] for r in listing["runs"]] == [view["link"]]


def test_a_run_without_environment_gets_what_is_known_and_the_missing_list(
    fetch: Any, mlflow_server: MLflowServer
) -> None:
    client = MlflowClient(mlflow_server.url)
    experiment_id = client.create_experiment(f"teams/vision/{USER}/old-{uuid.uuid4().hex[:8]}")
    run = client.create_run(
        experiment_id,
        tags={"mlteams.image": "mlteams/pytorch:dev", "mlteams.team": "vision"},
    )
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_inputs(
        run.info.run_id,
        datasets=[
            DatasetInput(
                Dataset("iris", "d1g35t", "s3", json.dumps({"uri": "s3://team-vision/iris"})),
                tags=[InputTag("mlflow.data.context", "training")],
            )
        ],
    )
    client.set_terminated(run.info.run_id)

    view = reproduce(fetch, run.info.run_id)
    assert [m["part"] for m in view["missing"]] == [
        "image_digest",
        "environment",
        "packages",
        "git",
        "notebook_path",
    ]
    assert view["packages"] is None and view["python"] is None
    assert view["params"] == {"lr": "0.1"}
    assert view["datasets"][0]["source_uri"] == "s3://team-vision/iris"
    assert view["datasets"][0]["context"] == "training"
    assert view["image"]["reference"] == "mlteams/pytorch:dev"


def test_an_unknown_run_is_a_404_with_a_message(fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", uuid.uuid4().hex, "reproduce")
    assert info.value.code == 404
    assert "no MLflow run" in json.loads(info.value.response.body)["message"]
