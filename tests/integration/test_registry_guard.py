"""Governed registered models on the rig's MLflow: only the promotion service changes them.

The rig's MLflow server runs the mlteams plugin; identities go through the team hub (real
JupyterHub): each user calls MLflow's REST API with a token the hub issued them, as their
notebook server does with ``MLFLOW_TRACKING_TOKEN``. The service (the MLflow admin, basic auth)
creates a governed model with a version and the ``champion`` alias; a user reads it but every
change is refused with the guard's message, while their own development model stays theirs
(another team's user may only read it: MLflow's ``default_permission = READ``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from devenv.hub import LocalHub
from devenv.mlflow_server import MLflowServer
from devenv.procs import ProcessGroup, free_port
from mlflow_ext.guard import governed_message
from tests.conftest import RIG_ID
from tests.integration.sharing_helpers import as_user, user_token

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ALICE = "v-alice"  # team vision
BOB = "n-bob"  # team nlp
SOURCE = "s3://mlteams-governed/vision/{model}/p-1/model"


@dataclass
class Caller:
    """Someone calling MLflow's REST API: a hub token (Bearer) or the admin's password."""

    server: MLflowServer
    token: str | None = None

    def call(self, method: str, endpoint: str, body: Any = None) -> requests.Response:
        url = f"{self.server.url}/api/2.0/mlflow/{endpoint}"
        if self.token is None:
            auth = (self.server.admin_username, self.server.admin_password)
            return requests.request(method, url, auth=auth, **_payload(method, body), timeout=30)
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, url, headers=headers, **_payload(method, body), timeout=30)

    def ok(self, method: str, endpoint: str, body: Any = None) -> dict[str, Any]:
        response = self.call(method, endpoint, body)
        assert response.status_code == 200, (endpoint, response.status_code, response.text)
        return dict(response.json())


def _payload(method: str, body: Any) -> dict[str, Any]:
    return {"params": body} if method == "GET" else {"json": body}


def hub_token(hub: LocalHub, user: str) -> tuple[str, str]:
    """A new token of ``user``, asked of the hub's API as the signed-in user: ``(token, its
    id)``."""
    token = user_token(hub, user, note="registry guard test")
    status, me = as_user(hub, token, "GET", "/hub/api/user")
    assert status == 200 and me["name"] == user, me
    return token, str(me["token_id"])


@pytest.fixture(scope="module")
def service(mlflow_server: MLflowServer) -> Caller:
    return Caller(mlflow_server)


@pytest.fixture(scope="module")
def alice(team_hub: LocalHub, mlflow_server: MLflowServer) -> Caller:
    return Caller(mlflow_server, hub_token(team_hub, ALICE)[0])


@pytest.fixture(scope="module")
def bob(team_hub: LocalHub, mlflow_server: MLflowServer) -> Caller:
    return Caller(mlflow_server, hub_token(team_hub, BOB)[0])


@pytest.fixture(scope="module")
def governed(service: Caller) -> Iterator[str]:
    """``governed.vision.<model>`` with tag ``mlteams.governed=true``, version 1 as champion."""
    model = f"iris-{uuid.uuid4().hex[:6]}"
    name = f"governed.vision.{model}"
    tags = [
        {"key": "mlteams.governed", "value": "true"},
        {"key": "mlteams.team", "value": "vision"},
        {"key": "mlteams.model", "value": model},
    ]
    service.ok("POST", "registered-models/create", {"name": name, "tags": tags})
    service.ok(
        "POST",
        "model-versions/create",
        {
            "name": name,
            "source": SOURCE.format(model=model),
            "tags": [{"key": "mlteams.promotion_id", "value": "p-1"}],
        },
    )
    service.ok(
        "POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"}
    )
    yield name
    service.call("DELETE", "registered-models/delete", {"name": name})


def changes(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every direct REST change a user might try on the governed model ``name``."""
    return [
        ("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"}),
        ("DELETE", "registered-models/alias", {"name": name, "alias": "champion"}),
        ("POST", "model-versions/create", {"name": name, "source": "s3://elsewhere/model"}),
        ("POST", "registered-models/rename", {"name": name, "new_name": "mine-now"}),
        ("PATCH", "registered-models/update", {"name": name, "description": "changed"}),
        ("DELETE", "registered-models/delete", {"name": name}),
        ("DELETE", "model-versions/delete", {"name": name, "version": "1"}),
        ("POST", "registered-models/set-tag", {"name": name, "key": "mlteams.x", "value": "1"}),
        ("POST", "registered-models/set-tag", {"name": name, "key": "note", "value": "1"}),
        ("DELETE", "registered-models/delete-tag", {"name": name, "key": "mlteams.governed"}),
        (
            "POST",
            "model-versions/set-tag",
            {"name": name, "version": "1", "key": "k", "value": "v"},
        ),
        ("DELETE", "model-versions/delete-tag", {"name": name, "version": "1", "key": "mlteams.x"}),
        ("PATCH", "model-versions/update", {"name": name, "version": "1", "description": "x"}),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": name, "version": "1", "stage": "Production"},
        ),
    ]


def test_every_direct_change_of_a_governed_model_is_refused_with_the_reason(
    alice: Caller, service: Caller, governed: str
) -> None:
    for method, endpoint, body in changes(governed):
        response = alice.call(method, endpoint, body)
        assert response.status_code == 403, (endpoint, response.text)
        assert response.json() == {
            "error_code": "PERMISSION_DENIED",
            "message": governed_message(governed),
        }, endpoint
    # nothing changed
    model = service.ok("GET", "registered-models/get", {"name": governed})["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    assert {t["key"] for t in model["tags"]} == {
        "mlteams.governed",
        "mlteams.team",
        "mlteams.model",
    }
    assert "description" not in model
    versions = service.ok("GET", "model-versions/search", {"filter": f"name='{governed}'"})
    assert [v["version"] for v in versions["model_versions"]] == ["1"]


