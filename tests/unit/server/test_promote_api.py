"""``/mlteams/promote`` and the promotion endpoints through a real Jupyter server.

The server forwards to the hub's ``mlteams`` service with its own hub token and decides
nothing; here a small HTTP server in the test's loop stands in for the service and records what
arrives (the real service answers on the rig: tests/integration/test_promotion_on_rig.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer

from devenv.procs import free_port
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch

__all__ = ["fetch"]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

globals().update(SERVER_FIXTURES)

SERVER_TOKEN = "server-token-3a9c"
PROMOTION_ID = "ab" * 16


class Recorder(web.RequestHandler):
    """Answers as the service would, and remembers each request."""

    def initialize(self, seen: list[dict[str, Any]], answers: dict[str, tuple[int, Any]]) -> None:
        self.seen = seen
        self.answers = answers

    def _answer(self) -> None:
        self.seen.append(
            {
                "method": self.request.method,
                "path": self.request.path,
                "query": {k: self.get_query_argument(k) for k in self.request.query_arguments},
                "authorization": self.request.headers.get("Authorization"),
                "body": json.loads(self.request.body) if self.request.body else None,
            }
        )
        status, body = self.answers.get(self.request.path, (200, {"ok": True}))
        self.set_status(status)
        if isinstance(body, str):
            kind = "text/html" if body.startswith("<html>") else "text/markdown"
            self.set_header("Content-Type", f"{kind}; charset=utf-8")
            self.finish(body)
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

    get = post = _answer


@pytest.fixture
def service_port() -> int:
    return free_port()


@pytest.fixture
def service(
    jp_asyncio_loop: Any, service_port: int
) -> Iterator[tuple[list[dict[str, Any]], dict[str, tuple[int, Any]]]]:
    seen: list[dict[str, Any]] = []
    answers: dict[str, tuple[int, Any]] = {}
    app = web.Application([(r"/services/mlteams/.*", Recorder, {"seen": seen, "answers": answers})])
    server = HTTPServer(app)
    server.listen(service_port, "127.0.0.1")
    yield seen, answers
    server.stop()


@pytest.fixture
def jp_server_config(monkeypatch: pytest.MonkeyPatch, service_port: int) -> dict[str, Any]:
    monkeypatch.setenv("MLTEAMS_SERVICE_URL", f"http://127.0.0.1:{service_port}/services/mlteams/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {"team": "vision", "user": "alice", "promote_wait_seconds": 5},
    }


def test_promote_forwards_with_the_servers_token_and_its_team(fetch: Any, service: Any) -> None:
    seen, answers = service
    answers["/services/mlteams/api/promotions"] = (
        201,
        {"id": PROMOTION_ID, "state": "promoted", "version": 1},
    )
    response = fetch(
        "mlteams", "promote", method="POST", body=json.dumps({"model": "iris", "run_id": "f" * 32})
    )
    assert response.code == 201
    assert json.loads(response.body)["version"] == 1
    (call,) = seen
    assert call["method"] == "POST"
    assert call["authorization"] == f"token {SERVER_TOKEN}"
    assert call["body"] == {"model": "iris", "run_id": "f" * 32, "team": "vision"}
    assert call["query"] == {"wait": "5"}


def test_a_team_named_in_the_body_is_kept_and_wait_can_be_given(fetch: Any, service: Any) -> None:
    seen, _ = service
    body = {"model": "iris", "run_id": "f" * 32, "team": "nlp"}
    fetch("mlteams", "promote", method="POST", body=json.dumps(body), params={"wait": "0"})
    assert seen[0]["body"]["team"] == "nlp"
    assert seen[0]["query"] == {"wait": "0"}


def test_gate_refusals_come_back_item_by_item(fetch: Any, service: Any) -> None:
    _, answers = service
    gates = [
        {
            "gate": "accuracy.min",
            "metric": "accuracy",
            "value": 0.4,
            "threshold": 0.9,
            "passed": False,
            "message": "accuracy 0.400 is below the minimum 0.900",
        },
    ]
    answers["/services/mlteams/api/promotions"] = (422, {"state": "refused", "gates": gates})
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "promote", method="POST", body=json.dumps({"model": "m"}))
    assert info.value.code == 422
    assert json.loads(info.value.response.body)["gates"] == gates


@pytest.mark.parametrize(
    ("parts", "method", "service_path"),
    [
        (("promotions",), "GET", "/services/mlteams/api/promotions"),
        (("promotions", PROMOTION_ID), "GET", f"/services/mlteams/api/promotions/{PROMOTION_ID}"),
        (
            ("promotions", PROMOTION_ID, "approve"),
            "POST",
            f"/services/mlteams/api/promotions/{PROMOTION_ID}/approve",
        ),
        (
            ("promotions", PROMOTION_ID, "reject"),
            "POST",
            f"/services/mlteams/api/promotions/{PROMOTION_ID}/reject",
        ),
        (("models", "vision", "iris"), "GET", "/services/mlteams/api/models/vision/iris"),
        (
            ("models", "vision", "iris", "rollback"),
            "POST",
            "/services/mlteams/api/models/vision/iris/rollback",
        ),
        (
            ("models", "vision", "iris", "serving"),
            "GET",
            "/services/mlteams/api/models/vision/iris/serving",
        ),
        (
            ("models", "vision", "iris", "serving"),
            "POST",
            "/services/mlteams/api/models/vision/iris/serving",
        ),
    ],
)
def test_each_endpoint_reaches_its_service_path(
    fetch: Any, service: Any, parts: tuple[str, ...], method: str, service_path: str
) -> None:
    seen, _ = service
    body = json.dumps({"comment": "ok"}) if method == "POST" else None
    response = fetch("mlteams", *parts, method=method, body=body)
    assert response.code == 200
    assert [(c["method"], c["path"]) for c in seen] == [(method, service_path)]
    assert seen[0]["authorization"] == f"token {SERVER_TOKEN}"


def test_the_card_is_markdown(fetch: Any, service: Any) -> None:
    _, answers = service
    answers[f"/services/mlteams/api/promotions/{PROMOTION_ID}/card"] = (200, "---\nlicense: x\n")
    response = fetch("mlteams", "promotions", PROMOTION_ID, "card")
    assert response.headers["Content-Type"].startswith("text/markdown")
    assert response.body.decode().startswith("---")


@pytest.mark.parametrize(
    ("parts", "method", "body", "message"),
    [
        (("promote",), "POST", "not json", "not valid JSON"),
        (("promote",), "POST", "[1]", "JSON object"),
        (("promotions", "not-an-id"), "GET", None, "32 hexadecimal"),
    ],
)
def test_bad_requests_never_reach_the_service(
    fetch: Any, service: Any, parts: tuple[str, ...], method: str, body: Any, message: str
) -> None:
    seen, _ = service
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", *parts, method=method, body=body)
    assert info.value.code == 400
    assert message in json.loads(info.value.response.body)["message"]
    assert seen == []


def test_the_services_own_503_keeps_its_message(fetch: Any, service: Any) -> None:
    _, answers = service
    message = "The MLflow registry is not answering right now; nothing was changed. Try again."
    answers["/services/mlteams/api/promotions"] = (503, {"status": 503, "message": message})
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "promotions")
    assert info.value.code == 503
    assert json.loads(info.value.response.body)["message"] == message


def test_a_proxys_error_page_is_a_clear_503(fetch: Any, service: Any) -> None:
    _, answers = service
    answers["/services/mlteams/api/promotions"] = (502, "<html>Bad Gateway</html>")
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "promotions")
    assert info.value.code == 503
    assert "not answering" in json.loads(info.value.response.body)["message"]
