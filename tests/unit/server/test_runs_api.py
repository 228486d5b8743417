"""The side panel's run endpoints through a real Jupyter server with the extension, against a
real MLflow tracking store (MLflow's SQL store on a sqlite file, no server): a notebook's runs
with durations, datasets and models, a run's logged models, ending a run, the team answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput
from mlflow.tracking import MlflowClient
from tornado.httpclient import HTTPClientError

from server_ext.contract import experiment_name
from server_ext.server import tracking_queries
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch

__all__ = ["fetch"]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

globals().update(SERVER_FIXTURES)

PUBLIC = "https://mlflow.example.org"
TEAM, USER = "vision", "alice"
SERVICE_URL = "http://127.0.0.1:1/services/mlteams"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A sqlite MLflow store (its schema made once for the module) and an artifact folder."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    yield uri, folder / "artifacts"


@pytest.fixture
def jp_server_config(tracking: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLTEAMS_TEAM", TEAM)
    monkeypatch.setenv("JUPYTERHUB_USER", USER)
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {
            "tracking_uri": tracking[0],
            "tracking_public_url": PUBLIC + "/",
            "team": TEAM,
            "user": USER,
            "service_url": SERVICE_URL,
            "hub_api_token": "hub-token-of-alice",
        },
    }


@pytest.fixture
def client(tracking: tuple[str, Path]) -> MlflowClient:
    return MlflowClient(tracking[0])


def notebook() -> str:
    return f"nb/{uuid.uuid4().hex[:8]}.ipynb"


def new_experiment(client: MlflowClient, tracking: tuple[str, Path], name: str) -> str:
    location = (tracking[1] / uuid.uuid4().hex).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def new_run(client: MlflowClient, experiment_id: str, user: str = USER, **kwargs: Any) -> str:
    tags = {"mlflow.user": user, "mlteams.user": user, "mlteams.team": TEAM}
    return str(client.create_run(experiment_id, tags=tags, **kwargs).info.run_id)


def log_model(client: MlflowClient, experiment_id: str, run_id: str, name: str) -> str:
    """A logged model made by ``run_id`` and among its outputs, as ``log_model`` records it."""
    model = client.create_logged_model(
        experiment_id, name=name, source_run_id=run_id, params={"C": "1.0"}
    )
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])
    client.finalize_logged_model(model.model_id, "READY")
    return str(model.model_id)


def get(fetch: Any, *parts: str, **params: str) -> dict[str, Any]:
    return dict(json.loads(fetch("mlteams", *parts, params=params or None).body))


def end(fetch: Any, run_id: str) -> Any:
    return fetch("mlteams", "runs", run_id, "end", method="POST", body=b"")


def refusal(fetch: Any, *parts: str, method: str = "GET") -> tuple[int, str]:
    body = b"" if method == "POST" else None
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", *parts, method=method, body=body, params={"path": "a.ipynb"})
    return info.value.code, json.loads(info.value.response.body)["message"]


def test_a_notebooks_runs_have_durations_datasets_and_models(
    fetch: Any, client: MlflowClient, tracking: tuple[str, Path]
) -> None:
    path = notebook()
    exp = new_experiment(client, tracking, experiment_name(TEAM, USER, path))
    finished = new_run(client, exp, start_time=1_000_000, run_name="first")
    dataset = Dataset("iris", "abc123", "s3", json.dumps({"uri": "s3://lake/iris/x.csv"}))
    context = InputTag("mlflow.data.context", "training")
    client.log_inputs(finished, [DatasetInput(dataset, [context])])
    model_id = log_model(client, exp, finished, "model")
    client.set_terminated(finished, "FINISHED", end_time=1_004_500)
    running = new_run(client, exp, start_time=2_000_000, run_name="second")

    data = get(fetch, "runs", path=path)
    assert data["experiment"] == experiment_name(TEAM, USER, path)
    assert data["experiment_id"] == exp
    assert data["experiment_link"] == f"{PUBLIC}/#/experiments/{exp}"
    assert [r["run_id"] for r in data["runs"]] == [running, finished]
    newest, oldest = data["runs"]
    assert newest["status"] == "RUNNING" and newest["duration_ms"] is None
    assert newest["datasets"] == [] and newest["models"] == []
    assert oldest["duration_ms"] == 4_500
    assert oldest["link"] == f"{PUBLIC}/#/experiments/{exp}/runs/{finished}"
    assert oldest["datasets"] == [
        {"name": "iris", "digest": "abc123", "source_type": "s3", "context": "training"}
    ]
    assert oldest["models"] == [
        {"model_id": model_id, "link": f"{PUBLIC}/#/experiments/{exp}/models/{model_id}"}
    ]
    assert data["next_page_token"] is None

    first_page = get(fetch, "runs", path=path, page_size="1")
    assert [r["run_id"] for r in first_page["runs"]] == [running]
    token = first_page["next_page_token"]
    second_page = get(fetch, "runs", path=path, page_size="1", page_token=token)
    assert [r["run_id"] for r in second_page["runs"]] == [finished]


def test_a_notebook_without_an_experiment_has_no_runs_and_no_links(fetch: Any) -> None:
    data = get(fetch, "runs", path=notebook())
    assert data["experiment_id"] is None and data["experiment_link"] is None
    assert data["runs"] == [] and data["next_page_token"] is None


def test_a_kept_experiment_that_was_made_again_is_looked_up_again(
    fetch: Any, client: MlflowClient, tracking: tuple[str, Path]
) -> None:
    path = notebook()
    name = experiment_name(TEAM, USER, path)
    old = new_experiment(client, tracking, name)
    assert get(fetch, "runs", path=path)["experiment_id"] == old
    client.rename_experiment(old, name + " (old)")
    new = new_experiment(client, tracking, name)
    run_id = new_run(client, new)

    data = get(fetch, "runs", path=path)
    assert data["experiment_id"] == new
    assert [r["run_id"] for r in data["runs"]] == [run_id]


def test_the_experiment_is_looked_up_once_for_a_notebooks_pages(
    fetch: Any,
    client: MlflowClient,
    tracking: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = notebook()
    exp = new_experiment(client, tracking, experiment_name(TEAM, USER, path))
    runs = [new_run(client, exp, start_time=1_000 + i) for i in range(3)]
    lookups: list[str] = []
    real = tracking_queries.find_experiment

    def counted(uri: str, name: str) -> Any:
        lookups.append(name)
        return real(uri, name)

    monkeypatch.setattr(tracking_queries, "find_experiment", counted)
    seen, token = [], None
    while True:
        params = {"path": path, "page_size": "1", **({"page_token": token} if token else {})}
        page = get(fetch, "runs", **params)
        assert page["experiment_id"] == exp
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == runs[::-1]
    assert lookups == [experiment_name(TEAM, USER, path)]


def test_a_runs_models_with_names_and_metrics(
    fetch: Any, client: MlflowClient, tracking: tuple[str, Path]
) -> None:
    exp = new_experiment(client, tracking, experiment_name(TEAM, USER, notebook()))
    run_id = new_run(client, exp)
    model_id = log_model(client, exp, run_id, "model")
    client.log_metric(run_id, "accuracy", 0.93, step=0, model_id=model_id)
    # a model made by another run that this run also logged to (one of its outputs)
    other_run = new_run(client, exp)
    shared = log_model(client, exp, other_run, "shared")
    client.log_outputs(run_id, [LoggedModelOutput(shared, 1)])

    data = get(fetch, "runs", run_id, "models")
    assert data["run_id"] == run_id and data["experiment_id"] == exp
    by_id = {m["model_id"]: m for m in data["models"]}
    assert set(by_id) == {model_id, shared}
    model = by_id[model_id]
    assert model["name"] == "model" and by_id[shared]["name"] == "shared"
    assert model["link"] == f"{PUBLIC}/#/experiments/{exp}/models/{model_id}"
    assert model["model_uri"] == f"models:/{model_id}"
    assert model["source_run_id"] == run_id and by_id[shared]["source_run_id"] == other_run
    assert model["status"] == "READY"
    assert model["params"] == {"C": "1.0"}
    assert model["artifact_location"].endswith(f"/models/{model_id}/artifacts")
    assert [(m["key"], m["value"], m["step"]) for m in model["metrics"]] == [("accuracy", 0.93, 0)]

    bare = new_run(client, exp)
    assert get(fetch, "runs", bare, "models")["models"] == []


def test_the_models_of_an_unknown_run_are_a_404(fetch: Any) -> None:
    code, message = refusal(fetch, "runs", uuid.uuid4().hex, "models")
    assert code == 404 and "no MLflow run" in message


def test_ending_an_own_running_run_then_again(
    fetch: Any, client: MlflowClient, tracking: tuple[str, Path]
) -> None:
    exp = new_experiment(client, tracking, experiment_name(TEAM, USER, notebook()))
    run_id = new_run(client, exp)

    response = end(fetch, run_id)
    assert response.code == 200
    run = json.loads(response.body)["run"]
    assert run["run_id"] == run_id and run["status"] == "FINISHED"
    assert isinstance(run["end_time"], int) and run["duration_ms"] is not None
    stored = client.get_run(run_id).info
    assert stored.status == "FINISHED" and stored.end_time == run["end_time"]

    code, message = refusal(fetch, "runs", run_id, "end", method="POST")
    assert (code, message) == (409, "this run has already ended")
    assert client.get_run(run_id).info.end_time == run["end_time"]


def test_a_run_in_the_users_own_notebook_experiment_is_theirs_whatever_its_user_tag(
    fetch: Any, client: MlflowClient, tracking: tuple[str, Path]
) -> None:
    exp = new_experiment(client, tracking, experiment_name(TEAM, USER, notebook()))
    run_id = new_run(client, exp, user="jovyan")
    assert end(fetch, run_id).code == 200
    assert client.get_run(run_id).info.status == "FINISHED"


def test_ending_another_users_run_is_refused_and_changes_nothing(
    fetch: Any, client: MlflowClient, tracking: tuple[str, Path]
) -> None:
    exp = new_experiment(client, tracking, experiment_name(TEAM, "bob", notebook()))
    run_id = new_run(client, exp, user="bob")
    code, message = refusal(fetch, "runs", run_id, "end", method="POST")
    assert code == 403 and "another user's" in message
    assert client.get_run(run_id).info.status == "RUNNING"

    client.set_terminated(run_id, "FAILED")
    code, _ = refusal(fetch, "runs", run_id, "end", method="POST")
    assert code == 403
    assert client.get_run(run_id).info.status == "FAILED"


def test_ending_an_unknown_run_is_a_404(fetch: Any) -> None:
    code, message = refusal(fetch, "runs", uuid.uuid4().hex, "end", method="POST")
    assert code == 404 and "no MLflow run" in message


def test_the_team_answer_has_the_public_url_and_promotion(fetch: Any) -> None:
    data = get(fetch, "team")
    assert data["team"] == TEAM and data["user"] == USER
    assert data["tracking_public_url"] == PUBLIC
    assert data["model_version_link_template"] == f"{PUBLIC}/#/models/{{name}}/versions/{{version}}"
    assert data["promotion"] == {"available": True, "reason": None}
    assert "hub-token-of-alice" not in json.dumps(data)
