"""A user's teams from their hub groups, lead status, and choosing the team of a spawn."""

from __future__ import annotations

import pytest

from hub_ext.policy import TeamSelectionError, choose_team, led_teams, load_config, user_teams
from tests.unit.policy.sample import sample_config

pytestmark = pytest.mark.unit

CONFIG = sample_config()


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["/ml/vision"], [("vision", False)]),
        (["vision-engineers", "unrelated"], [("vision", False)]),
        (["/ml/vision/leads"], [("vision", True)]),
        (["/ml/vision", "/ml/vision/leads"], [("vision", True)]),
        (["vision"], [("vision", False)]),
        (["vision-leads"], [("vision", True)]),
        (["/ml/vision", "/ml/nlp"], [("vision", False), ("nlp", False)]),
        (["/ml/nlp/leads", "/ml/research"], [("nlp", True), ("research", False)]),
        (["/ml/vision/"], []),
        (["/ML/VISION"], []),
        (["other"], []),
        ([], []),
    ],
)
def test_user_teams(groups: list[str], expected: list[tuple[str, bool]]) -> None:
    assert [(m.name, m.is_lead) for m in user_teams(CONFIG, groups)] == expected


def test_led_teams() -> None:
    assert [team.name for team in led_teams(CONFIG, ["/ml/vision/leads", "/ml/nlp"])] == ["vision"]


@pytest.mark.parametrize(
    ("groups", "requested", "team"),
    [
        (["/ml/vision"], None, "vision"),
        (["/ml/vision"], "", "vision"),
        (["/ml/vision"], "vision", "vision"),
        (["/ml/vision", "/ml/nlp"], "nlp", "nlp"),
        (["/ml/vision", "/ml/nlp"], "vision", "vision"),
    ],
)
def test_choose_team(groups: list[str], requested: str | None, team: str) -> None:
    assert choose_team(CONFIG, groups, requested).name == team


@pytest.mark.parametrize(
    ("groups", "requested", "status", "message"),
    [
        (
            ["/ml/vision", "/ml/nlp"],
            None,
            400,
            "You are in several teams (vision, nlp); choose the team to start this server in.",
        ),
        (["/ml/vision"], "nlp", 403, "You are not a member of team 'nlp'. Your teams: vision."),
        (["/ml/vision"], "ghost", 403, "You are not a member of team 'ghost'. Your teams: vision."),
        (
            ["/ml/vision"],
            "nlp<script>",
            403,
            "You are not a member of team 'nlp?script?'. Your teams: vision.",
        ),
    ],
)
def test_choose_team_refuses(
    groups: list[str], requested: str | None, status: int, message: str
) -> None:
    with pytest.raises(TeamSelectionError) as info:
        choose_team(CONFIG, groups, requested)
    assert info.value.http_status == status
    assert info.value.message == message


def test_foreign_and_unknown_teams_get_the_same_answer() -> None:
    answers = []
    for requested in ("nlp", "ghost"):
        with pytest.raises(TeamSelectionError) as info:
            choose_team(CONFIG, ["/ml/vision"], requested)
        answers.append(info.value.message.replace(f"'{requested}'", "X"))
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("groups", "seen"),
    [
        (
            ["/ml/marketing", "everyone"],
            "The hub sees you in these groups: '/ml/marketing', 'everyone'.",
        ),
        ([], "The hub sees you in no groups."),
        (["<b>x</b>\n"], "The hub sees you in these groups: '?b?x?/b??'."),
    ],
)
def test_user_without_team_is_told_what_was_seen_and_whom_to_ask(
    groups: list[str], seen: str
) -> None:
    with pytest.raises(TeamSelectionError) as info:
        choose_team(CONFIG, groups, "vision")
    message = info.value.message
    assert info.value.http_status == 403
    assert message.startswith("You are not a member of any ML team")
    assert seen in message
    assert "Ask a platform admin to add one of your groups to a team." in message
    for secret in ("vision", "nlp", "research", "/ml/vision", "#ml-vision"):
        assert secret not in message


def test_many_groups_are_summarised() -> None:
    with pytest.raises(TeamSelectionError) as info:
        choose_team(CONFIG, [f"g{i:02d}" for i in range(25)])
    assert "'g09' and 15 more." in info.value.message
    assert "g10" not in info.value.message


def _no_team_message(groups: list[str]) -> str:
    with pytest.raises(TeamSelectionError) as info:
        choose_team(CONFIG, groups)
    assert info.value.http_status == 403
    assert str(info.value) == info.value.message
    return info.value.message


NO_TEAM = "You are not a member of any ML team, so you cannot start a server yet."
ASK = "Ask a platform admin to add one of your groups to a team."


@pytest.mark.parametrize(
    ("groups", "seen"),
    [
        ([], "The hub sees you in no groups."),
        (
            [f"g{i}" for i in range(10)],
            "The hub sees you in these groups: 'g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7', "
            "'g8', 'g9'.",
        ),
        (
            [f"g{i:02d}" for i in range(11)],
            "The hub sees you in these groups: 'g00', 'g01', 'g02', 'g03', 'g04', 'g05', 'g06', "
            "'g07', 'g08', 'g09' and 1 more.",
        ),
        (
            ["/" + "a" * 47, "/" + "b" * 48],
            f"The hub sees you in these groups: '/{'a' * 47}', '/{'b' * 47}...'.",
        ),
    ],
)
def test_the_whole_message_of_a_user_in_no_team(groups: list[str], seen: str) -> None:
    assert _no_team_message(groups) == f"{NO_TEAM} {seen} {ASK}"


def test_a_user_asking_for_a_team_not_theirs_is_told_all_their_teams() -> None:
    with pytest.raises(TeamSelectionError) as info:
        choose_team(CONFIG, ["/ml/nlp", "/ml/vision"], "research")
    assert str(info.value) == "You are not a member of team 'research'. Your teams: vision, nlp."


GUID_TEAM = "0f8fad5b-d9cb-469f-a165-70867728950e"
EXACT_CONFIG = load_config(
    {
        "teams": {
            "ops": {
                "groups": ["ml.ops", "Ops@Example.com"],
                "lead_groups": ["ml.ops.leads", "Ops-Leads@Example.com"],
                "quota": {"gpus": 0},
                "profiles": ["cpu"],
            },
            GUID_TEAM: {"quota": {"gpus": 0}, "profiles": ["cpu"]},
        },
        "profiles": {"cpu": {"image": "img"}},
    }
)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["ml.ops"], [("ops", False)]),
        (["mlxops"], []),
        (["ops@example.com"], [("ops", False)]),
        (["ml.ops.leads"], [("ops", True)]),
        (["ml-ops-leads"], []),
        (["OPS-LEADS@EXAMPLE.COM"], [("ops", True)]),
        ([GUID_TEAM.upper()], [(GUID_TEAM, False)]),
        ([f"{GUID_TEAM}-leads"], [(GUID_TEAM, True)]),
    ],
)
def test_hub_groups_match_a_teams_groups_by_exact_name(
    groups: list[str], expected: list[tuple[str, bool]]
) -> None:
    """Dots are not wildcards; e-mail addresses and GUIDs are compared without case."""
    assert [(m.name, m.is_lead) for m in user_teams(EXACT_CONFIG, groups)] == expected
