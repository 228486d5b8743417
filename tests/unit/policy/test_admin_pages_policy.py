"""Table tests of the admin pages' pure parts: who sees which team (``admin_access``), what the
forms accept (``admin_forms``), the overview's shaping, sorting, filtering and CSV
(``admin_overview``), and GPU-hours (``gpu_hours``)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from hub_ext.policy import load_config
from hub_ext.policy.admin_access import (
    ADMIN_SCOPE,
    LEAD_SCOPE,
    AccessRefused,
    require_admin,
    require_pages,
    require_team,
    viewer_from_model,
    visible_teams,
)
from hub_ext.policy.admin_forms import (
    DecisionInput,
    FormError,
    GrantInput,
    QuotaRequestInput,
    decision_input,
    describe_minutes,
    duration_minutes,
    grant_input,
    quota_request_input,
    revoke_input,
    stop_input,
    team_override_input,
)
from hub_ext.policy.admin_overview import (
    csv_text,
    describe_time,
    filter_members,
    member_rows,
    sort_members,
    team_overview,
)
from hub_ext.policy.gpu_hours import DAY, HOUR, GpuSession, gpu_hours, hours_by_window
from hub_ext.policy.ledger import PodSummary

pytestmark = pytest.mark.unit

TEAMS = ("nlp", "vision")
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("model", "admin", "leads"),
    [
        ({"name": "root", "admin": True, "scopes": []}, False, set()),
        ({"name": "ops", "scopes": [ADMIN_SCOPE]}, True, set()),
        ({"name": "lena", "scopes": [f"{LEAD_SCOPE}!group=vision"]}, False, {"vision"}),
        (
            {"name": "two", "scopes": [f"{LEAD_SCOPE}!group=vision", f"{LEAD_SCOPE}!group=nlp"]},
            False,
            {"vision", "nlp"},
        ),
        # an unfiltered lead scope is not "every team"; a filter on no team gives nothing
        ({"name": "odd", "scopes": [LEAD_SCOPE, f"{LEAD_SCOPE}!group=audio"]}, False, set()),
        ({"name": "odd2", "scopes": [f"{LEAD_SCOPE}!user=vision"]}, False, set()),
        ({"name": "alice", "scopes": ["access:services!service=mlteams"]}, False, set()),
        ({"name": "bad", "admin": "yes", "scopes": "custom:mlteams:admin"}, False, set()),
        # a hub admin acts as one with a token that still reaches every user...
        ({"name": "root", "admin": True, "scopes": ["list:users", "read:users"]}, True, set()),
        # ... and not with a token they limited to less, nor with a filtered reach
        (
            {"name": "root", "admin": True, "scopes": ["access:services!service=mlteams"]},
            False,
            set(),
        ),
        ({"name": "root", "admin": True, "scopes": ["list:users!group=vision"]}, False, set()),
        ({"name": "root", "admin": True}, False, set()),
        # the reach alone does not make an admin
        ({"name": "lister", "scopes": ["list:users"]}, False, set()),
    ],
)
def test_the_viewer_comes_from_the_hub_model(
    model: dict[str, Any], admin: bool, leads: set[str]
) -> None:
    viewer = viewer_from_model(model, TEAMS)
    assert viewer.admin is admin
    assert set(viewer.lead_of) == leads
    assert viewer.has_pages is (admin or bool(leads))


def test_a_lead_sees_and_acts_on_their_team_only() -> None:
    lena = viewer_from_model({"name": "lena", "scopes": [f"{LEAD_SCOPE}!group=vision"]}, TEAMS)
    assert visible_teams(lena, TEAMS) == ["vision"]
    require_team(lena, "vision")
    with pytest.raises(AccessRefused, match="not team nlp") as refused:
        require_team(lena, "nlp")
    assert refused.value.http_status == 403
    with pytest.raises(AccessRefused, match="Only platform admins may raise"):
        require_admin(lena, "raise a quota")
    alice = viewer_from_model({"name": "alice"}, TEAMS)
    with pytest.raises(AccessRefused, match="team leads and platform admins"):
        require_pages(alice)
    admin = viewer_from_model({"name": "root", "admin": True, "scopes": ["list:users"]}, TEAMS)
    assert visible_teams(admin, TEAMS) == list(TEAMS)
    assert admin.role_in("nlp") == "admin" and lena.role_in("vision") == "lead"
    assert lena.role_in("nlp") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"gpus": 6}, "Give a reason"),
        ({"reason": "more"}, "Set at least one of"),
        ({"gpus": "six", "reason": "x"}, "gpus must be a whole number"),
        ({"gpus": 6, "reason": "x", "hours": "0"}, "hours must be a number above 0"),
        ({"gpus": 6, "reason": "x", "hours": "soon"}, "hours must be a number above 0"),
        ({"gpus": 6, "reason": "x", "hours": 1, "minutes": 5}, "hours or minutes, not both"),
        ({"gpus": 6, "reason": "x", "minutes": "0"}, "minutes must be a whole number from 1"),
        ({"gpus": 6, "reason": "x", "colour": "red"}, "Unknown field 'colour'"),
        ({"gpus": 2, "gpus_per_user": 3, "reason": "x"}, "must not exceed gpus"),
        ({"gpus": 6, "reason": "x" * 2001}, "at most 2000"),
        (["gpus"], "JSON object"),
    ],
)
def test_a_bad_team_override_names_the_field(raw: Any, message: str) -> None:
    with pytest.raises(FormError, match=message):
        team_override_input(raw, now=NOW)


def test_a_team_override_from_a_form_or_json() -> None:
    form = team_override_input(
        {"gpus": "6", "gpus_per_user": "", "hours": "2", "reason": " burst ", "_xsrf": "t"},
        now=NOW,
    )
    assert form.change.gpus == 6 and form.change.gpus_per_user is None
    assert form.expires_at == NOW + 2 * HOUR and form.reason == "burst"
    json_body = team_override_input({"gpus_per_user": 1, "reason": "fair"}, now=NOW)
    assert json_body.change.gpus_per_user == 1 and json_body.expires_at is None
    memory = team_override_input({"memory": "64Gi", "reason": "x"}, now=NOW)
    assert memory.change.memory == 64 * 2**30


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (grant_input, {"user": "bob", "extra_gpus": 2, "reason": "x"}, "Say for how long"),
        (grant_input, {"user": "", "extra_gpus": 2, "hours": 1, "reason": "x"}, "Name the user"),
        (grant_input, {"user": "bob", "extra_gpus": 0, "hours": 1, "reason": "x"}, "from 1 to 64"),
        (quota_request_input, {"team": "vision", "gpus": 2, "hours": 4}, "Give a reason"),
        (quota_request_input, {"gpus": 2, "hours": 4, "reason": "x"}, "Name the team"),
        (decision_input, {"decision": "maybe"}, "approve or reject"),
        (decision_input, {"decision": "reject", "comment": " "}, "Say why you reject"),
        (stop_input, {}, "Give a reason"),
    ],
)
def test_bad_action_forms_are_refused_with_a_message(parse: Any, raw: Any, message: str) -> None:
    kwargs = {"now": NOW} if parse is grant_input else {}
    with pytest.raises(FormError, match=message):
        parse(raw, **kwargs)


def test_good_action_forms() -> None:
    grant = grant_input({"user": "bob", "extra_gpus": "2", "hours": "3", "reason": "x"}, now=NOW)
    assert (grant.user, grant.extra_gpus, grant.expires_at) == ("bob", 2, NOW + 3 * HOUR)
    half = grant_input({"user": "bob", "extra_gpus": 1, "hours": "0.5", "reason": "x"}, now=NOW)
    assert half.expires_at == NOW + 30 * 60
    short = grant_input({"user": "bob", "extra_gpus": 1, "minutes": 3, "reason": "x"}, now=NOW)
    assert short.expires_at == NOW + 180
    asked = quota_request_input({"team": "vision", "gpus": 2, "hours": 4, "reason": "deadline"})
    assert (asked.team, asked.gpus, asked.minutes) == ("vision", 2, 240)
    brief = quota_request_input({"team": "vision", "gpus": 2, "minutes": 5, "reason": "demo"})
    assert brief.minutes == 5


@pytest.mark.parametrize(
    ("minutes", "words"),
    [(0, "0 min"), (45, "45 min"), (120, "2 h"), (150, "2 h 30 min"), (3 * 1440 + 60, "3 d 1 h")],
)
def test_durations_in_words(minutes: int, words: str) -> None:
    assert describe_minutes(minutes) == words
    assert decision_input({"decision": "approve"}).approve is True
    assert decision_input({"decision": "reject", "comment": "no"}).approve is False


CONFIG = {
    "profiles": {
        "cpu": {"image": "i:1"},
        "gpu1": {"image": "i:1", "gpus": 1},
    },
    "teams": {
        "vision": {
            "groups": ["vision"],
            "quota": {"gpus": 4, "gpus_per_user": 2},
            "profiles": ["gpu1", "cpu"],
        },
    },
}


def pod(user: str, gpus: int, phase: str = "Running", server: str = "") -> PodSummary:
    return PodSummary(
        namespace="team-vision",
        name=f"jupyter-{user}{'-' + server if server else ''}",
        team="vision",
        user=user,
        profile="gpu1" if gpus else "cpu",
        server=f"{user}/{server}",
        gpus=gpus,
        phase=phase,
    )


def test_the_overview_counts_in_use_reserved_queue_and_members() -> None:
    config = load_config(CONFIG)
    team = config.teams["vision"]
    pods = [
        pod("alice", 1),
        pod("alice", 1, server="big"),
        pod("bob", 1, phase="Pending"),
        pod("carol", 1, phase="Succeeded"),
    ]
    users = [
        {
            "name": "alice",
            "groups": ["vision"],
            "servers": {
                "": {"started": "2026-12-01T10:00:00Z", "last_activity": "2026-12-01T11:00:00Z"},
                "big": {"started": "2026-12-01T09:00:00Z", "last_activity": None},
            },
        },
        {
            "name": "dora",
            "groups": ["vision"],
            "servers": {
                "": {
                    "pending": "spawn",
                    "ready": False,
                    "user_options": {"profile": "gpu1"},
                    "started": "2026-12-01T11:00:00Z",
                }
            },
        },
    ]
    overview = team_overview(
        config,
        team,
        quota=team.quota,
        override=None,
        grants=[],
        pods=pods,
        users=users,
        hours={"erin": {7: 1.5, 30: 3.0}},
    )
    assert overview["gpus_in_use"] == 2
    assert overview["gpus_reserved"] == 1
    assert overview["servers_running"] == 2
    assert overview["queue"] == [{"user": "dora", "gpus": 1, "position": 1}]
    rows = {row["user"]: row for row in overview["members"]}
    assert sorted(rows) == ["alice", "bob", "erin"]
    assert rows["alice"]["gpus"] == 2 and len(rows["alice"]["servers"]) == 2
    assert rows["alice"]["last_activity"] == "2026-12-01T11:00:00Z"
    assert rows["erin"]["servers"] == [] and rows["erin"]["gpu_hours_30d"] == 3.0
    assert overview["configured"]["gpus"] == 4 and overview["notes"] == []


def test_the_overview_says_what_it_could_not_read() -> None:
    config = load_config(CONFIG)
    team = config.teams["vision"]
    overview = team_overview(
        config, team, quota=team.quota, override=None, grants=[], pods=None, users=None, hours={}
    )
    assert overview["gpus_in_use"] is None and overview["queue"] is None
    assert "did not list the pods of namespace team-vision" in overview["notes"][0]
    assert "hub did not answer" in overview["notes"][1]


def rows() -> list[dict[str, Any]]:
    return member_rows(
        [pod("alice", 2), pod("bob", 1), pod("carol", 0, server="=cmd")],
        [],
        {"bob": {7: 9.0, 30: 9.0}, "alice": {7: 1.0, 30: 20.0}},
    )


@pytest.mark.parametrize(
    ("key", "descending", "order"),
    [
        ("user", False, ["alice", "bob", "carol"]),
        ("user", True, ["carol", "bob", "alice"]),
        ("gpus", True, ["alice", "bob", "carol"]),
        ("gpu_hours_7d", True, ["bob", "alice", "carol"]),
        ("gpu_hours_30d", False, ["carol", "bob", "alice"]),
    ],
)
def test_members_sort(key: str, descending: bool, order: list[str]) -> None:
    assert [r["user"] for r in sort_members(rows(), key, descending)] == order


def test_members_filter_and_an_unknown_sort_is_refused() -> None:
    assert [r["user"] for r in filter_members(rows(), "BO")] == ["bob"]
    assert [r["user"] for r in filter_members(rows(), "cpu")] == ["carol"]
    assert len(filter_members(rows(), "  ")) == 3
    with pytest.raises(ValueError, match="sort must be one of"):
        sort_members(rows(), "password")


def test_the_csv_has_a_line_per_server_and_no_formulas() -> None:
    text = csv_text([{"team": "vision", "members": rows()}])
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:3] == ["team", "user", "server"]
    assert [line[1] for line in lines[1:]] == ["alice", "bob", "carol"]
    assert lines[3][2] == "'=cmd"  # a server name a spreadsheet would run stays text


@pytest.mark.parametrize(
    ("session", "days", "hours"),
    [
        # two GPUs for three hours, an hour ago
        (GpuSession("vision", "a", 2, NOW - 4 * HOUR, NOW - HOUR, NOW - HOUR), 7, 6.0),
        # still running, last seen now
        (GpuSession("vision", "a", 1, NOW - 2 * HOUR, NOW), 7, 2.0),
        # started ten days ago: only the last seven count
        (GpuSession("vision", "a", 1, NOW - 10 * DAY, NOW), 7, 168.0),
        (GpuSession("vision", "a", 1, NOW - 10 * DAY, NOW), 30, 240.0),
        # ended before the window
        (GpuSession("vision", "a", 4, NOW - 40 * DAY, NOW - 31 * DAY, NOW - 31 * DAY), 30, 0.0),
        # another team's
        (GpuSession("nlp", "a", 1, NOW - HOUR, NOW), 7, 0.0),
    ],
)
def test_gpu_hours_count_what_was_seen_inside_the_window(
    session: GpuSession, days: int, hours: float
) -> None:
    assert gpu_hours([session], team="vision", now=NOW, days=days).get("a", 0.0) == hours


def test_gpu_hours_by_window_per_user() -> None:
    sessions = [
        GpuSession("vision", "a", 1, NOW - 20 * DAY, NOW - 19 * DAY, NOW - 19 * DAY),
        GpuSession("vision", "b", 2, NOW - HOUR, NOW),
    ]
    assert hours_by_window(sessions, team="vision", now=NOW) == {
        "a": {7: 0.0, 30: 24.0},
        "b": {7: 2.0, 30: 2.0},
    }


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-12-07T13:00:58.111308Z", "2026-12-07 13:00 UTC"),
        ("2026-12-07T14:00:00+01:00", "2026-12-07 13:00 UTC"),
        (None, ""),
        ("soon", "soon"),
    ],
)
def test_times_on_the_pages(value: Any, shown: str) -> None:
    assert describe_time(value) == shown


def test_a_viewer_without_pages_is_told_who_has_them() -> None:
    """Someone who neither leads a team nor is an admin gets a 403 naming who the pages are for."""
    with pytest.raises(AccessRefused) as refused:
        require_pages(viewer_from_model({"name": "alice", "scopes": ["read:users"]}, TEAMS))
    assert (refused.value.http_status, refused.value.message) == (
        403,
        "The mlteams admin pages are for team leads and platform admins; your account is "
        "neither. Ask your platform admins if you should lead a team.",
    )


def test_a_lead_of_several_teams_is_told_which_ones_they_lead() -> None:
    """A lead refused another team's page reads the teams they do lead, in order."""
    teams = ("audio", "nlp", "vision")
    scopes = [f"{LEAD_SCOPE}!group=vision", f"{LEAD_SCOPE}!group=nlp"]
    lena = viewer_from_model({"name": "lena", "scopes": scopes}, teams)
    assert visible_teams(lena, teams) == ["nlp", "vision"]
    with pytest.raises(AccessRefused) as refused:
        require_team(lena, "audio")
    assert (refused.value.http_status, refused.value.message) == (
        403,
        "You lead nlp, vision, not team audio; only its leads and the platform admins see it.",
    )


