"""``/mlteams/team/live`` through a real Jupyter server, forwarding to a small HTTP server in the
test's loop that answers as the ``mlteams`` service (``test_promote_api``'s ``Recorder``); the
service's own side is ``tests/unit/service/test_team_live.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from devenv.procs import free_port
from server_ext.server.team_live_handlers import (
    NOT_ANSWERING_NOTE,
    NOT_ANSWERING_REASON,
    NOT_SET_UP_NOTE,
    NOT_SET_UP_REASON,
)
from tests.jupyter_server_fixtures import SERVER_FIXTURES, fetch
from tests.unit.server.test_promote_api import SERVER_TOKEN, service, service_port

__all__ = ["fetch", "service", "service_port"]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

globals().update(SERVER_FIXTURES)

TEAM_PATH = "/services/mlteams/api/teams/vision"
QUOTA = {
    "team": "vision",
    "display_name": "Team Vision",
    "gpus": 8,
    "gpus_per_user": 2,
    "contact": None,
}
LIVE = {
    "team": "vision",
    "display_name": "Team Vision",
    "source": "live",
    "note": None,
    "gpus": {
        "limit": 8,
        "in_use": 5,
        "free": 3,
        "per_user_limit": 2,
        "you_hold": 1,
        "queue": [{"user": "v-x", "gpus": 1, "position": 1}],
    },
    "promotion": {
        "available": True,
        "reason": None,
        "high_stakes": False,
        "approvers": "a lead of team vision",
        "gates": [],
    },
}


@pytest.fixture
def service_state() -> str:
    """``up``: the service listens; ``down``: nothing listens where the hub said it is;
    ``unset``: the hub told the server of no service."""
    return "up"


@pytest.fixture
def service_url(service_port: int, service_state: str) -> str | None:
    port = free_port() if service_state == "down" else service_port
    return None if service_state == "unset" else f"http://127.0.0.1:{port}/services/mlteams/"


@pytest.fixture
def jp_server_config(monkeypatch: pytest.MonkeyPatch, service_url: str | None) -> dict[str, Any]:
    if service_url is None:
        monkeypatch.delenv("MLTEAMS_SERVICE_URL", raising=False)
    else:
        monkeypatch.setenv("MLTEAMS_SERVICE_URL", service_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    monkeypatch.setenv("MLTEAMS_TEAM", "vision")
    monkeypatch.setenv("MLTEAMS_GPUS", "1")
    monkeypatch.setenv("MLTEAMS_QUOTA", json.dumps(QUOTA))
    return {
        "ServerApp": {"jpserver_extensions": {"server_ext": True}},
        "MLTeamsExtension": {"team": "vision", "user": "alice"},
    }


def spawn_figures(note: str, reason: str) -> dict[str, Any]:
    return {
        "team": "vision",
        "display_name": "Team Vision",
        "source": "spawn",
        "note": note,
        "gpus": {
            "limit": 8,
            "in_use": None,
            "free": None,
            "per_user_limit": 2,
            "you_hold": 1,
            "queue": [],
        },
        "promotion": {
            "available": False,
            "reason": reason,
            "high_stakes": None,
            "approvers": None,
            "gates": [],
        },
    }


def test_the_live_figures_come_from_the_service_with_the_servers_token(
    fetch: Any, service: Any
) -> None:
    seen, answers = service
    answers[TEAM_PATH] = (200, LIVE)
    response = fetch("mlteams", "team", "live")
    assert response.code == 200
    assert json.loads(response.body) == LIVE
    (call,) = seen
    assert (call["method"], call["path"]) == ("GET", TEAM_PATH)
    assert call["authorization"] == f"token {SERVER_TOKEN}"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "You are not a member of team vision; only its members see its figures."),
        (404, "There is no team 'vision'."),
    ],
)
def test_a_refusal_of_the_service_passes_through_unchanged(
    fetch: Any, service: Any, status: int, message: str
) -> None:
    _, answers = service
    answers[TEAM_PATH] = (status, {"status": status, "message": message})
    with pytest.raises(HTTPClientError) as info:
        fetch("mlteams", "team", "live")
    assert info.value.code == status
    assert json.loads(info.value.response.body) == {"status": status, "message": message}


@pytest.mark.parametrize("service_state", ["down"])
def test_a_service_that_does_not_answer_gives_the_spawn_figures(fetch: Any) -> None:
    response = fetch("mlteams", "team", "live")
    assert response.code == 200
    assert json.loads(response.body) == spawn_figures(NOT_ANSWERING_NOTE, NOT_ANSWERING_REASON)
    assert NOT_ANSWERING_NOTE == (
        "Live figures are unavailable (the team service is not answering); these are your "
        "team's limits as they were when your server started."
    )


@pytest.mark.parametrize(
    "answer",
    [
        (503, {"status": 503, "message": "The hub is not answering right now."}),
        (502, "<html>Bad Gateway</html>"),
    ],
)
def test_a_failing_service_or_a_proxys_page_gives_the_spawn_figures(
    fetch: Any, service: Any, answer: tuple[int, Any]
) -> None:
    seen, answers = service
    answers[TEAM_PATH] = answer
    response = fetch("mlteams", "team", "live")
    assert response.code == 200
    assert json.loads(response.body) == spawn_figures(NOT_ANSWERING_NOTE, NOT_ANSWERING_REASON)
    assert [call["path"] for call in seen] == [TEAM_PATH]


@pytest.mark.parametrize("service_state", ["unset"])
def test_without_a_service_the_note_says_it_is_not_set_up(fetch: Any) -> None:
    response = fetch("mlteams", "team", "live")
    assert response.code == 200
    assert json.loads(response.body) == spawn_figures(NOT_SET_UP_NOTE, NOT_SET_UP_REASON)
    assert "(the team service is not set up for this server)" in NOT_SET_UP_NOTE
