"""IdP groups to teams: rules from MLTeams, extra rules, and claim shapes of real providers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from hub_ext.policy import load_config, user_teams
from hub_ext.policy.group_rules import (
    GroupRule,
    GroupRuleError,
    GroupsOverageError,
    TeamAssignment,
    assign_teams,
    groups_from_claims,
    overage_endpoint,
    parse_rules,
    rule_for,
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


def rules(extra: Sequence[GroupRule] = (), subgroups: bool = True) -> list[GroupRule]:
    """The rules of the teams in ``RAW``, built afresh by each test that uses them."""
    return team_rules(CONFIG, extra, subgroups)


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
AZURE_OVERAGE_ENDPOINT = (
    "https://graph.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad"
    "/users/00000000-0000-0000-66f3-3332eca7ea81/getMemberObjects"
)
AZURE_OVERAGE = {
    "aud": "6731de76-14a6-49ae-97bc-6eba6914391e",
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "preferred_username": "many@contoso.com",
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {"src1": {"endpoint": AZURE_OVERAGE_ENDPOINT}},
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
    found = assign_teams(CONFIG, groups_from_claims(claims, keys), rules())
    return found.teams, found.leads


def test_keycloak_full_paths_and_sub_groups() -> None:
    assert teams_of(KEYCLOAK_FULL_PATH) == (("vision",), ())
    assert teams_of(KEYCLOAK_NO_LEADING_SLASH) == (("vision",), ("vision",))


def test_keycloak_sub_groups_can_be_turned_off() -> None:
    strict = rules(subgroups=False)
    groups = groups_from_claims(KEYCLOAK_FULL_PATH, ["groups"])
    assert assign_teams(CONFIG, groups, strict).teams == ()
    assert assign_teams(CONFIG, ["ml/vision"], strict).teams == ("vision",)


def test_path_prefix_is_not_a_sub_group() -> None:
    assert assign_teams(CONFIG, ["/ml/visionary"], rules()).teams == ()
    assert assign_teams(CONFIG, ["/ML/VISION"], rules()).teams == ()


def test_azure_object_ids_match_regardless_of_case() -> None:
    assert teams_of(AZURE_IDS) == (("vision", "nlp"), ())
    assert assign_teams(CONFIG, [VISION_LEADS_ID.upper()], rules()).leads == ("vision",)


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
    found = assign_teams(CONFIG, ["vision-leads", "/ml/nlp"], rules())
    assert found.teams == ("vision", "nlp")
    assert found.leads == ("vision",)
    assert found.hub_groups == ["nlp", "vision", "vision-leads"]
    memberships = user_teams(CONFIG, found.hub_groups)
    assert [(m.name, m.is_lead) for m in memberships] == [("vision", True), ("nlp", False)]


def test_no_team() -> None:
    found = assign_teams(CONFIG, ["Everyone", "/offices/berlin"], rules())
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
    berlin = assign_teams(CONFIG, ["okta-ml-vision-berlin"], rules)
    assert (berlin.teams, berlin.leads) == (("vision",), ())
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


GRAPH = "https://graph.microsoft.com/v1.0/users/00000000-0000-0000-66f3-3332eca7ea81/memberOf"
OVERAGE_ADVICE = (
    ". A platform admin can limit the claim to the groups assigned to the hub's application "
    "(Azure: Token configuration, 'Groups assigned to the application') or turn on "
    "TeamOAuthenticator.graph_group_lookup."
)


@pytest.mark.parametrize(
    ("claims", "endpoint", "message"),
    [
        (
            AZURE_OVERAGE,
            AZURE_OVERAGE_ENDPOINT,
            "The identity provider did not list your groups in the 'groups' claim because you "
            "are in too many groups (Azure AD groups overage); it points to "
            f"{AZURE_OVERAGE_ENDPOINT} instead{OVERAGE_ADVICE}",
        ),
        (
            AZURE_IMPLICIT_OVERAGE,
            None,
            "The identity provider did not list your groups in the 'groups' claim because you "
            f"are in too many groups (Azure AD groups overage){OVERAGE_ADVICE}",
        ),
    ],
)
def test_the_overage_message_word_for_word(
    claims: dict[str, Any], endpoint: str | None, message: str
) -> None:
    """The user reads which claim was replaced, where the provider points to, and what a
    platform admin can do about it."""
    with pytest.raises(GroupsOverageError) as caught:
        groups_from_claims(claims, ["groups"])
    assert (caught.value.claim, caught.value.endpoint, str(caught.value)) == (
        "groups",
        endpoint,
        message,
    )


@pytest.mark.parametrize(
    ("claims", "claim", "expected"),
    [
        ({"_claim_names": {"groups": "src1"}}, "groups", (True, None)),
        ({"_claim_names": {"groups": "src1"}, "_claim_sources": "src1"}, "groups", (True, None)),
        (
            {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": GRAPH}},
            "groups",
            (True, None),
        ),
        (
            {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": 7}}},
            "groups",
            (True, None),
        ),
        (
            {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": GRAPH}}},
            "groups.names",
            (True, GRAPH),
        ),
        ({"_claim_names": {"roles": "src1"}}, "groups", (False, None)),
        ({"_claim_names": ["groups"]}, "groups", (False, None)),
        ({"hasgroups": True}, "groups", (True, None)),
        ({"hasgroups": "true"}, "groups", (True, None)),
        ({"hasgroups": "yes"}, "groups", (False, None)),
        ({"hasgroups": False}, "groups", (False, None)),
        ({"hasgroups": True, "groups": ["vision-engineers"]}, "groups", (False, None)),
        ({"hasgroups": True, "realm": {"groups": []}}, "realm.groups", (False, None)),
        ({}, "groups", (False, None)),
    ],
)
def test_overage_markers_and_their_endpoint(
    claims: dict[str, Any], claim: str, expected: tuple[bool, str | None]
) -> None:
    """An overage marker names the top-level claim; only a text endpoint of a source object is
    passed on, and ``hasgroups`` counts only while the claim itself is missing."""
    assert overage_endpoint(claims, claim) == expected


def test_a_missing_claim_does_not_hide_the_next_one() -> None:
    """Each claim key is looked at, even after one that the provider did not send."""
    claims = {"roles": ["nlp-engineers"], "realm_access": {"roles": ["vision-engineers"]}}
    assert groups_from_claims(claims, ["groups", "roles", "realm_access.roles"]) == [
        "nlp-engineers",
        "vision-engineers",
    ]


def test_a_group_object_gives_its_first_text_name() -> None:
    """Fields that are empty or not text are passed over for the next one in order."""
    entries = [
        {"path": 7, "name": "", "displayName": "nlp-engineers"},
        {"path": None, "id": VISION_ID, "value": "ignored"},
        {"email": ["x@example.com"]},
    ]
    assert groups_from_claims({"groups": entries}, ["groups"]) == ["nlp-engineers", VISION_ID]


def test_group_names_that_are_not_text_or_empty_are_ignored() -> None:
    groups: list[Any] = ["vision-engineers", 5, None, "", "Everyone"]
    found = assign_teams(CONFIG, groups, rules())
    assert found == TeamAssignment(("Everyone", "vision-engineers"), ("vision",), ())


def test_a_group_name_that_only_starts_like_a_path_is_not_that_group() -> None:
    assert assign_teams(CONFIG, ["/ml/visionX", "X/ml/nlp", "ml/nlp/"], rules()).teams == ("nlp",)


def test_the_assignment_kept_in_the_auth_state() -> None:
    """The IdP groups sorted, the teams in configuration order and the led teams."""
    found = assign_teams(CONFIG, ["vision-leads", "/ml/nlp", "Everyone"], rules())
    assert found.as_dict() == {
        "idp_groups": ["/ml/nlp", "Everyone", "vision-leads"],
        "teams": ["vision", "nlp"],
        "leads": ["vision"],
    }


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("/ml/vision", "path"),
        ("ml/vision", "path"),
        ("vision-engineers", "exact"),
        ("ML-Vision@example.com", "exact"),
        (VISION_ID, "exact"),
    ],
)
def test_a_team_group_entry_is_a_path_or_an_exact_name(name: str, kind: str) -> None:
    """Without other arguments the rule makes members (not leads) and takes in sub-groups."""
    assert rule_for(name, "vision") == GroupRule(kind, name, "vision", False, True)


def test_exact_names_fold_case_only_for_e_mail_addresses_and_ids() -> None:
    rule = rule_for("ML-Vision@example.com", "vision")
    assert [rule.match(g) for g in ("ml-vision@EXAMPLE.com", "ML-Vision@example.co")] == [
        "vision",
        None,
    ]
    named = rule_for("vision.engineers", "vision")
    assert [
        named.match(g) for g in ("vision.engineers", "VISION.engineers", "visionXengineers")
    ] == [
        "vision",
        None,
        None,
    ]


DECLARED = "declared: nlp, research, vision"


@pytest.mark.parametrize(
    ("raw", "teams", "message"),
    [
        (
            {"glob": "a*", "team": "nlp"},
            CONFIG.teams,
            "TeamOAuthenticator.group_rules: must be a list of rules, got dict",
        ),
        (
            [{"glob": "a*", "team": "nlp"}, "b*"],
            CONFIG.teams,
            "TeamOAuthenticator.group_rules[1]: must be a mapping with glob or regex, and team",
        ),
        (
            [{"glob": "a", "team": "nlp", "teams": 1}],
            CONFIG.teams,
            "TeamOAuthenticator.group_rules[0].teams: unknown key; allowed keys: glob, regex, "
            "team, lead, description",
        ),
        (
            [{"glob": "", "team": "nlp"}],
            CONFIG.teams,
            "TeamOAuthenticator.group_rules[0].glob: must be a non-empty string",
        ),
        (
            [{"regex": 5, "team": "nlp"}],
            CONFIG.teams,
            "TeamOAuthenticator.group_rules[0].regex: must be a non-empty string",
        ),
        (
            [{"glob": "a*", "team": "ghost"}],
            CONFIG.teams,
            f"TeamOAuthenticator.group_rules[0].team: 'ghost' is not a team under MLTeams.teams; "
            f"{DECLARED}",
        ),
        (
            [{"glob": "a*", "team": 3}],
            CONFIG.teams,
            f"TeamOAuthenticator.group_rules[0].team: 3 is not a team under MLTeams.teams; "
            f"{DECLARED}",
        ),
        (
            [{"glob": "a*", "team": "ghost"}],
            [],
            "TeamOAuthenticator.group_rules[0].team: 'ghost' is not a team under MLTeams.teams; "
            "declared: none",
        ),
    ],
)
def test_a_bad_rule_is_refused_word_for_word(raw: Any, teams: Any, message: str) -> None:
    """The platform admin reads where the rule is, what is wrong and what is allowed."""
    with pytest.raises(GroupRuleError) as caught:
        parse_rules(raw, teams)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("subgroups", "groups", "expected"),
    [
        (None, ["/ml/vision/interns"], (("vision",), ())),
        (None, ["/ml/vision/leads/deputies"], (("vision",), ("vision",))),
        (True, ["/ml/nlp/leads/deputies"], (("nlp",), ("nlp",))),
        (False, ["/ml/vision/leads/deputies", "/ml/nlp/interns"], ((), ())),
        (False, ["/ml/vision/leads"], (("vision",), ("vision",))),
        (False, ["ml/nlp"], (("nlp",), ())),
    ],
)
def test_sub_groups_count_for_members_and_leads_unless_turned_off(
    subgroups: bool | None, groups: list[str], expected: tuple[tuple[str, ...], ...]
) -> None:
    """Sub-groups of a team's Keycloak paths count by default, for its members and its leads
    alike; turned off, only the paths themselves do."""
    built = team_rules(CONFIG) if subgroups is None else team_rules(CONFIG, (), subgroups)
    found = assign_teams(CONFIG, groups, built)
    assert (found.teams, found.leads) == expected
