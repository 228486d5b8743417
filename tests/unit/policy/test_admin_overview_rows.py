"""The rows of the admin teams overview as an admin reads them: each member's servers with what
the hub says of them, the team's figures and notes, the order a sort gives, the rows a filter
keeps, and the cells of the CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from hub_ext.policy import load_config
from hub_ext.policy.admin_overview import (
    csv_text,
    filter_members,
    member_rows,
    sort_members,
    team_overview,
)
from hub_ext.policy.config import MLTeamsConfig, Quota
from hub_ext.policy.ledger import PodSummary

pytestmark = pytest.mark.unit


def config() -> MLTeamsConfig:
    return load_config(
        {
            "profiles": {"cpu": {"image": "i:1"}, "gpu1": {"image": "i:1", "gpus": 1}},
            "teams": {
                "vision": {
                    "display_name": "Vision team",
                    "groups": ["vision"],
                    "quota": {"gpus": 4, "gpus_per_user": 2, "cpu": "8", "memory": "64Gi"},
                    "profiles": ["gpu1", "cpu"],
                },
            },
        }
    )


def pod(
    user: str | None,
    server: str = "",
    *,
    gpus: int = 1,
    phase: str = "Running",
    profile: str | None = "gpu1",
) -> PodSummary:
    return PodSummary(
        namespace="team-vision",
        name=f"jupyter-{user}{'-' + server if server else ''}",
        team="vision",
        user=user,
        profile=profile,
        server=None if user is None else f"{user}/{server}",
        gpus=gpus,
        phase=phase,
    )


def hub_user(name: str, servers: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "groups": ["vision"], "servers": servers}


def waiting(name: str) -> dict[str, Any]:
    """A hub user whose default server waits to spawn with one GPU in vision."""
    return hub_user(
        name,
        {
            "": {
                "pending": "spawn",
                "ready": False,
                "user_options": {"profile": "gpu1"},
                "started": "2026-12-01T11:00:00Z",
            }
        },
    )


def test_a_member_row_lists_each_active_server_with_the_hub_times() -> None:
    """Servers are listed by name with pod, profile, GPUs, phase and the hub's start and activity
    times (anything but a text time is left out); pods that ended or belong to no user are not
    members, and a member without GPU-hours shows zero hours."""
    pods = [
        PodSummary(namespace="team-vision", name="cache", team="vision", phase="Running"),
        pod("carol", phase="Succeeded"),
        pod("alice", "big", gpus=2),
        pod("alice", profile="cpu", gpus=0, phase="Pending"),
        pod("bob"),
    ]
    users = [
        hub_user(
            "alice",
            {
                "": {"started": "2026-12-01T08:00:00Z", "last_activity": ""},
                "big": {"started": 1_764_579_600, "last_activity": "2026-12-01T09:30:00Z"},
            },
        ),
        {"name": 7, "servers": {}},
    ]
    rows = member_rows(pods, users, {"alice": {7: 1.5, 30: 12.0}})
    assert rows == [
        {
            "user": "alice",
            "servers": [
                {
                    "name": "",
                    "pod": "jupyter-alice",
                    "profile": "cpu",
                    "gpus": 0,
                    "phase": "Pending",
                    "started": "2026-12-01T08:00:00Z",
                    "last_activity": None,
                },
                {
                    "name": "big",
                    "pod": "jupyter-alice-big",
                    "profile": "gpu1",
                    "gpus": 2,
                    "phase": "Running",
                    "started": None,
                    "last_activity": "2026-12-01T09:30:00Z",
                },
            ],
            "gpus": 2,
            "last_activity": "2026-12-01T09:30:00Z",
            "gpu_hours_7d": 1.5,
            "gpu_hours_30d": 12.0,
        },
        {
            "user": "bob",
            "servers": [
                {
                    "name": "",
                    "pod": "jupyter-bob",
                    "profile": "gpu1",
                    "gpus": 1,
                    "phase": "Running",
                    "started": None,
                    "last_activity": None,
                }
            ],
            "gpus": 1,
            "last_activity": None,
            "gpu_hours_7d": 0.0,
            "gpu_hours_30d": 0.0,
        },
    ]


def test_the_team_shows_its_quotas_override_grants_and_figures() -> None:
    """A team's entry names it, shows the configured and the effective quota (CPU and memory in
    words), the override and grants as given, GPUs in use and reserved, and the queue of every
    member waiting for GPUs."""
    cfg = config()
    team = cfg.teams["vision"]
    overview = team_overview(
        cfg,
        team,
        quota=Quota(gpus=6, gpus_per_user=3, cpu=16000, memory=128 * 2**30),
        override={"gpus": 6, "reason": "deadline"},
        grants=[{"user": "bob", "extra_gpus": 1}],
        pods=[pod("alice"), pod("bob", phase="Pending", gpus=2)],
        users=[waiting("dora"), waiting("erin"), hub_user("frank", {})],
        hours={},
    )
    members = overview.pop("members")
    assert overview == {
        "team": "vision",
        "display_name": "Vision team",
        "namespace": "team-vision",
        "configured": {"gpus": 4, "gpus_per_user": 2, "cpu": "8 CPUs", "memory": "64 GiB"},
        "quota": {"gpus": 6, "gpus_per_user": 3, "cpu": "16 CPUs", "memory": "128 GiB"},
        "override": {"gpus": 6, "reason": "deadline"},
        "grants": [{"user": "bob", "extra_gpus": 1}],
        "gpus_in_use": 1,
        "gpus_reserved": 2,
        "servers_running": 1,
        "queue": [
            {"user": "dora", "gpus": 1, "position": 1},
            {"user": "erin", "gpus": 1, "position": 2},
        ],
        "notes": [],
    }
    assert [row["user"] for row in members] == ["alice", "bob"]


def test_a_quota_without_cpu_and_memory_limits_shows_none() -> None:
    cfg = config()
    team = cfg.teams["vision"]
    overview = team_overview(
        cfg,
        team,
        quota=Quota(gpus=2),
        override=None,
        grants=[],
        pods=[],
        users=[],
        hours={},
    )
    assert overview["quota"] == {"gpus": 2, "gpus_per_user": 2, "cpu": None, "memory": None}
    assert overview["override"] is None and overview["grants"] == []
    assert (overview["gpus_in_use"], overview["gpus_reserved"], overview["servers_running"]) == (
        0,
        0,
        0,
    )


def test_figures_the_cluster_did_not_give_are_unknown_not_zero() -> None:
    """Without the cluster's pod list the GPU and server figures are unknown, and the notes say
    in full which source did not answer."""
    cfg = config()
    team = cfg.teams["vision"]
    overview = team_overview(
        cfg, team, quota=team.quota, override=None, grants=[], pods=None, users=None, hours={}
    )
    assert overview["gpus_in_use"] is None
    assert overview["gpus_reserved"] is None
    assert overview["servers_running"] is None
    assert overview["notes"] == [
        "The cluster did not list the pods of namespace team-vision.",
        "The hub did not answer: the queue, start times and activity are missing.",
    ]


def sortable_rows() -> list[dict[str, Any]]:
    """Four members, listed in reverse name order: alice with two servers and recent activity,
    bob and carol with one GPU each (bob active earlier, carol never), dave with hours only."""
    users = [
        hub_user("alice", {"": {"last_activity": "2026-12-01T11:00:00Z"}}),
        hub_user("bob", {"": {"last_activity": "2026-12-01T09:00:00Z"}}),
    ]
    rows = member_rows(
        [pod("alice"), pod("alice", "big"), pod("bob"), pod("carol")],
        users,
        {"dave": {7: 1.0, 30: 2.0}},
    )
    return list(reversed(rows))


@pytest.mark.parametrize(
    ("key", "descending", "order"),
    [
        ("servers", True, ["alice", "bob", "carol", "dave"]),
        ("servers", False, ["dave", "bob", "carol", "alice"]),
        ("gpus", False, ["dave", "bob", "carol", "alice"]),
        ("last_activity", False, ["carol", "dave", "bob", "alice"]),
        ("last_activity", True, ["alice", "bob", "carol", "dave"]),
    ],
)
def test_members_sort_with_ties_by_name(key: str, descending: bool, order: list[str]) -> None:
    """Servers sort by their count; members never active sort before any activity; equal
    values keep name order whichever order the rows came in."""
    assert [row["user"] for row in sort_members(sortable_rows(), key, descending)] == order


def test_members_sort_by_name_unless_asked_otherwise() -> None:
    assert [row["user"] for row in sort_members(sortable_rows())] == [
        "alice",
        "bob",
        "carol",
        "dave",
    ]


def test_an_unknown_sort_names_every_choice() -> None:
    with pytest.raises(ValueError) as refused:
        sort_members(sortable_rows(), "password")
    assert str(refused.value) == (
        "sort must be one of user, gpus, servers, gpu_hours_7d, gpu_hours_30d, last_activity, "
        "got 'password'"
    )


@pytest.mark.parametrize(
    ("text", "users"),
    [
        ("BIG", ["alice"]),
        ("notebook", ["bob"]),
        ("none", []),
        ("xx", []),
    ],
)
def test_a_filter_matches_server_names_and_profiles_only(text: str, users: list[str]) -> None:
    """A filter finds a member by a server's name or profile; a default server (no name) or a
    server without a profile matches no made-up word."""
    rows = member_rows(
        [pod("alice"), pod("alice", "big"), pod("bob", "notebook", profile=None)], [], {}
    )
    assert [row["user"] for row in filter_members(rows, text)] == users


def csv_lines(teams: list[dict[str, Any]]) -> list[list[str]]:
    text = csv_text(teams)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_has_every_cell_of_each_server_and_of_a_member_without_one() -> None:
    """Each server gives one line with its profile, GPUs, phase and times; a member with GPU-hours
    but no server gets one line with empty server cells and zero GPUs."""
    users = [
        hub_user(
            "alice",
            {"big": {"started": "2026-12-01T08:00:00Z", "last_activity": "2026-12-01T09:30:00Z"}},
        )
    ]
    rows = member_rows(
        [pod("alice", "big", gpus=2), pod("bob", profile=None, gpus=0, phase="Pending")],
        users,
        {"alice": {7: 1.5, 30: 12.0}, "dave": {7: 0.5, 30: 2.25}},
    )
    assert csv_lines([{"team": "vision", "members": rows}]) == [
        [
            "team",
            "user",
            "server",
            "profile",
            "gpus",
            "phase",
            "started",
            "last_activity",
            "gpu_hours_7d",
            "gpu_hours_30d",
        ],
        [
            "vision",
            "alice",
            "big",
            "gpu1",
            "2",
            "Running",
            "2026-12-01T08:00:00Z",
            "2026-12-01T09:30:00Z",
            "1.5",
            "12.0",
        ],
        ["vision", "bob", "", "", "0", "Pending", "", "", "0.0", "0.0"],
        ["vision", "dave", "", "", "0", "", "", "", "0.5", "2.25"],
    ]


@pytest.mark.parametrize("name", ["=cmd", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_a_csv_cell_a_spreadsheet_would_run_stays_text(name: str) -> None:
    """Names starting like a formula are prefixed with a quote in the team, user, server and
    profile cells."""
    rows = member_rows([pod(name, name, profile=name)], [], {})
    [_, line] = csv_lines([{"team": name, "members": rows}])
    assert line[:4] == ["'" + name] * 4
