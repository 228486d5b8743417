"""Sharing a running server within the team, on the rig: JupyterHub's shares, granted only by the
mlteams service after the team rule; users cannot grant shares or share codes themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devenv.hub import LocalHub
from tests.integration.sharing_helpers import (
    SERVICE_API,
    as_user,
    opens_server,
    share,
    unshare,
    user_token,
)
from tests.integration.team_hub_helpers import wait_server_sync

pytestmark = pytest.mark.integration

OWNER = "v-alice"
TEAMMATE = "v-dora"  # vision-engineers
LEAD = "v-lead"  # vision-leads only
OTHER_TEAM = "n-bob"  # nlp-engineers


@pytest.fixture(scope="module")
def running_server(team_hub: LocalHub) -> Iterator[str]:
    """The owner's running server, and the owner's token; every share is taken back after."""
    status, body = team_hub.call(
        "POST", f"/users/{OWNER}/server", {"team": "vision", "profile": "cpu"}
    )
    assert status in (201, 202), body
    token = user_token(team_hub, OWNER)
    try:
        wait_server_sync(team_hub, OWNER, ready=True)
        yield token
    finally:
        for target in ({"user": TEAMMATE}, {"team": "vision"}, {"user": OTHER_TEAM}):
            unshare(team_hub, token, target)
        team_hub.call("DELETE", f"/users/{OWNER}/server")
        wait_server_sync(team_hub, OWNER, ready=False)


def test_users_cannot_grant_shares_or_share_codes_themselves(
    team_hub: LocalHub, running_server: str
) -> None:
    token = running_server
    for path in (f"/hub/api/shares/{OWNER}/", f"/hub/api/share-codes/{OWNER}/"):
        status, body = as_user(team_hub, token, "POST", path, {"user": OTHER_TEAM})
        assert status == 403, body
    assert opens_server(team_hub, user_token(team_hub, OTHER_TEAM), OWNER) == 403


def test_sharing_with_a_teammate_gives_access_and_revoking_takes_it_back(
    team_hub: LocalHub, running_server: str
) -> None:
    owner_token = running_server
    assert opens_server(team_hub, user_token(team_hub, TEAMMATE), OWNER) == 403

    status, body = share(team_hub, owner_token, {"user": TEAMMATE})
    assert status == 201, body
    assert body["team"] == "vision"
    assert body["shared_with"] == {"user": TEAMMATE}
    assert [s["scopes"] for s in body["shares"]] == [[f"access:servers!server={OWNER}/"]]
    assert opens_server(team_hub, user_token(team_hub, TEAMMATE), OWNER) == 200

    status, listed = as_user(team_hub, owner_token, "GET", f"{SERVICE_API}/shares")
    assert status == 200, listed
    assert [(s["kind"], s["user"]["name"]) for s in listed["shares"]] == [("user", TEAMMATE)]

    status, body = unshare(team_hub, owner_token, {"user": TEAMMATE})
    assert status == 204, body
    # a token that the server has not seen yet is refused at once
    assert opens_server(team_hub, user_token(team_hub, TEAMMATE), OWNER) == 403
    status, listed = as_user(team_hub, owner_token, "GET", f"{SERVICE_API}/shares")
    assert listed["shares"] == []


def test_sharing_with_the_team_reaches_its_leads_but_not_other_teams(
    team_hub: LocalHub, running_server: str
) -> None:
    owner_token = running_server
    status, body = share(team_hub, owner_token, {"team": "vision"})
    assert status == 201, body
    groups = sorted(s["group"]["name"] for s in body["shares"] if s["kind"] == "group")
    assert groups == ["vision-engineers", "vision-leads"]
    # and each member of those groups but the owner (tokens carry only a user's own shares)
    users = {s["user"]["name"] for s in body["shares"] if s["kind"] == "user"}
    assert {TEAMMATE, LEAD, "both-carol"} <= users
    assert OWNER not in users and OTHER_TEAM not in users
    assert opens_server(team_hub, user_token(team_hub, LEAD), OWNER) == 200
    assert opens_server(team_hub, user_token(team_hub, OTHER_TEAM), OWNER) == 403

    status, listed = as_user(team_hub, owner_token, "GET", f"{SERVICE_API}/shares")
    assert {s["team"] for s in listed["shares"] if s["kind"] == "group"} == {"vision"}

    assert unshare(team_hub, owner_token, {"team": "vision"})[0] == 204
    assert opens_server(team_hub, user_token(team_hub, LEAD), OWNER) == 403
    assert as_user(team_hub, owner_token, "GET", f"{SERVICE_API}/shares")[1]["shares"] == []


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        (
            {"user": OTHER_TEAM},
            403,
            f"{OTHER_TEAM} is not in your team Vision; sharing outside your teams is turned off "
            "by your platform admins.",
        ),
        ({"team": "nlp"}, 403, "nlp is not one of your teams (Vision)"),
        ({"user": "nobody-here"}, 404, "There is no user nobody-here on this hub."),
        ({"user": OWNER}, 400, "This is your own server"),
        ({"group": "nlp-engineers"}, 400, "Unknown key 'group'"),
    ],
)
def test_refusals_say_why(
    team_hub: LocalHub, running_server: str, target: dict[str, str], status: int, message: str
) -> None:
    got, body = share(team_hub, running_server, target)
    assert got == status, body
    assert body == {"status": status, "message": body["message"]}
    assert message in body["message"]


def test_a_named_server_that_does_not_exist_and_an_anonymous_caller(
    team_hub: LocalHub, running_server: str
) -> None:
    status, body = share(team_hub, running_server, {"user": TEAMMATE}, server="nope")
    assert status == 404, body
    assert body["message"] == "You have no server named 'nope'; start it once, then share it."
    status, body = as_user(team_hub, "not-a-token", "GET", f"{SERVICE_API}/shares")
    assert status in (401, 403), body


def test_the_servers_own_token_may_call_the_service(
    team_hub: LocalHub, running_server: str
) -> None:
    status, tokens = as_user(team_hub, running_server, "GET", f"/hub/api/users/{OWNER}/tokens")
    assert status == 200, tokens
    (server_token,) = [t for t in tokens["api_tokens"] if t["note"].startswith("Server at")]
    assert "access:services!service=mlteams" in server_token["scopes"]
    assert "shares" not in server_token["scopes"]


def test_admins_keep_their_own_sharing_rights(team_hub: LocalHub, running_server: str) -> None:
    admin = user_token(team_hub, "admin")
    path = f"/hub/api/shares/{OWNER}/"
    status, body = as_user(team_hub, admin, "POST", path, {"user": OTHER_TEAM})
    assert status == 200, body
    try:
        assert opens_server(team_hub, user_token(team_hub, OTHER_TEAM), OWNER) == 200
    finally:
        status, body = as_user(team_hub, admin, "PATCH", path, {"user": OTHER_TEAM})
        assert status == 200, body
    assert opens_server(team_hub, admin, OWNER) == 200
