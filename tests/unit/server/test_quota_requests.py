"""``/mlteams/quota-requests`` through a real Jupyter server, forwarding to a small HTTP server in
the test's loop that answers as the ``mlteams`` service (``test_promote_api``'s ``Recorder``,
which here answers DELETE too); the service's own side is its admin API's tests.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer

from devenv.procs import free_port
from server_ext.server.quota_request_handlers import NOT_ANSWERING, NOT_SET_UP
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch
from tests.unit.server.test_promote_api import SERVER_TOKEN, Recorder, service_port

__all__ = ["fetch", "service_port"]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

globals().update(SERVER_FIXTURES)

REQUESTS_PATH = "/services/mlteams/api/quota-requests"
REQUEST_ID = "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b"
PENDING = {
    "id": REQUEST_ID,
    "team": "vision",
    "user": "alice",
    "gpus": 2,
    "minutes": 480,
    "reason": "retrain the detector before Friday",
    "state": "pending",
    "created_at": "2025-03-03T09:00:00+00:00",
    "decided_at": None,
    "decided_by": None,
    "comment": None,
    "override_id": None,
}
ASK = {"gpus": 2, "hours": 8, "reason": "retrain the detector before Friday"}


class ServiceRecorder(Recorder):
    """``Recorder``, answering DELETE as well."""

    delete = Recorder._answer


@pytest.fixture
def service_state() -> str:
    """``up``: the service listens; ``down``: nothing listens where the hub said it is;
    ``unset``: the hub told the server of no service."""
    return "up"


@pytest.fixture
def server_team() -> str:
    return "vision"


@pytest.fixture
def service(
    jp_asyncio_loop: Any, service_port: int
) -> Iterator[tuple[list[dict[str, Any]], dict[str, tuple[int, Any]]]]:
    seen: list[dict[str, Any]] = []
    answers: dict[str, tuple[int, Any]] = {}
    app = web.Application(
        [(r"/services/mlteams/.*", ServiceRecorder, {"seen": seen, "answers": answers})]
    )
    server = HTTPServer(app)
    server.listen(service_port, "127.0.0.1")
    yield seen, answers
    server.stop()


@pytest.fixture
def jp_server_config(
    monkeypatch: pytest.MonkeyPatch, service_port: int, service_state: str, server_team: str
) -> dict[str, Any]:
    port = free_port() if service_state == "down" else service_port
    if service_state == "unset":
        monkeypatch.delenv("MLTEAMS_SERVICE_URL", raising=False)
    else:
        monkeypatch.setenv("MLTEAMS_SERVICE_URL", f"http://127.0.0.1:{port}/services/mlteams/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    monkeypatch.setenv("MLTEAMS_TEAM", server_team)
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {"team": server_team, "user": "alice"},
    }


def refusal(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as info:
        call()
    return info.value.code, json.loads(info.value.response.body)


# -- forwarding ------------------------------------------------------------------------------


def test_the_list_comes_from_the_service_with_the_servers_token(fetch: Any, service: Any) -> None:
    seen, answers = service
    answers[REQUESTS_PATH] = (200, {"requests": [PENDING]})
    response = fetch("mlteams", "quota-requests")
    assert response.code == 200
    assert json.loads(response.body) == {"requests": [PENDING]}
    (call,) = seen
    assert (call["method"], call["path"]) == ("GET", REQUESTS_PATH)
    assert call["authorization"] == f"token {SERVER_TOKEN}"


def test_asking_forwards_the_body_for_the_servers_team(fetch: Any, service: Any) -> None:
    seen, answers = service
    answers[REQUESTS_PATH] = (201, PENDING)
    response = fetch("mlteams", "quota-requests", method="POST", body=json.dumps(ASK))
    assert response.code == 201
    assert json.loads(response.body) == PENDING
    (call,) = seen
    assert (call["method"], call["path"]) == ("POST", REQUESTS_PATH)
    assert call["authorization"] == f"token {SERVER_TOKEN}"
    assert call["body"] == {**ASK, "team": "vision"}


def test_a_body_naming_the_servers_own_team_is_forwarded(fetch: Any, service: Any) -> None:
    seen, answers = service
    answers[REQUESTS_PATH] = (201, PENDING)
    body = {"team": "vision", "gpus": 1, "minutes": 30, "reason": "a quick check"}
    fetch("mlteams", "quota-requests", method="POST", body=json.dumps(body))
    assert seen[0]["body"] == body


def test_withdrawing_forwards_the_delete(fetch: Any, service: Any) -> None:
    seen, answers = service
    withdrawn = {**PENDING, "state": "withdrawn", "decided_by": "alice"}
    answers[f"{REQUESTS_PATH}/{REQUEST_ID}"] = (200, withdrawn)
    response = fetch("mlteams", "quota-requests", REQUEST_ID, method="DELETE")
    assert response.code == 200
    assert json.loads(response.body) == withdrawn
    (call,) = seen
    assert (call["method"], call["path"]) == ("DELETE", f"{REQUESTS_PATH}/{REQUEST_ID}")
    assert call["authorization"] == f"token {SERVER_TOKEN}"
    assert call["body"] is None


# -- what the server refuses itself ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**ASK, "team": "nlp"}, "only for this server's team (vision), not 'nlp'"),
        ({**ASK, "team": ""}, "only for this server's team (vision)"),
        ([ASK], "send a JSON object"),
        ("not json", "not valid JSON"),
    ],
)
def test_another_team_or_a_body_that_is_not_an_object_is_refused(
    fetch: Any, service: Any, body: Any, message: str
) -> None:
    seen, _ = service
    raw = body if isinstance(body, str) else json.dumps(body)
    status, answer = refusal(lambda: fetch("mlteams", "quota-requests", method="POST", body=raw))
    assert status == 400
    assert message in answer["message"]
    assert seen == []


def test_a_malformed_id_never_reaches_the_service(fetch: Any, service: Any) -> None:
    seen, _ = service
    status, answer = refusal(lambda: fetch("mlteams", "quota-requests", "a.b", method="DELETE"))
    assert status == 400
    assert "letters, digits and dashes" in answer["message"]
    assert seen == []


@pytest.mark.parametrize("server_team", [""])
def test_a_server_without_a_team_cannot_ask(fetch: Any, service: Any) -> None:
    seen, _ = service
    status, answer = refusal(
        lambda: fetch("mlteams", "quota-requests", method="POST", body=json.dumps(ASK))
    )
    assert status == 409
    assert "has no team" in answer["message"]
    assert seen == []


def test_every_route_needs_a_login(
    jp_base_url: str, http_server_client: Any, jp_asyncio_loop: Any, service: Any
) -> None:
    seen, _ = service
    base = jp_base_url + "mlteams/quota-requests"
    for method, url, body in [
        ("GET", base, None),
        ("POST", base, json.dumps(ASK)),
        ("DELETE", f"{base}/{REQUEST_ID}", None),
    ]:
        response = jp_asyncio_loop.run_until_complete(
            http_server_client.fetch(url, method=method, body=body, raise_error=False)
        )
        assert response.code == 403, method
    assert seen == []


def test_a_cookie_session_needs_the_xsrf_token_to_ask(
    jp_serverapp: Any,
    jp_base_url: str,
    http_server_client: Any,
    jp_asyncio_loop: Any,
    service: Any,
) -> None:
    seen, answers = service
    answers[REQUESTS_PATH] = (201, PENDING)

    def call(url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("raise_error", False)
        return jp_asyncio_loop.run_until_complete(http_server_client.fetch(url, **kwargs))

    login = call(jp_base_url + "login")
    xsrf = re.search(r"_xsrf=([^;]+)", login.headers.get("Set-Cookie", ""))
    assert xsrf
    token = jp_serverapp.identity_provider.token
    logged_in = call(
        jp_base_url + "login",
        method="POST",
        body=urllib.parse.urlencode({"password": token, "_xsrf": xsrf[1]}),
        headers={"Cookie": f"_xsrf={xsrf[1]}"},
        follow_redirects=False,
    )
    cookies = "; ".join(c.split(";")[0] for c in logged_in.headers.get_list("Set-Cookie"))
    url = jp_base_url + "mlteams/quota-requests"
    refused = call(url, method="POST", body=json.dumps(ASK), headers={"Cookie": cookies})
    assert refused.code == 403
    assert seen == []
    accepted = call(
        url,
        method="POST",
        body=json.dumps(ASK),
        headers={"Cookie": f"{cookies}; _xsrf={xsrf[1]}", "X-XSRFToken": xsrf[1]},
    )
    assert accepted.code == 201
    assert [c["method"] for c in seen] == ["POST"]


# -- the service's answers and its absence ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "parts", "path", "status", "message"),
    [
        (
            "POST",
            (),
            REQUESTS_PATH,
            409,
            "You already have a request pending in team vision; wait for its decision or "
            "withdraw it.",
        ),
        ("POST", (), REQUESTS_PATH, 403, "You are not a member of team vision."),
        ("POST", (), REQUESTS_PATH, 400, "gpus must be a whole number from 1 to 64."),
        (
            "DELETE",
            (REQUEST_ID,),
            f"{REQUESTS_PATH}/{REQUEST_ID}",
            409,
            "That request was already approved.",
        ),
        ("DELETE", (REQUEST_ID,), f"{REQUESTS_PATH}/{REQUEST_ID}", 404, "No such request."),
    ],
)
def test_a_refusal_of_the_service_passes_through_unchanged(
    fetch: Any,
    service: Any,
    method: str,
    parts: tuple[str, ...],
    path: str,
    status: int,
    message: str,
) -> None:
    _, answers = service
    answers[path] = (status, {"status": status, "message": message})
    body = json.dumps(ASK) if method == "POST" else None
    got = refusal(lambda: fetch("mlteams", "quota-requests", *parts, method=method, body=body))
    assert got == (status, {"status": status, "message": message})


@pytest.mark.parametrize("service_state", ["down"])
@pytest.mark.parametrize(
    ("method", "parts"), [("GET", ()), ("POST", ()), ("DELETE", (REQUEST_ID,))]
)
def test_a_service_that_does_not_answer_is_a_503_in_plain_words(
    fetch: Any, method: str, parts: tuple[str, ...]
) -> None:
    body = json.dumps(ASK) if method == "POST" else None
    status, answer = refusal(
        lambda: fetch("mlteams", "quota-requests", *parts, method=method, body=body)
    )
    assert status == 503
    assert answer["message"] == NOT_ANSWERING
    assert NOT_ANSWERING == "The team service is not answering; try again in a minute."


def test_a_proxys_error_page_is_the_same_503(fetch: Any, service: Any) -> None:
    _, answers = service
    answers[REQUESTS_PATH] = (502, "<html>Bad Gateway</html>")
    status, answer = refusal(lambda: fetch("mlteams", "quota-requests"))
    assert (status, answer["message"]) == (503, NOT_ANSWERING)


@pytest.mark.parametrize("service_state", ["unset"])
def test_without_a_service_it_is_not_set_up(fetch: Any) -> None:
    status, answer = refusal(
        lambda: fetch("mlteams", "quota-requests", method="POST", body=json.dumps(ASK))
    )
    assert (status, answer["message"]) == (409, NOT_SET_UP)
    assert "not set up for this server" in NOT_SET_UP
