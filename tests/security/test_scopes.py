"""Every endpoint's required scope is documented (docs/admin/api-scopes.md lists every operation
of both OpenAPI descriptions, and nothing else), and every endpoint of the mlteams service
refuses a real token of the team hub that lacks its scope."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from devenv.hub import LocalHub
from tests.integration.sharing_helpers import as_user
from tests.security.rig import scoped_token

pytestmark = [pytest.mark.security]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "admin" / "api-scopes.md"
DESCRIPTIONS = {
    ROOT / "hub_ext" / "service" / "openapi.yaml": "/services/mlteams",
    ROOT / "server_ext" / "server" / "openapi.yaml": "/user/<owner>/mlteams",
}
METHODS = ("get", "post", "put", "patch", "delete")
ACCESS = "access:services!service=mlteams"
PUBLIC = "/api/openapi.yaml"
SAMPLE = {"team": "vision", "model": "iris", "user": "v-alice", "server_name": "gpu"}


def operations(path: Path, prefix: str) -> list[tuple[str, str]]:
    spec = yaml.safe_load(path.read_text())
    return [
        (method.upper(), prefix + route)
        for route, item in spec["paths"].items()
        for method in item
        if method in METHODS
    ]


SERVICE_OPERATIONS = operations(*next(iter(DESCRIPTIONS.items())))


def documented() -> list[tuple[str, str]]:
    rows = re.findall(r"^\| `([A-Z]+) (/[^`]+)` \| (.+) \|$", DOC.read_text(), re.MULTILINE)
    for method, route, needs in rows:
        assert needs.strip(), f"{method} {route} has no required scope in {DOC.name}"
    return [(method, route) for method, route, _ in rows]


@pytest.mark.unit
def test_every_operation_is_documented_with_its_scope() -> None:
    described = [op for path, prefix in DESCRIPTIONS.items() for op in operations(path, prefix)]
    listed = documented()
    assert sorted(set(described) - set(listed)) == [], f"operations missing from {DOC.name}"
    assert sorted(set(listed) - set(described)) == [], f"{DOC.name} lists unknown operations"
    assert len(listed) == len(set(listed)), f"{DOC.name} lists an operation twice"


def concrete(route: str) -> str:
    """A service route with its parameters filled (a request the service can route)."""
    path = route.removeprefix("/services/mlteams")
    path = re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "1"), path)
    if "{decision}" in route:
        path = path.rsplit("/", 1)[0] + "/approve"
    return "/services/mlteams" + path


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_every_service_endpoint_refuses_a_token_without_access_to_the_service(
    team_hub: LocalHub,
) -> None:
    """A member's token asked for without ``access:services!service=mlteams`` (it may still
    read the user's own name) is refused by every operation, with a message."""
    token = scoped_token(team_hub, "v-alice", ["read:users:name!user"], "without the service")
    wrong = []
    for method, route in SERVICE_OPERATIONS:
        if route.endswith(PUBLIC):
            continue
        body = {} if method in ("POST", "PUT", "PATCH") else None
        status, answer = as_user(team_hub, token, method, concrete(route), body)
        if status not in (401, 403) or not answer:
            wrong.append(f"{method} {route}: {status} {str(answer)[:120]}")
    assert not wrong, "answered a token without the service's scope:\n" + "\n".join(wrong)
    # the API's description is public: no data, and the same for everyone
    status, _ = as_user(team_hub, token, "GET", f"/services/mlteams{PUBLIC}")
    assert status == 200


def admin_refusals(team_hub: LocalHub, token: str) -> list[str]:
    """Each admin endpoint that does not refuse ``token`` with a 403 and a message."""
    admin_operations = [op for op in SERVICE_OPERATIONS if "/api/admin/" in op[1]]
    assert admin_operations
    wrong = []
    for method, route in admin_operations:
        body = {} if method == "POST" else None
        status, answer = as_user(team_hub, token, method, concrete(route), body)
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        if status != 403 or not message:
            wrong.append(f"{method} {route}: {status} {str(answer)[:160]}")
    return wrong


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("user", "without"),
    [
        # a lead's token with only what every member holds
        ("v-lead", "the lead scope"),
        # a hub admin's token they limited to less than an admin's reach over the hub's users
        ("admin", "the hub admin's reach"),
    ],
)
def test_admin_endpoints_refuse_a_token_without_the_scope(
    team_hub: LocalHub, user: str, without: str
) -> None:
    """A lead's or a hub admin's token limited to what every member holds is refused by every
    admin endpoint."""
    scopes = [ACCESS, "read:users:name!user", "read:users:groups!user"]
    token = scoped_token(team_hub, user, scopes, f"without {without}")
    wrong = admin_refusals(team_hub, token)
    assert not wrong, "admin endpoints answered a token without the scope:\n" + "\n".join(wrong)
