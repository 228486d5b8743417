"""Team runs are readable by teammates with their own MLflow credentials.

A real MLflow server with its authentication app (``--app-name basic-auth``) and MLflow's default
``default_permission = READ``: alice's kernel-style client creates the team experiment and a
run; bob, with his own login, reads the run and its environment artifacts through the server
extension's reproduce endpoint (whose MLflow calls carry the server's credentials, as in a pod)
but cannot change it; a wrong password is refused.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from tornado.httpclient import HTTPClientError

from devenv.mlflow_server import MLflowServer
from devenv.procs import ProcessGroup
from server_ext import contract as env
from server_ext.kernel.environment_capture import EnvironmentRecorder
from tests.conftest import RIG_ID
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch

__all__ = ["fetch"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

globals().update(SERVER_FIXTURES)

ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex
USERS = {"alice": "alice-" + uuid.uuid4().hex, "bob": "bob-" + uuid.uuid4().hex}


class AuthMLflowServer(MLflowServer):
    """The tracking server with MLflow's own basic authentication app (configured below)."""


@pytest.fixture(scope="module")
def auth_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMLflowServer]:
    state = tmp_path_factory.mktemp("mlflow-auth")
    config = state / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{state / 'auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    procs = ProcessGroup(RIG_ID, state / "logs")
    server = AuthMLflowServer(state, procs, app_name="basic-auth")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
            patch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", uuid.uuid4().hex)
            server.start()
        for user, password in USERS.items():
            created = requests.post(
                f"{server.url}/api/2.0/mlflow/users/create",
                json={"username": user, "password": password},
                auth=("admin", ADMIN_PASSWORD),
                timeout=30,
            )
            assert created.status_code == 200, created.text
        yield server
    finally:
        procs.stop_all()


def client_of(server: MLflowServer, user: str, password: str, patch: Any) -> MlflowClient:
    patch.setenv(env.TRACKING_USERNAME, user)
    patch.setenv(env.TRACKING_PASSWORD, password)
    return MlflowClient(server.url)


@pytest.fixture(scope="module")
def alices_run(auth_mlflow: AuthMLflowServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run in alice's team experiment, with its environment recorded as her kernel does."""
    with pytest.MonkeyPatch.context() as patch:
        alice = client_of(auth_mlflow, "alice", USERS["alice"], patch)
        name = f"teams/vision/alice/{uuid.uuid4().hex[:8]}/train.ipynb"
        experiment_id = alice.create_experiment(name, tags={"mlteams.team": "vision"})
        run = alice.create_run(experiment_id, tags={"mlteams.team": "vision"})
        alice.log_param(run.info.run_id, "C", "0.5")
        home = tmp_path_factory.mktemp("alice-home")
        recorder = EnvironmentRecorder(
            environ={
                env.TEAM: "vision",
                env.USER: "alice",
                env.IMAGE: "mlteams/pytorch:dev",
                env.SESSION_NAME: str(home / "train.ipynb"),
            },
            home=str(home),
            warn=pytest.fail,
        )
        recorder.record(alice, run.info.run_id)
        alice.set_terminated(run.info.run_id)
        return str(run.info.run_id)


def test_a_teammate_reads_the_run_with_their_own_credentials_but_cannot_change_it(
    auth_mlflow: AuthMLflowServer, alices_run: str
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        bob = client_of(auth_mlflow, "bob", USERS["bob"], patch)
        run = bob.get_run(alices_run)
        assert run.data.params == {"C": "0.5"}
        assert run.data.tags["mlteams.image"] == "mlteams/pytorch:dev"
        folder = Path(bob.download_artifacts(alices_run, env.ENVIRONMENT_DIR))
        assert "mlflow==" in (folder / "requirements.txt").read_text()
        with pytest.raises(MlflowException) as refused:
            bob.log_param(alices_run, "C", "9")
        assert refused.value.error_code == "PERMISSION_DENIED"
        patch.setenv(env.TRACKING_PASSWORD, "wrong")
        with pytest.raises(MlflowException):
            MlflowClient(auth_mlflow.url).get_run(alices_run)


@pytest.fixture
def jp_server_config(
    auth_mlflow: AuthMLflowServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Bob's server: its MLflow credentials in the environment, as the spawner puts them."""
    monkeypatch.setenv(env.TRACKING_USERNAME, "bob")
    monkeypatch.setenv(env.TRACKING_PASSWORD, USERS["bob"])
    monkeypatch.delenv(env.TRACKING_PUBLIC_URL, raising=False)
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {"tracking_uri": auth_mlflow.url, "team": "vision", "user": "bob"},
    }


def test_a_teammates_server_hands_out_the_recipe_and_link(
    fetch: Any, auth_mlflow: AuthMLflowServer, alices_run: str
) -> None:
    view = json.loads(fetch("mlteams", "runs", alices_run, "reproduce").body)
    assert view["user"] == "alice" and view["params"] == {"C": "0.5"}
    assert any(p.startswith("mlflow==") for p in view["packages"]["requirements"])
    assert view["link"].startswith(f"{auth_mlflow.url}/#/experiments/")
    assert view["link"].endswith(f"/runs/{alices_run}")
    assert os.environ[env.TRACKING_USERNAME] == "bob"


def test_a_server_whose_credentials_mlflow_refuses_gets_a_403(
    fetch: Any, alices_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env.TRACKING_PASSWORD, "wrong")
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", alices_run, "reproduce")
    assert info.value.code == 403
    assert "did not accept" in json.loads(info.value.response.body)["message"]


@pytest.fixture(scope="module")
def private_run(auth_mlflow: AuthMLflowServer) -> str:
    """A run in an experiment an MLflow admin closed to bob (another team's, say)."""
    with pytest.MonkeyPatch.context() as patch:
        alice = client_of(auth_mlflow, "alice", USERS["alice"], patch)
        experiment_id = alice.create_experiment(f"teams/nlp/alice/{uuid.uuid4().hex[:8]}")
        run = alice.create_run(experiment_id)
    granted = requests.post(
        f"{auth_mlflow.url}/api/3.0/mlflow/users/permissions/grant",
        json={
            "username": "bob",
            "resource_type": "experiment",
            "resource_id": experiment_id,
            "permission": "DENY",
        },
        auth=("admin", ADMIN_PASSWORD),
        timeout=30,
    )
    assert granted.status_code == 200, granted.text
    return str(run.info.run_id)


def test_a_run_mlflow_does_not_let_the_user_read_is_a_403(fetch: Any, private_run: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", private_run, "reproduce")
    assert info.value.code == 403
    assert "may not read" in json.loads(info.value.response.body)["message"]
