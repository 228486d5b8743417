"""Team-lead roles: the role each team's leads get, and the lead scopes an admin may configure."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy.lead_roles import LeadScopeError, check_lead_scopes, lead_role, lead_roles

pytestmark = pytest.mark.unit


def test_the_lead_role_of_a_team_is_filtered_to_it_and_given_to_its_leads_group() -> None:
    assert lead_role("vision", ["admin-ui", "read:servers!group={team}"]) == {
        "name": "mlteams-lead-vision",
        "description": "Lead of team vision: sees and stops the team's servers",
        "scopes": ["admin-ui", "read:servers!group=vision"],
        "groups": ["vision-leads"],
    }


def test_one_lead_role_per_team_in_order() -> None:
    roles = lead_roles(["nlp", "vision"], ["list:users!group={team}"])
    assert [(role["name"], role["scopes"], role["groups"]) for role in roles] == [
        ("mlteams-lead-nlp", ["list:users!group=nlp"], ["nlp-leads"]),
        ("mlteams-lead-vision", ["list:users!group=vision"], ["vision-leads"]),
    ]


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        (
            ["admin-ui", ""],
            "TeamOAuthenticator.lead_scopes[1]: must be a non-empty string",
        ),
        (
            [42],
            "TeamOAuthenticator.lead_scopes[0]: must be a non-empty string",
        ),
        (
            ["admin:servers!group={team}"],
            "TeamOAuthenticator.lead_scopes[0]: 'admin:servers!group={team}' is never given to "
            "team leads; allowed are admin-ui, read:hub and scopes ending in !group={team}",
        ),
        (
            ["read:servers"],
            "TeamOAuthenticator.lead_scopes[0]: 'read:servers' must be filtered to the lead's "
            "team: write read:servers!group={team}",
        ),
    ],
)
def test_a_refused_lead_scope_is_named_with_its_key(scopes: list[Any], message: str) -> None:
    with pytest.raises(LeadScopeError) as caught:
        check_lead_scopes(scopes)
    assert str(caught.value) == message


def test_a_refused_lead_scope_is_named_below_the_key_given() -> None:
    scopes: list[Any] = ["read:hub", None]
    with pytest.raises(LeadScopeError) as caught:
        check_lead_scopes(scopes, key="c.TeamOAuthenticator.lead_scopes")
    assert str(caught.value) == "c.TeamOAuthenticator.lead_scopes[1]: must be a non-empty string"
