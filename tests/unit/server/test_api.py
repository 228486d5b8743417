"""The /mlteams/ REST API through a real Jupyter server (pytest-jupyter's ``jp_fetch``):
authentication everywhere, XSRF on writes, clean 4xx for bad requests, no secrets."""

from __future__ import annotations

import json
import re
import urllib.parse
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from devenv.procs import free_port
from server_ext.server.api import (
    ExperimentIds,
    dataset_brief,
    dataset_inputs_of,
    duration_ms,
    experiment_link,
    logged_model_link,
    logged_model_view,
    model_outputs_of,
    model_version_link,
    model_version_link_template,
    owns_run,
    promotion_status,
    run_summary,
    team_summary,
    ui_base,
    user_experiments_prefix,
)
from server_ext.server.handlers import default_handlers
from server_ext.server.promote_handlers import NOT_CONFIGURED
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch

__all__ = ["fetch"]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

globals().update(SERVER_FIXTURES)

SECRET_VALUE = "do-not-leak-4f1c"
CATALOG = [
    {
        "name": "coco",
        "uri": "s3://lake/coco/",
        "format": "csv",
        "mount_path": "/nonexistent/datasets/coco",
        "endpoint_url": "http://127.0.0.1:9000",
        "credentials": {"key_env": "MLTEAMS_S3_LAKE_KEY_ID", "secret_env": "MLTEAMS_S3_LAKE_SK"},
    },
    {"name": "raw", "uri": "s3://lake/raw/"},
]
SAMPLE_ARGS = {
    r"([^/]+)": "coco",
    r"(?P<run_id>[^/]+)": "0f1e2d3c",
    r"(?P<promotion_id>[^/]+)": "0" * 32,
    r"(?P<team>[^/]+)": "vision",
    r"(?P<model>[^/]+)": "iris",
}


@pytest.fixture
def jp_server_config(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("MLTEAMS_DATASETS", json.dumps(CATALOG))
    monkeypatch.setenv("MLTEAMS_S3_LAKE_KEY_ID", SECRET_VALUE)
    monkeypatch.setenv("MLTEAMS_S3_LAKE_SK", SECRET_VALUE)
    monkeypatch.setenv("MLTEAMS_QUOTA", json.dumps({"gpus": 4, "gpus_per_user": 2}))
    monkeypatch.setenv("MLTEAMS_TEAM", "vision")
    monkeypatch.setenv("MLTEAMS_PROFILE", "cpu")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.delenv("MLTEAMS_SERVICE_URL", raising=False)
    monkeypatch.delenv("MLTEAMS_TRACKING_PUBLIC_URL", raising=False)
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {
            "tracking_uri": f"http://127.0.0.1:{free_port()}",
            "team": "vision",
            "user": "alice",
        },
    }


def route_paths() -> list[str]:
    paths = []
    for pattern, _ in default_handlers():
        path = pattern
        for group, value in SAMPLE_ARGS.items():
            path = path.replace(group, value)
        assert not re.search(r"[()\[\]]", path), f"give {pattern} a sample in SAMPLE_ARGS"
        paths.append(path.lstrip("/"))
    return paths


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_no_handler_is_reachable_without_authentication(fetch: Any, method: str) -> None:
    for path in route_paths():
        body = None if method in ("GET", "DELETE") else b"{}"
        with pytest.raises(HTTPClientError) as info:
            fetch(
                *path.split("/"),
                method=method,
                body=body,
                headers={"Authorization": "token not-the-token"},
                params={"path": "a.ipynb"},
                follow_redirects=False,
            )
        assert info.value.code in (302, 401, 403, 405), (method, path, info.value.code)


def test_every_handler_method_is_wrapped_by_authenticated() -> None:
    for _, handler in default_handlers():
        for method in ("get", "post", "put", "patch", "delete"):
            fn = handler.__dict__.get(method)
            if fn is not None:
                assert hasattr(fn, "__wrapped__"), f"{handler.__name__}.{method}"