@pytest.mark.parametrize(
    ("model", "name", "groups"),
    [
        (
            {"name": "lena", "groups": ["vision", "ml-reviewers"]},
            "lena",
            {"vision", "ml-reviewers"},
        ),
        ({"name": "lena", "groups": ["vision", 7, None]}, "lena", {"vision"}),
        ({"name": 7, "groups": "vision"}, "", set()),
        ({}, "", set()),
    ],
)
def test_the_viewer_keeps_the_hub_name_and_groups(
    model: dict[str, Any], name: str, groups: set[str]
) -> None:
    """Actions from the admin pages are recorded under the viewer's hub name, and promotion
    approvals count the viewer's hub groups; values of the wrong type give nothing."""
    viewer = viewer_from_model({**model, "scopes": [f"{LEAD_SCOPE}!group=vision"]}, TEAMS)
    assert viewer.name == name
    assert viewer.groups == frozenset(groups)
    assert viewer.lead_of == frozenset({"vision"})


def _refusal(parse: Any, raw: Any) -> str:
    kwargs = {"now": NOW} if parse in (grant_input, team_override_input) else {}
    with pytest.raises(FormError) as refused:
        parse(raw, **kwargs)
    assert refused.value.message == str(refused.value)
    return refused.value.message


OVERRIDE_FIELDS = "gpus, gpus_per_user, cpu, memory, hours, minutes, reason"


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (stop_input, ["reason"], "Send the fields as a JSON object or a form."),
        (revoke_input, "reason=x", "Send the fields as a JSON object or a form."),
        (
            team_override_input,
            {"gpus": 6, "reason": "x", "colour": "red", "alpha": 1},
            f"Unknown field 'alpha'; the fields are: {OVERRIDE_FIELDS}.",
        ),
        (
            revoke_input,
            {"reason": "x", "user": "bob"},
            "Unknown field 'user'; the fields are: reason.",
        ),
        (revoke_input, {"reason": " "}, "Give a reason: it is written to the audit trail."),
        (stop_input, {"reason": 7}, "The reason must be text of at most 2000 characters."),
        (
            team_override_input,
            {"reason": "x", "gpus": ""},
            "Set at least one of gpus, gpus_per_user, cpu, memory.",
        ),
        (
            team_override_input,
            {"gpus_per_user": "three", "reason": "x"},
            "gpus_per_user must be a whole number from 0 to 10000.",
        ),
        (
            team_override_input,
            {"gpus": "10001", "reason": "x"},
            "gpus must be a whole number from 0 to 10000.",
        ),
        (
            team_override_input,
            {"gpus": 2, "gpus_per_user": 3, "reason": "x"},
            "invalid quota override (1 problem):\n"
            "  - override.gpus_per_user: must not exceed gpus (2), got 3",
        ),
        (
            team_override_input,
            {"gpus": 6, "hours": "1", "minutes": "5", "reason": "x"},
            "Give hours or minutes, not both.",
        ),
        (
            team_override_input,
            {"gpus": 6, "hours": 8784.5, "reason": "x"},
            "hours must be a number above 0 and at most 8784.",
        ),
        (
            grant_input,
            {"user": 5, "extra_gpus": 1, "hours": 1, "reason": "x"},
            "Name the user the GPUs are for.",
        ),
        (
            grant_input,
            {"user": "u" * 254, "extra_gpus": 1, "hours": 1, "reason": "x"},
            "Name the user the GPUs are for.",
        ),
        (
            grant_input,
            {"user": "bob", "extra_gpus": 65, "hours": 1, "reason": "x"},
            "extra_gpus must be a whole number from 1 to 64.",
        ),
        (
            quota_request_input,
            {"team": 5, "gpus": 1, "hours": 1, "reason": "x"},
            "Name the team the GPUs are for.",
        ),
        (
            quota_request_input,
            {"team": "vision", "gpus": 1, "reason": "x"},
            "Say for how long: hours from 0.1 to 8784, or minutes.",
        ),
        (
            quota_request_input,
            {"team": "vision", "gpus": 0, "minutes": 5, "reason": "x"},
            "gpus must be a whole number from 1 to 64.",
        ),
        (decision_input, {"decision": "Approve"}, "decision must be approve or reject."),
        (
            decision_input,
            {"decision": "reject"},
            "Say why you reject it in the comment: the requester sees it.",
        ),
        (
            decision_input,
            {"decision": "approve", "comment": 5},
            "The comment must be text of at most 2000 characters.",
        ),
        (
            decision_input,
            {"decision": "approve", "comment": "c" * 2001},
            "The comment must be text of at most 2000 characters.",
        ),
    ],
)
def test_an_admin_form_refusal_word_for_word(parse: Any, raw: Any, message: str) -> None:
    """The page or the API client reads the whole message: which field, and what it accepts."""
    assert _refusal(parse, raw) == message


