"""IdP groups to teams: rules from MLTeams, extra rules, and claim shapes of real providers."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy import load_config, user_teams
from hub_ext.policy.group_rules import (
    GroupRuleError,
    GroupsOverageError,
    assign_teams,
    groups_from_claims,
    parse_rules,
    team_rules,
)

pytestmark = pytest.mark.unit

VISION_ID = "8d2f5c1e-3b4a-4c6d-9e7f-0a1b2c3d4e5f"
VISION_LEADS_ID = "1c9e7a55-0b2d-4e8f-a6c4-5d3e2f1a0b9c"
NLP_ID = "f0e1d2c3-b4a5-4968-8776-655443322110"

RAW: dict[str, Any] = {
    "teams": {
        "vision": {
            "groups": ["/ml/vision", "vision-engineers", VISION_ID, "ml-vision@example.com"],
            "lead_groups": ["/ml/vision/leads", "vision-leads", VISION_LEADS_ID],
            "quota": {"gpus": 8, "gpus_per_user": 2},
            "profiles": ["cpu"],
        },
        "nlp": {
            "groups": ["/ml/nlp", "nlp-engineers", NLP_ID, "ml-nlp@example.com"],
            "lead_groups": ["/ml/nlp/leads"],
            "quota": {"gpus": 4},
            "profiles": ["cpu"],
        },
        "research": {"groups": [], "quota": {"gpus": 0}, "profiles": ["cpu"]},
    },
    "profiles": {"cpu": {"image": "example/cpu:1"}},
}
CONFIG = load_config(RAW)
RULES = team_rules(CONFIG)

# Claims as the providers send them (userinfo or ID token), trimmed to what matters here.
KEYCLOAK_FULL_PATH = {
    "sub": "f:2b1c:alice",
    "preferred_username": "alice",
    "groups": ["/ml/vision/interns", "/offices/berlin"],
    "realm_access": {"roles": ["offline_access", "uma_authorization"]},
}
KEYCLOAK_NO_LEADING_SLASH = {"preferred_username": "lena", "groups": ["ml/vision/leads"]}
AZURE_IDS = {
    "aud": "6731de76-14a6-49ae-97bc-6eba6914391e",
    "iss": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "preferred_username": "carol@contoso.com",
    "groups": [VISION_ID.upper(), NLP_ID, "5e0c1f3b-0000-4000-8000-000000000000"],
}
AZURE_OVERAGE = {
    "aud": "6731de76-14a6-49ae-97bc-6eba6914391e",
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "preferred_username": "many@contoso.com",
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {
        "src1": {
            "endpoint": "https://graph.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad"
            "/users/00000000-0000-0000-66f3-3332eca7ea81/getMemberObjects"
        }
    },
}
AZURE_IMPLICIT_OVERAGE = {"preferred_username": "many@contoso.com", "hasgroups": True}
OKTA = {
    "sub": "00u1a2b3c4D5E6F7g8h9",
    "email": "bob@example.com",
    "groups": ["Everyone", "nlp-engineers"],
}
GOOGLE_WITH_GROUPS = {
    "iss": "https://accounts.google.com",
    "email": "dave@Example.com",
    "hd": "example.com",
    "groups": [{"email": "ML-Vision@example.com"}, {"email": "all@example.com"}],
}
GOOGLE_PLAIN = {
    "iss": "https://accounts.google.com",
    "email": "erin@example.com",
    "email_verified": True,
    "hd": "example.com",
}


def teams_of(claims: dict[str, Any], keys: tuple[str, ...] = ("groups",)) -> tuple:
    found = assign_teams(CONFIG, groups_from_claims(claims, keys), RULES)
    return found.teams, found.leads


def test_keycloak_full_paths_and_sub_groups() -> None:
    assert teams_of(KEYCLOAK_FULL_PATH) == (("vision",), ())
    assert teams_of(KEYCLOAK_NO_LEADING_SLASH) == (("vision",), ("vision",))


def test_keycloak_sub_groups_can_be_turned_off() -> None:
    strict = team_rules(CONFIG, subgroups=False)
    groups = groups_from_claims(KEYCLOAK_FULL_PATH, ["groups"])
    assert assign_teams(CONFIG, groups, strict).teams == ()
    assert assign_teams(CONFIG, ["ml/vision"], strict).teams == ("vision",)


def test_path_prefix_is_not_a_sub_group() -> None:
    assert assign_teams(CONFIG, ["/ml/visionary"], RULES).teams == ()
    assert assign_teams(CONFIG, ["/ML/VISION"], RULES).teams == ()


def test_azure_object_ids_match_regardless_of_case() -> None:
    assert teams_of(AZURE_IDS) == (("vision", "nlp"), ())
    assert assign_teams(CONFIG, [VISION_LEADS_ID.upper()], RULES).leads == ("vision",)


@pytest.mark.parametrize("claims", [AZURE_OVERAGE, AZURE_IMPLICIT_OVERAGE])
def test_azure_overage_is_a_clear_error(claims: dict[str, Any]) -> None:
    with pytest.raises(GroupsOverageError) as caught:
        groups_from_claims(claims, ["groups"])
    message = str(caught.value)
    assert "too many groups" in message
    assert "graph_group_lookup" in message
    if "_claim_sources" in claims:
        assert caught.value.endpoint is not None
        assert caught.value.endpoint.endswith("/getMemberObjects")


def test_okta_group_names() -> None:
    assert teams_of(OKTA) == (("nlp",), ())


def test_google_group_emails_and_no_groups_claim() -> None:
    assert teams_of(GOOGLE_WITH_GROUPS) == (("vision",), ())
    assert groups_from_claims(GOOGLE_PLAIN, ["groups"]) == []
    assert teams_of(GOOGLE_PLAIN) == ((), ())


def test_nested_claims_and_several_keys() -> None:
    claims = {"groups": ["vision-engineers"], "realm_access": {"roles": ["nlp-engineers"]}}
    assert groups_from_claims(claims, ["groups", "realm_access.roles"]) == [
        "vision-engineers",
        "nlp-engineers",
    ]
    assert teams_of(claims, ("groups", "realm_access.roles")) == (("vision", "nlp"), ())


def test_single_string_claim_and_junk_entries() -> None:
    assert groups_from_claims({"groups": "vision-engineers"}, ["groups"]) == ["vision-engineers"]
    assert groups_from_claims({"groups": [1, None, {"x": 1}, "a", "a"]}, ["groups"]) == ["a"]


def test_lead_is_member_and_hub_groups_agree_with_policy() -> None:
    found = assign_teams(CONFIG, ["vision-leads", "/ml/nlp"], RULES)
    assert found.teams == ("vision", "nlp")
    assert found.leads == ("vision",)
    assert found.hub_groups == ["nlp", "vision", "vision-leads"]
    memberships = user_teams(CONFIG, found.hub_groups)
    assert [(m.name, m.is_lead) for m in memberships] == [("vision", True), ("nlp", False)]


def test_no_team() -> None:
    found = assign_teams(CONFIG, ["Everyone", "/offices/berlin"], RULES)
    assert found.teams == ()
    assert found.hub_groups == []
    assert found.idp_groups == ("/offices/berlin", "Everyone")


def test_glob_and_regex_rules() -> None:
    extra = parse_rules(
        [
            {"glob": "okta-ml-vision-*", "team": "vision"},
            {"regex": r"ml-(?P<team>[a-z]+)-owners", "lead": True},
            {"regex": r"RES-\d+", "team": "research"},
        ],
        CONFIG.teams,
    )
    rules = team_rules(CONFIG, extra)
    assert assign_teams(CONFIG, ["okta-ml-vision-berlin"], rules).teams == ("vision",)
    owners = assign_teams(CONFIG, ["ml-nlp-owners"], rules)
    assert (owners.teams, owners.leads) == (("nlp",), ("nlp",))
    assert assign_teams(CONFIG, ["ml-ghost-owners"], rules).teams == ()
    assert assign_teams(CONFIG, ["RES-42"], rules).teams == ("research",)
    assert assign_teams(CONFIG, ["xRES-42"], rules).teams == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"glob": "a*"}, "group_rules[0].team: is required"),
        ({"glob": "a*", "team": "ghost"}, "group_rules[0].team: 'ghost' is not a team"),
        ({"regex": "(", "team": "nlp"}, "group_rules[0].regex: not a valid regular expression"),
        ({"regex": "a.*"}, "group_rules[0].team: is required unless the regex"),
        ({"glob": "a", "regex": "b", "team": "nlp"}, "needs exactly one of glob or regex"),
        ({"glob": "a", "team": "nlp", "teams": 1}, "group_rules[0].teams: unknown key"),
        ({"glob": "a", "team": "nlp", "lead": "yes"}, "group_rules[0].lead: must be true"),
        ("a*", "group_rules[0]: must be a mapping"),
    ],
)
def test_bad_rules_name_the_key(raw: Any, expected: str) -> None:
    with pytest.raises(GroupRuleError) as caught:
        parse_rules([raw], CONFIG.teams)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("TeamOAuthenticator.group_rules[0]")