def test_status_and_openapi(fetch: Any) -> None:
    response = fetch("mlteams", "status")
    assert json.loads(response.body)["extension"] == "jupyterhub-mlteams"
    spec = yaml.safe_load((fetch("mlteams", "openapi.yaml")).body)
    documented = set(spec["paths"])
    served = {
        re.sub(
            r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", re.sub(r"\(\[\^/\]\+\)", "{name}", p)
        ).removeprefix("/mlteams")
        for p, _ in default_handlers()
    }
    assert served == documented


def test_datasets_list_with_mount_status_and_no_secret(fetch: Any) -> None:
    response = fetch("mlteams", "datasets")
    data = json.loads(response.body)
    assert [d["name"] for d in data["datasets"]] == ["coco", "raw"]
    assert data["datasets"][0]["mount_status"] == "missing"
    assert data["datasets"][1]["mount_status"] == "not-mounted"
    assert SECRET_VALUE not in response.body.decode()


def test_dataset_snippet_and_unknown_dataset(fetch: Any) -> None:
    response = fetch("mlteams", "datasets", "coco")
    data = json.loads(response.body)
    assert "Path('/nonexistent/datasets/coco')" in data["snippet"]
    assert "pd.read_csv(f) for f in files" in data["snippet"]
    assert SECRET_VALUE not in response.body.decode()
    for name in ("nlp-corpus", "..%2Fetc"):
        with pytest.raises(HTTPClientError) as info:
            fetch("mlteams", "datasets", name)
        assert info.value.code == 404
        assert SECRET_VALUE not in info.value.response.body.decode()


def test_team_summary(fetch: Any, jp_serverapp: Any) -> None:
    data = json.loads((fetch("mlteams", "team")).body)
    assert data["team"] == "vision" and data["user"] == "alice"
    assert data["quota"] == {"gpus": 4, "gpus_per_user": 2}
    # the public URL defaults to the (http) tracking URI; no service URL: no promotion
    assert data["tracking_public_url"] == jp_serverapp.web_app.settings["mlteams"].tracking_uri
    assert data["promotion"] == {"available": False, "reason": NOT_CONFIGURED}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"path": ""},
        {"path": "../x.ipynb"},
        {"path": "a.ipynb", "page_size": "abc"},
        {"path": "a.ipynb", "page_size": "0"},
        {"path": "a.ipynb", "page_size": "100000"},
        {"path": "a.ipynb", "page_token": "x" * 5000},
    ],
)
def test_malformed_requests_get_400(fetch: Any, params: dict[str, str]) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", params=params)
    assert info.value.code == 400
    assert json.loads(info.value.response.body)["message"]


def test_unreachable_mlflow_is_a_clean_503(fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "experiment", params={"path": "a.ipynb"})
    assert info.value.code == 503


def test_reproduce_with_mlflow_down_is_a_clean_503(fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "reproduce")
    assert info.value.code == 503
    assert "did not answer" in json.loads(info.value.response.body)["message"]


@pytest.mark.parametrize(("method", "action"), [("GET", "models"), ("POST", "end")])
def test_run_models_and_end_with_mlflow_down_are_a_clean_503(
    fetch: Any, method: str, action: str
) -> None:
    body = b"" if method == "POST" else None
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", "0f1e2d3c", action, method=method, body=body)
    assert info.value.code == 503
    assert "did not answer" in json.loads(info.value.response.body)["message"]


@pytest.mark.parametrize("run_id", ["a%20b", "x" * 70, "-x"])
@pytest.mark.parametrize(
    ("method", "action"), [("GET", "reproduce"), ("GET", "models"), ("POST", "end")]
)
def test_something_that_is_no_run_id_is_a_400(
    fetch: Any, run_id: str, method: str, action: str
) -> None:
    body = b"" if method == "POST" else None
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", run_id, action, method=method, body=body)
    assert info.value.code == 400
    assert "run_id" in json.loads(info.value.response.body)["message"]