def test_action_forms_accept_values_at_their_limits() -> None:
    """The largest reason, comment and user name, the most GPUs and the longest time are
    accepted; text is trimmed and the form's XSRF field is ignored."""
    reason = "r" * 2000
    assert stop_input({"reason": reason, "_xsrf": "t"}) == reason
    assert revoke_input({"reason": " left the team ", "_xsrf": "t"}) == "left the team"
    user = "u" * 253
    assert grant_input(
        {"user": user, "extra_gpus": 64, "hours": 8784, "reason": " exam "}, now=NOW
    ) == GrantInput(user, 64, NOW + 8784 * HOUR, "exam")
    assert grant_input(
        {"user": " bob ", "extra_gpus": "1", "minutes": "90", "reason": "x"}, now=NOW
    ) == GrantInput("bob", 1, NOW + 90 * 60, "x")
    assert quota_request_input(
        {"team": " vision ", "gpus": 1, "minutes": "527040", "reason": " demo "}
    ) == QuotaRequestInput("vision", 1, 527040, "demo")
    comment = "c" * 2000
    assert decision_input({"decision": "reject", "comment": comment}) == DecisionInput(
        False, comment
    )
    assert decision_input({"decision": "approve", "comment": " fine "}) == DecisionInput(
        True, "fine"
    )
    assert decision_input({"decision": "approve", "comment": None}) == DecisionInput(True, "")


def test_a_team_override_with_gpu_counts_as_text() -> None:
    """GPU counts typed into the form are whole numbers from 0 (no GPUs) upwards."""
    none = team_override_input({"gpus": "0", "gpus_per_user": "0", "reason": "x"}, now=NOW)
    assert (none.change.gpus, none.change.gpus_per_user) == (0, 0)
    both = team_override_input({"gpus": "4", "gpus_per_user": "3", "reason": "x"}, now=NOW)
    assert (both.change.gpus, both.change.gpus_per_user) == (4, 3)


@pytest.mark.parametrize(
    ("raw", "minutes"),
    [
        ({}, None),
        ({"hours": "", "minutes": " "}, None),
        ({"hours": "0.001"}, 1),
        ({"hours": "0.01"}, 1),
        ({"hours": 0.1}, 6),
        ({"hours": "8784"}, 527040),
        ({"minutes": 1}, 1),
    ],
)
def test_a_duration_is_optional_and_at_least_a_minute(
    raw: dict[str, Any], minutes: int | None
) -> None:
    assert duration_minutes(raw) == minutes
