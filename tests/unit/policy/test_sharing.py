"""Sharing a server: with teammates only unless the admins allow more, in the user's words."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy.config import Sharing
from hub_ext.policy.sharing import (
    ShareGrant,
    ShareTarget,
    SharingRefused,
    decide_share,
    parse_target,
    team_for_group,
    team_hub_groups,
)
from tests.unit.policy.sample import sample_config

pytestmark = pytest.mark.unit

CONFIG = sample_config()
TEAM_ONLY = Sharing()
ANYONE = Sharing(outside_team=True)
VISION = ["vision-engineers"]
NLP = ["/ml/nlp"]
OUTSIDE = "sharing outside your teams is turned off by your platform admins."
OWN_SERVER = "This is your own server: you have access to it already."
ASK = 'Send a JSON object naming whom to share with: {"user": "<name>"} or {"team": "<team>"}.'
VISION_GROUPS = ("vision", "vision-leads", "/ml/vision", "vision-engineers", "/ml/vision/leads")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"user": "bob"}, ShareTarget("user", "bob")),
        ({"team": "vision"}, ShareTarget("team", "vision")),
        ({"user": " bob "}, ShareTarget("user", "bob")),
    ],
)
def test_parse_target(body: Any, expected: ShareTarget) -> None:
    assert parse_target(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, ASK),
        (["bob"], ASK),
        ({}, 'Name exactly one of "user" or "team" to share with, not neither.'),
        (
            {"user": "bob", "team": "vision"},
            'Name exactly one of "user" or "team" to share with, not both.',
        ),
        (
            {"group": "vision"},
            'Unknown key \'group\': name whom to share with as "user" or "team".',
        ),
        (
            {"user": "bob", "scopes": ["admin:users"]},
            'Unknown key \'scopes\': name whom to share with as "user" or "team".',
        ),
        (
            {"user": "bob", "scopes": [], "group": "vision"},
            "Unknown key 'group', 'scopes': name whom to share with as \"user\" or \"team\".",
        ),
        ({"user": ""}, "\"user\" must be a non-empty name, got ''."),
        ({"team": 3}, "\"team\" must be a non-empty name, got '3'."),
    ],
)
def test_parse_target_refuses_bad_bodies(body: Any, message: str) -> None:
    with pytest.raises(SharingRefused) as refused:
        parse_target(body)
    assert refused.value.message == message
    assert str(refused.value) == message
    assert refused.value.http_status == 400


def test_team_hub_groups_and_back() -> None:
    assert team_hub_groups(CONFIG.teams["vision"]) == VISION_GROUPS
    assert team_for_group(CONFIG, "vision-engineers") == "vision"
    assert team_for_group(CONFIG, "nlp-leads") == "nlp"
    assert team_for_group(CONFIG, "unrelated") is None


def decide(
    sharing: Sharing,
    owner_groups: list[str],
    target: ShareTarget,
    target_groups: list[str] | None,
    existing: dict[str, list[str]] | None,
) -> ShareGrant:
    """``decide_share`` for the owner alice."""
    return decide_share(
        CONFIG,
        sharing,
        owner="alice",
        owner_groups=owner_groups,
        target=target,
        target_groups=target_groups,
        existing_groups=existing,
    )


@pytest.mark.parametrize(
    ("sharing", "owner_groups", "target", "target_groups", "existing", "grant"),
    [
        # a teammate, however their membership is spelled in the hub's groups
        (TEAM_ONLY, VISION, ShareTarget("user", "bob"), ["/ml/vision"], None, "vision"),
        (TEAM_ONLY, VISION, ShareTarget("user", "bob"), ["vision-leads"], None, "vision"),
        # the first team both are in
        (TEAM_ONLY, [*VISION, *NLP], ShareTarget("user", "bob"), ["/ml/nlp"], None, "nlp"),
        # anyone, when the admins allow it; a shared team is still named
        (ANYONE, VISION, ShareTarget("user", "bob"), ["/ml/nlp"], None, None),
        (ANYONE, [], ShareTarget("user", "bob"), [], None, None),
        (ANYONE, VISION, ShareTarget("user", "bob"), VISION, None, "vision"),
        # the owner's own team, through its groups that exist on the hub
        (TEAM_ONLY, VISION, ShareTarget("team", "vision"), None, None, "vision"),
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("team", "vision"),
            None,
            {"vision-engineers": ["alice", "bob"], "vision-leads": ["carol"], "nlp": ["dan"]},
            "vision",
        ),
        (ANYONE, VISION, ShareTarget("team", "nlp"), None, None, "nlp"),
    ],
)
def test_allowed_shares(
    sharing: Sharing,
    owner_groups: list[str],
    target: ShareTarget,
    target_groups: list[str] | None,
    existing: dict[str, list[str]] | None,
    grant: str | None,
) -> None:
    decided = decide(sharing, owner_groups, target, target_groups, existing)
    assert isinstance(decided, ShareGrant)
    assert decided.target == target
    assert decided.team == grant
    if target.kind == "user":
        assert (decided.groups, decided.users) == ((), (target.name,))
    elif existing is None:
        assert decided.groups == team_hub_groups(CONFIG.teams[target.name])
        assert decided.users == ()
    else:
        # the team's groups that exist, and their members but the owner
        assert decided.groups == ("vision-leads", "vision-engineers")
        assert decided.users == ("bob", "carol")


@pytest.mark.parametrize(
    ("sharing", "owner_groups", "target", "target_groups", "existing", "status", "message"),
    [
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("user", "bob"),
            NLP,
            None,
            403,
            "bob is not in your team vision; sharing outside your teams is turned off by your "
            "platform admins.",
        ),
        (
            TEAM_ONLY,
            [*VISION, "/ml/research"],
            ShareTarget("user", "bob"),
            NLP,
            None,
            403,
            "bob is not in any of your teams (vision, research); " + OUTSIDE,
        ),
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("user", "bob"),
            [],
            None,
            403,
            "bob is not in your team vision; " + OUTSIDE,
        ),
        (
            TEAM_ONLY,
            [],
            ShareTarget("user", "bob"),
            VISION,
            None,
            403,
            "You are not a member of any ML team, and " + OUTSIDE,
        ),
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("user", "ghost"),
            None,
            None,
            404,
            "There is no user ghost on this hub.",
        ),
        (ANYONE, VISION, ShareTarget("user", "alice"), VISION, None, 400, OWN_SERVER),
        (TEAM_ONLY, VISION, ShareTarget("user", "alice"), VISION, None, 400, OWN_SERVER),
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("team", "nlp"),
            None,
            None,
            403,
            "nlp is not one of your teams (vision); " + OUTSIDE,
        ),
        # a team that does not exist reads like a team that is not the owner's
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("team", "secret-project"),
            None,
            None,
            403,
            "secret-project is not one of your teams (vision); " + OUTSIDE,
        ),
        (
            ANYONE,
            VISION,
            ShareTarget("team", "secret-project"),
            None,
            None,
            404,
            "There is no team secret-project on this hub.",
        ),
        (
            TEAM_ONLY,
            [],
            ShareTarget("team", "vision"),
            None,
            None,
            403,
            "You are not a member of any ML team, and " + OUTSIDE,
        ),
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("team", "vision"),
            None,
            {"nlp": ["dan"]},
            409,
            "Team vision has no group on the hub yet (nobody of the team has signed in), so "
            "there is nobody to share with.",
        ),
        # untrusted names are shown sanitised
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("user", "<script>"),
            NLP,
            None,
            403,
            "?script? is not in your team vision; " + OUTSIDE,
        ),
        # a long name is cut after 64 characters
        (
            TEAM_ONLY,
            VISION,
            ShareTarget("user", "b" * 64 + "c"),
            NLP,
            None,
            403,
            "b" * 64 + "... is not in your team vision; " + OUTSIDE,
        ),
    ],
)
def test_refused_shares(
    sharing: Sharing,
    owner_groups: list[str],
    target: ShareTarget,
    target_groups: list[str] | None,
    existing: dict[str, list[str]] | None,
    status: int,
    message: str,
) -> None:
    with pytest.raises(SharingRefused) as refused:
        decide(sharing, owner_groups, target, target_groups, existing)
    assert refused.value.message == message
    assert refused.value.http_status == status