def test_tracking_uri_cannot_come_from_the_request(fetch: Any, jp_serverapp: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch(
            "mlteams",
            "experiment",
            params={"path": "a.ipynb", "tracking_uri": "http://evil.example"},
            headers={"X-MLflow-Tracking-Uri": "http://evil.example"},
        )
    assert info.value.code == 503
    ext = jp_serverapp.web_app.settings["mlteams"]
    assert "evil" not in ext.tracking_uri


def test_write_without_xsrf_is_refused_for_cookie_sessions(
    jp_serverapp: Any, jp_base_url: str, http_server_client: Any, jp_asyncio_loop: Any
) -> None:
    base = jp_base_url
    client = http_server_client

    def get(url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("raise_error", False)
        return jp_asyncio_loop.run_until_complete(client.fetch(url, **kwargs))

    login = get(base + "login")
    xsrf = re.search(r"_xsrf=([^;]+)", login.headers.get("Set-Cookie", ""))
    assert xsrf
    token = jp_serverapp.identity_provider.token
    body = urllib.parse.urlencode({"password": token, "_xsrf": xsrf[1]})
    logged_in = get(
        base + "login",
        method="POST",
        body=body,
        headers={"Cookie": f"_xsrf={xsrf[1]}"},
        follow_redirects=False,
    )
    cookies = "; ".join(c.split(";")[0] for c in logged_in.headers.get_list("Set-Cookie"))
    assert "username" in cookies
    assert get(base + "mlteams/status", headers={"Cookie": cookies}).code == 200
    url = base + "mlteams/experiment?path=a.ipynb"
    refused = get(url, method="POST", body=b"", headers={"Cookie": cookies})
    assert refused.code == 403
    accepted = get(
        url,
        method="POST",
        body=b"",
        headers={"Cookie": f"{cookies}; _xsrf={xsrf[1]}", "X-XSRFToken": xsrf[1]},
    )
    assert accepted.code == 503


# -- the pure parts of the runs and team answers -------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://mlflow.example.org", "https://mlflow.example.org"),
        ("https://h/mlflow/ ", "https://h/mlflow"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("", None),
        ("file:///tmp/mlruns", None),
        ("sqlite:///x.db", None),
        ("databricks", None),
    ],
)
def test_ui_base_and_links_only_under_an_http_address(base: str, expected: str | None) -> None:
    assert ui_base(base) == expected
    if expected is None:
        assert experiment_link(base, "7") is None
        assert logged_model_link(base, "7", "m-1") is None
        assert model_version_link(base, "iris", 3) is None
        assert model_version_link_template(base) is None
    else:
        assert experiment_link(base, "7") == f"{expected}/#/experiments/7"
        assert logged_model_link(base, "7", "m-1") == f"{expected}/#/experiments/7/models/m-1"
        assert model_version_link(base, "iris", 3) == f"{expected}/#/models/iris/versions/3"
        assert model_version_link_template(base) == (
            f"{expected}/#/models/{{name}}/versions/{{version}}"
        )


def test_link_parts_are_escaped() -> None:
    base = "https://m.example"
    assert model_version_link(base, "governed.vision/iris x", "2") == (
        "https://m.example/#/models/governed.vision%2Firis%20x/versions/2"
    )
    assert experiment_link(base, "../1") == "https://m.example/#/experiments/..%2F1"
    template = model_version_link_template(base)
    assert template is not None
    assert template.format(name="a%2Fb", version=1) == model_version_link(base, "a/b", 1)


@pytest.mark.parametrize(
    ("status", "start", "end", "expected"),
    [
        ("FINISHED", 1_000, 4_500, 3_500),
        ("FAILED", 1_000, 1_000, 0),
        ("KILLED", 2_000, 1_000, 0),
        ("RUNNING", 1_000, None, None),
        ("RUNNING", 1_000, 9_000, None),
        ("SCHEDULED", None, None, None),
        ("FINISHED", 1_000, None, None),
    ],
)
def test_durations(status: str, start: int | None, end: int | None, expected: int | None) -> None:
    assert duration_ms(status, start, end) == expected


def mlflow_like_run(**info: Any) -> Any:
    """An object shaped like MLflow's ``Run`` as ``search_runs`` returns it."""
    tag = SimpleNamespace
    dataset_inputs = [
        SimpleNamespace(
            dataset=SimpleNamespace(name="iris", digest="abc", source_type="s3", source="{}"),
            tags=[tag(key="mlflow.data.context", value="training"), tag(key="x", value="y")],
        ),
        SimpleNamespace(
            dataset=SimpleNamespace(name="raw", digest="def", source_type="local", source="{}"),
            tags=[],
        ),
    ]
    outputs = [SimpleNamespace(model_id=m, step=0) for m in ("m-1", "m-2", "m-1")]
    values = {
        "run_id": "r1",
        "experiment_id": "7",
        "run_name": "train",
        "status": "FINISHED",
        "start_time": 1_000,
        "end_time": 61_000,
        **info,
    }
    return SimpleNamespace(
        info=SimpleNamespace(**values),
        data=SimpleNamespace(
            metrics={"acc": 0.9},
            params={"C": "1"},
            tags={"mlteams.team": "vision", "mlflow.user": "alice"},
        ),
        inputs=SimpleNamespace(dataset_inputs=dataset_inputs),
        outputs=SimpleNamespace(model_outputs=outputs),
    )


def test_a_run_summary_has_its_duration_datasets_and_models() -> None:
    view = run_summary(mlflow_like_run(), "https://m.example/")
    assert view["link"] == "https://m.example/#/experiments/7/runs/r1"
    assert view["duration_ms"] == 60_000
    assert view["tags"] == {"mlteams.team": "vision"}
    assert view["datasets"] == [
        {"name": "iris", "digest": "abc", "source_type": "s3", "context": "training"},
        {"name": "raw", "digest": "def", "source_type": "local", "context": None},
    ]
    assert view["models"] == [
        {"model_id": "m-1", "link": "https://m.example/#/experiments/7/models/m-1"},
        {"model_id": "m-2", "link": "https://m.example/#/experiments/7/models/m-2"},
    ]


def test_a_run_without_inputs_outputs_or_public_url() -> None:
    run = mlflow_like_run(status="RUNNING", end_time=None)
    run.inputs, run.outputs = None, None
    view = run_summary(run)
    assert view["link"] is None and view["duration_ms"] is None
    assert view["datasets"] == [] and view["models"] == []
    assert dataset_inputs_of(run) == [] and model_outputs_of(run) == []


def test_dataset_inputs_keep_their_tags_and_the_brief_their_context() -> None:
    [iris, raw] = dataset_inputs_of(mlflow_like_run())
    assert iris.tags == {"mlflow.data.context": "training", "x": "y"}
    assert dataset_brief(raw)["context"] is None


def test_a_logged_model_view() -> None:
    metric = SimpleNamespace(
        key="accuracy", value=0.93, step=0, dataset_name="iris", dataset_digest="abc"
    )
    model = SimpleNamespace(
        model_id="m-1",
        name="model",
        experiment_id="7",
        source_run_id="r1",
        status="READY",
        model_type=None,
        artifact_location="mlflow-artifacts:/7/models/m-1/artifacts",
        creation_timestamp=5,
        params={"C": "1"},
        metrics=[metric],
    )
    view = logged_model_view(model, "https://m.example")
    assert view == {
        "model_id": "m-1",
        "name": "model",
        "link": "https://m.example/#/experiments/7/models/m-1",
        "model_uri": "models:/m-1",
        "experiment_id": "7",
        "source_run_id": "r1",
        "status": "READY",
        "model_type": None,
        "artifact_location": "mlflow-artifacts:/7/models/m-1/artifacts",
        "creation_timestamp": 5,
        "params": {"C": "1"},
        "metrics": [
            {"key": "accuracy", "value": 0.93, "step": 0, "dataset_name": "iris",
             "dataset_digest": "abc"}
        ],
    }  # fmt: skip
    model.params, model.metrics = None, None
    assert logged_model_view(model)["metrics"] == [] and logged_model_view(model)["link"] is None


@pytest.mark.parametrize(
    ("run_user_id", "tags", "experiment", "mine"),
    [
        ("alice", {}, None, True),
        ("unknown", {"mlflow.user": "alice"}, None, True),
        ("jovyan", {"mlflow.user": "jovyan"}, "teams/vision/alice/nb/train.ipynb", True),
        ("bob", {"mlflow.user": "bob"}, None, False),
        ("bob", {"mlflow.user": "bob"}, "teams/vision/bob/train.ipynb", False),
        ("bob", {}, "teams/nlp/alice/train.ipynb", False),
        ("bob", {}, "teams/vision/alice2/train.ipynb", False),
        ("bob", {}, "teams/vision/alice", False),
        (None, {"mlteams.user": "alice"}, None, False),
        ("", {}, None, False),
    ],
)
def test_whose_run_it_is(
    run_user_id: str | None, tags: dict[str, str], experiment: str | None, mine: bool
) -> None:
    kwargs = {"run_user_id": run_user_id, "tags": tags, "experiment": experiment}
    assert owns_run("vision", "alice", **kwargs) is mine


def test_an_empty_user_owns_nothing() -> None:
    assert not owns_run("vision", "", run_user_id="", tags={"mlflow.user": ""})


def test_user_experiment_prefixes_cannot_be_confused_by_slashes() -> None:
    assert user_experiments_prefix("vision", "alice") == "teams/vision/alice/"
    assert user_experiments_prefix("vision", "a/b") == "teams/vision/a%2Fb/"
    assert not owns_run("vision", "a", run_user_id=None, tags={}, experiment="teams/vision/a%2Fb/x")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_experiment_ids_are_kept_for_a_while_and_only_when_active() -> None:
    clock = Clock()
    ids = ExperimentIds(30, clock)
    active = {"experiment_id": "7", "name": "n", "lifecycle_stage": "active"}
    ids.put("http://m", "n", active)
    assert ids.get("http://m", "n") == "7"
    assert ids.get("http://other", "n") is None and ids.get("http://m", "other") is None
    clock.now += 29.9
    assert ids.get("http://m", "n") == "7"
    clock.now += 0.1
    assert ids.get("http://m", "n") is None
    ids.put("http://m", "n", active)
    ids.put("http://m", "n", {**active, "lifecycle_stage": "deleted"})
    assert ids.get("http://m", "n") is None
    ids.put("http://m", "n", active)
    ids.put("http://m", "n", None)
    assert ids.get("http://m", "n") is None
    ids.put("http://m", "n", active)
    ids.drop("http://m", "n")
    assert ids.get("http://m", "n") is None


def test_experiment_ids_kept_for_no_time_are_not_kept() -> None:
    ids = ExperimentIds(0)
    ids.put("http://m", "n", {"experiment_id": "7", "lifecycle_stage": "active"})
    assert ids.get("http://m", "n") is None


def test_expired_experiment_ids_are_let_go() -> None:
    clock = Clock()
    ids = ExperimentIds(10, clock)
    for i in range(50):
        ids.put("http://m", f"n{i}", {"experiment_id": str(i), "lifecycle_stage": "active"})
    clock.now += 10
    ids.put("http://m", "last", {"experiment_id": "x", "lifecycle_stage": "active"})
    assert len(ids) == 1


@pytest.mark.parametrize(
    ("service_url", "token", "available"),
    [("http://hub:8081/services/mlteams", "t", True), ("", "t", False), ("http://s", "", False)],
)
def test_promotion_status(service_url: str, token: str, available: bool) -> None:
    status = promotion_status(service_url, token, NOT_CONFIGURED)
    assert status == {"available": available, "reason": None if available else NOT_CONFIGURED}


def test_team_summary_public_url_and_promotion() -> None:
    environ = {"JUPYTERHUB_USER": "alice", "MLTEAMS_TEAM": "vision"}
    promotion = {"available": True, "reason": None}
    summary = team_summary(environ, public_url="https://m.example/", promotion=promotion)
    assert summary["tracking_public_url"] == "https://m.example"
    assert summary["model_version_link_template"] == (
        "https://m.example/#/models/{name}/versions/{version}"
    )
    assert summary["promotion"] == promotion
    bare = team_summary(environ, public_url="file:///tmp/mlruns")
    assert bare["tracking_public_url"] is None and bare["model_version_link_template"] is None
