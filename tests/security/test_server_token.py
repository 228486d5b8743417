"""A single-user server's own hub token (``$JUPYTERHUB_API_TOKEN``, read from the server's
process as an operator of the node can) reaches what the server needs and nothing else: its own
user and server, the mlteams service for its own team; not other users, other servers, the hub's
admin API, another team's data or the admin pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.hub import LocalHub
from tests.integration.sharing_helpers import SERVICE_API, as_user
from tests.integration.team_hub_helpers import wait_server_sync
from tests.security.rig import scoped_token, server_environment

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.timeout(420)]

OWNER, OTHER = "v-dora", "n-erin"
SERVER_DESCRIPTION = Path(__file__).resolve().parents[2] / "server_ext" / "server" / "openapi.yaml"
SERVERS = {OWNER: {"team": "vision", "profile": "cpu"}, OTHER: {"team": "nlp", "profile": "cpu"}}


def _running(hub: LocalHub, user: str) -> bool:
    status, model = hub.call("GET", f"/users/{user}")
    assert status == 200, model
    return bool(model.get("servers", {}).get(""))


@pytest.fixture(scope="module")
def servers(team_hub: LocalHub) -> Iterator[dict[str, str]]:
    """Both users' default servers running (started here when they were not); the owner's
    environment as its process has it."""
    started = []
    try:
        for user, options in SERVERS.items():
            if not _running(team_hub, user):
                status, body = team_hub.call("POST", f"/users/{user}/server", options)
                assert status in (201, 202), body
                started.append(user)
        for user in SERVERS:
            wait_server_sync(team_hub, user, ready=True)
        yield server_environment(team_hub, OWNER)
    finally:
        for user in started:
            team_hub.call("DELETE", f"/users/{user}/server")
        for user in started:
            wait_server_sync(team_hub, user, ready=False)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


REFUSED = (403, 404)
CASES: list[tuple[str, str, str, Any, tuple[int, ...]]] = [
    # what it must reach
    ("its own user model", "GET", "/hub/api/user", None, (200,)),
    ("its own activity", "POST", f"/hub/api/users/{OWNER}/activity", "now", (200,)),
    ("its own server", "GET", f"/user/{OWNER}/api/status", None, (200,)),
    ("the service, its own team", "GET", f"{SERVICE_API}/teams/vision", None, (200,)),
    ("the service, its own shares", "GET", f"{SERVICE_API}/shares", None, (200,)),
    # what it must not
    ("another user's model", "GET", f"/hub/api/users/{OTHER}", None, REFUSED),
    ("the list of users", "GET", "/hub/api/users", None, REFUSED),
    ("a token for itself", "POST", f"/hub/api/users/{OWNER}/tokens", {}, REFUSED),
    ("a token for another user", "POST", f"/hub/api/users/{OTHER}/tokens", {}, REFUSED),
    ("its own tokens' list", "GET", f"/hub/api/users/{OWNER}/tokens", None, REFUSED),
    ("the groups", "GET", "/hub/api/groups", None, REFUSED),
    (
        "a change of a group",
        "POST",
        "/hub/api/groups/vision-engineers/users",
        {"users": [OTHER]},
        REFUSED,
    ),
    ("another user's server start", "POST", f"/hub/api/users/{OTHER}/server", {}, REFUSED),
    ("its own server's stop", "DELETE", f"/hub/api/users/{OWNER}/server", None, REFUSED),
    ("another user's server", "GET", f"/user/{OTHER}/api/status", None, REFUSED),
    ("the proxy's routes", "GET", "/hub/api/proxy", None, REFUSED),
    ("the service, another team", "GET", f"{SERVICE_API}/teams/nlp", None, REFUSED),
    ("the service's admin API", "GET", f"{SERVICE_API}/admin/teams", None, REFUSED),
    ("the admin pages", "GET", "/services/mlteams-admin/", None, REFUSED),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "expected"), CASES, ids=[case[0] for case in CASES]
)
def test_a_servers_own_token_reaches_only_what_it_must(
    team_hub: LocalHub,
    servers: dict[str, str],
    what: str,
    method: str,
    path: str,
    body: Any,
    expected: tuple[int, ...],
) -> None:
    token = servers["JUPYTERHUB_API_TOKEN"]
    if body == "now":
        body = {"last_activity": _now(), "servers": {"": {"last_activity": _now()}}}
    status, answer = as_user(team_hub, token, method, path, body)
    assert status in expected, f"{what}: {method} {path} answered {status}: {str(answer)[:300]}"
    if status in REFUSED and isinstance(answer, dict) and "message" in answer:
        assert answer["message"], f"{what}: a refusal without a message"


def test_the_servers_token_is_the_one_its_pod_was_given(
    team_hub: LocalHub, servers: dict[str, str]
) -> None:
    """The token read from the process is the server's own (the hub names its owner and says
    it is a server's token), so the table above tests what a server really holds."""
    status, model = as_user(team_hub, servers["JUPYTERHUB_API_TOKEN"], "GET", "/hub/api/user")
    assert status == 200, model
    assert model["name"] == OWNER
    scopes = set(model["scopes"])
    assert f"access:servers!server={OWNER}/" in scopes, scopes
    assert "access:services!service=mlteams" in scopes, scopes
    assert not [scope for scope in scopes if scope.startswith(("admin", "tokens", "groups"))]


def test_every_endpoint_of_a_server_refuses_a_token_without_access_to_it(
    team_hub: LocalHub, servers: dict[str, str]
) -> None:
    """Each operation of the server extension (``/user/<owner>/mlteams/...``, as its OpenAPI
    description lists them) refuses a token without ``access:servers`` on that server: the
    other user's own server token, and the owner's own token limited to reading their name."""
    spec = yaml.safe_load(SERVER_DESCRIPTION.read_text())
    operations = [
        (method.upper(), route)
        for route, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert operations
    other = server_environment(team_hub, OTHER)["JUPYTERHUB_API_TOKEN"]
    limited = scoped_token(team_hub, OWNER, ["read:users:name!user"], "without its server")
    wrong = []
    for token_name, token in (
        ("the other user's server token", other),
        ("the owner's limited token", limited),
    ):
        for method, route in operations:
            path = f"/user/{OWNER}/mlteams" + re.sub(r"\{(\w+)\}", "x1", route)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            status, answer = as_user(team_hub, token, method, path, body)
            if status not in (401, 403, 404):
                wrong.append(f"{token_name}: {method} {route}: {status} {str(answer)[:120]}")
    assert not wrong, "answered a token without access to the server:\n" + "\n".join(wrong)
