"""The /mlteams/ REST API through a real Jupyter server (pytest-jupyter's ``jp_fetch``):
authentication everywhere, XSRF on writes, clean 4xx for bad requests, no secrets."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from devenv.procs import free_port
from server_ext.server.handlers import default_handlers
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


def test_team_summary(fetch: Any) -> None:
    data = json.loads((fetch("mlteams", "team")).body)
    assert data["team"] == "vision" and data["user"] == "alice"
    assert data["quota"] == {"gpus": 4, "gpus_per_user": 2}


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


@pytest.mark.parametrize("run_id", ["a%20b", "x" * 70, "-x"])
def test_reproduce_of_something_that_is_no_run_id_is_a_400(fetch: Any, run_id: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "runs", run_id, "reproduce")
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