def test_the_message_reaches_a_user_of_mlflows_own_client(
    alice: Caller, governed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", str(alice.token))
    client = MlflowClient(alice.server.url)
    assert client.get_model_version_by_alias(governed, "champion").version == "1"
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(governed, "champion", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "promote through /mlteams/promote in your notebook" in refused.value.message


def test_a_governed_model_is_readable_by_everyone(
    alice: Caller, bob: Caller, governed: str
) -> None:
    for user in (alice, bob):
        model = user.ok("GET", "registered-models/get", {"name": governed})["registered_model"]
        assert model["name"] == governed
        by_alias = user.ok(
            "GET", "registered-models/alias", {"name": governed, "alias": "champion"}
        )
        assert by_alias["model_version"]["version"] == "1"
        found = user.ok("GET", "registered-models/search", {"filter": f"name='{governed}'"})
        assert [m["name"] for m in found["registered_models"]] == [governed]
        version = user.ok("GET", "model-versions/get", {"name": governed, "version": "1"})
        assert version["model_version"]["source"].startswith("s3://mlteams-governed/")
        latest = user.ok("POST", "registered-models/get-latest-versions", {"name": governed})
        assert latest["model_versions"][0]["version"] == "1"


def test_no_user_creates_a_governed_name(alice: Caller, service: Caller) -> None:
    name = f"governed.nlp.x{uuid.uuid4().hex[:6]}"
    response = alice.call("POST", "registered-models/create", {"name": name})
    assert response.status_code == 403
    assert response.json()["message"] == governed_message(name)
    assert service.call("GET", "registered-models/get", {"name": name}).status_code == 404


def test_a_users_own_model_is_theirs_and_read_only_to_another_team(
    alice: Caller, bob: Caller, service: Caller
) -> None:
    name = f"dev-v-alice-iris-{uuid.uuid4().hex[:6]}"
    alice.ok(
        "POST", "registered-models/create", {"name": name, "tags": [{"key": "k", "value": "v"}]}
    )
    version = alice.ok("POST", "model-versions/create", {"name": name, "source": "s3://lake/m"})
    assert version["model_version"]["version"] == "1"
    alice.ok("POST", "registered-models/alias", {"name": name, "alias": "best", "version": "1"})
    alice.ok(
        "POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "a", "value": "b"}
    )
    # the hub user became an MLflow user, who may not write mlteams.* tags even on their own model
    user = service.ok("GET", "users/get", {"username": ALICE})["user"]
    assert user["username"] == ALICE and not user["is_admin"]
    reserved = alice.call(
        "POST", "registered-models/set-tag", {"name": name, "key": "mlteams.governed", "value": "1"}
    )
    assert reserved.status_code == 403 and "reserved" in reserved.json()["message"]
    # another team's user reads it and changes nothing
    assert (
        bob.ok("GET", "registered-models/get", {"name": name})["registered_model"]["name"] == name
    )
    for method, endpoint, body in [
        ("POST", "model-versions/create", {"name": name, "source": "s3://lake/n"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "best", "version": "1"}),
        ("POST", "registered-models/set-tag", {"name": name, "key": "k", "value": "mine"}),
        ("DELETE", "registered-models/delete", {"name": name}),
    ]:
        assert bob.call(method, endpoint, body).status_code == 403, endpoint
    alice.ok("DELETE", "registered-models/delete", {"name": name})


def test_a_wrong_or_revoked_hub_token_is_a_401(
    team_hub: LocalHub, mlflow_server: MLflowServer
) -> None:
    wrong = Caller(mlflow_server, "not-a-hub-token-" + uuid.uuid4().hex)
    response = wrong.call("GET", "registered-models/search")
    assert response.status_code == 401
    assert "JupyterHub did not accept this token" in response.json()["message"]
    token, token_id = hub_token(team_hub, ALICE)
    status, _ = as_user(team_hub, token, "DELETE", f"/hub/api/users/{ALICE}/tokens/{token_id}")
    assert status == 204
    revoked = Caller(mlflow_server, token).call("GET", "registered-models/search")
    assert revoked.status_code == 401


def test_a_hub_services_token_is_refused_unless_listed(
    team_hub: LocalHub, mlflow_server: MLflowServer
) -> None:
    response = Caller(mlflow_server, team_hub.api_token).call("GET", "registered-models/search")
    assert response.status_code == 403
    assert "MLTEAMS_HUB_SERVICES does not list it" in response.json()["message"]


def test_a_hub_that_does_not_answer_is_a_503_with_a_message(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    state = tmp_path_factory.mktemp("mlflow-no-hub")
    procs = ProcessGroup(RIG_ID, state / "logs")
    server = MLflowServer(state, procs, hub_api_url=f"http://127.0.0.1:{free_port()}/hub/api")
    try:
        server.start()
        response = Caller(server, "a-token").call("GET", "registered-models/search")
        assert response.status_code == 503
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "JupyterHub" in response.json()["message"]
        assert "did not answer" in response.json()["message"]
        assert "Traceback" not in response.text
        # basic auth does not need the hub
        assert Caller(server).ok("GET", "registered-models/search") == {}
    finally:
        procs.stop_all()
