"""The REST API's MLflow queries against the real tracking server: pages of runs, bad tokens."""

from __future__ import annotations

import uuid

import pytest
from mlflow.tracking import MlflowClient

from devenv.mlflow_server import MLflowServer
from server_ext.server.api import BadRequest, Page
from server_ext.server.tracking_queries import ensure_experiment, find_experiment, list_runs

# the rig's MLflow takes hub tokens or its admin's password: this module's clients are the admin
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("mlflow_admin"),
]


def test_runs_come_newest_first_in_pages_that_cover_each_run_once(
    mlflow_server: MLflowServer,
) -> None:
    name = f"teams/vision/v-pages/{uuid.uuid4().hex[:8]}.ipynb"
    experiment = ensure_experiment(mlflow_server.url, name, {"mlteams.team": "vision"})
    assert ensure_experiment(mlflow_server.url, name, {}) == experiment
    client = MlflowClient(mlflow_server.url)
    created = []
    for i in range(5):
        run = client.create_run(experiment["experiment_id"], start_time=1_000_000 + i)
        client.set_terminated(run.info.run_id)
        created.append(run.info.run_id)

    seen, token, pages = [], None, 0
    while True:
        page = list_runs(mlflow_server.url, experiment["experiment_id"], Page(2, token))
        pages += 1
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == created[::-1]
    assert pages == 3


def test_a_forged_page_token_is_a_bad_request_and_an_unknown_experiment_is_none(
    mlflow_server: MLflowServer,
) -> None:
    name = f"teams/vision/v-pages/{uuid.uuid4().hex[:8]}.ipynb"
    assert find_experiment(mlflow_server.url, name) is None
    experiment = ensure_experiment(mlflow_server.url, name, {})
    with pytest.raises(BadRequest, match="page_token"):
        list_runs(mlflow_server.url, experiment["experiment_id"], Page(2, "not-a-token"))
