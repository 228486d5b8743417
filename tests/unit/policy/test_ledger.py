"""The GPU ledger: pods and reservations counted once, per team and per user, kept indexed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hub_ext.policy import (
    Ledger,
    MirroredPods,
    PodSummary,
    QuotaOverride,
    Reservation,
    Usage,
    server_key,
)
from tests.unit.policy.sample import GIB, pod, reservation, sample_config

pytestmark = pytest.mark.unit


def manifest(**overrides: Any) -> dict[str, Any]:
    pod_manifest: dict[str, Any] = {
        "metadata": {
            "namespace": "team-vision",
            "name": "jupyter-ada",
            "labels": {"mlteams.io/team": "vision", "mlteams.io/profile": "pytorch-2gpu"},
            "annotations": {"mlteams.io/user": "ada", "mlteams.io/server": "ada/"},
        },
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "resources": {
                        "limits": {"nvidia.com/gpu": "2", "cpu": "4", "memory": "16Gi"},
                        "requests": {"cpu": "1", "memory": "1Gi"},
                    },
                },
                {"name": "sidecar", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            ],
            "initContainers": [
                {"name": "init", "resources": {"limits": {"cpu": "8", "memory": "1Gi"}}}
            ],
        },
        "status": {"phase": "Running"},
    }
    pod_manifest["metadata"].update(overrides.pop("metadata", {}))
    pod_manifest.update(overrides)
    return pod_manifest


def test_usage_arithmetic() -> None:
    a = Usage(gpus=2, cpu=1000, memory=GIB, servers=1)
    b = Usage(gpus=1, cpu=3000, memory=0, servers=1)
    assert a + b == Usage(3, 4000, GIB, 2)
    assert a - b == Usage(1, -2000, GIB, 0)
    assert a.larger(b) == Usage(2, 3000, GIB, 1)
    assert Usage().empty and not a.empty


def test_pod_summary_from_manifest() -> None:
    summary = PodSummary.from_manifest(manifest())
    assert summary == PodSummary(
        namespace="team-vision",
        name="jupyter-ada",
        team="vision",
        user="ada",
        profile="pytorch-2gpu",
        server="ada/",
        gpus=2,
        cpu=8000,
        memory=16 * GIB + 64 * 2**20,
        phase="Running",
        deleting=False,
    )


def test_pod_summary_falls_back_to_kubespawner_annotations() -> None:
    summary = PodSummary.from_manifest(
        manifest(
            metadata={
                "labels": {},
                "annotations": {
                    "hub.jupyter.org/username": "bob",
                    "hub.jupyter.org/servername": "gpu",
                },
                "deletionTimestamp": "2026-01-01T00:00:00Z",
            },
            status={},
        )
    )
    assert (summary.user, summary.server, summary.team) == ("bob", "bob/gpu", None)
    assert summary.phase == "Pending" and summary.deleting


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"metadata": None, "spec": "nonsense", "status": []},
        {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "many"}}}]}},
        {"spec": {"containers": [None, {"resources": None}]}},
    ],
)
def test_unreadable_pods_count_as_nothing_rather_than_failing(broken: dict[str, Any]) -> None:
    summary = PodSummary.from_manifest(broken)
    assert (summary.gpus, summary.cpu, summary.memory) == (0, 0, 0)


@pytest.mark.parametrize(
    ("phase", "deleting", "counted"),
    [
        ("Pending", False, True),
        ("Running", False, True),
        ("Unknown", False, True),
        ("Running", True, True),
        ("Succeeded", False, False),
        ("Failed", False, False),
        ("Failed", True, False),
    ],
)
def test_which_pods_hold_gpus(phase: str, deleting: bool, counted: bool) -> None:
    ledger = Ledger.from_pods([pod("vision", "ada", 2, phase=phase, deleting=deleting)])
    expected = 2 if counted else 0
    assert ledger.team_usage("vision").gpus == expected
    assert ledger.user_usage("vision", "ada").gpus == expected


@pytest.mark.parametrize(
    ("pod_gpus", "reserved_gpus", "expected"),
    [(1, 1, 1), (2, 1, 2), (1, 2, 2), (0, 1, 1)],
)
def test_a_pod_and_its_reservation_count_once(
    pod_gpus: int, reserved_gpus: int, expected: int
) -> None:
    ledger = Ledger.from_pods(
        [pod("vision", "ada", pod_gpus)], [reservation("vision", "ada", reserved_gpus)]
    )
    assert ledger.team_usage("vision") == Usage(gpus=expected, servers=1)
    assert ledger.user_usage("vision", "ada").gpus == expected
    ledger.release(server_key("ada"))
    assert ledger.team_usage("vision").gpus == pod_gpus


def test_reservation_lifecycle() -> None:
    ledger = Ledger()
    ledger.reserve(reservation("vision", "ada", 2))
    assert ledger.team_usage("vision").gpus == 2
    assert ledger.reservation("ada/") is not None
    ledger.reserve(reservation("vision", "ada", 1))
    assert ledger.team_usage("vision").gpus == 1, "a new reservation replaces the old one"
    released = ledger.release("ada/")
    assert released is not None and released.gpus == 1
    assert ledger.release("ada/") is None
    assert ledger.team_usage("vision") == Usage()
    assert ledger.reservations() == []


def test_pod_lifecycle_updates_totals() -> None:
    ledger = Ledger()
    ledger.upsert_pod(pod("vision", "ada", 2, phase="Pending"))
    assert ledger.team_usage("vision").gpus == 2
    ledger.upsert_pod(pod("vision", "ada", 2, phase="Running"))
    assert ledger.team_usage("vision").gpus == 2
    ledger.upsert_pod(pod("vision", "ada", 2, phase="Succeeded"))
    assert ledger.team_usage("vision").gpus == 0
    ledger.upsert_pod(pod("vision", "ada", 2, phase="Running"))
    ledger.remove_pod("team-vision", "jupyter-ada-default")
    assert ledger.team_usage("vision") == Usage()
    ledger.remove_pod("team-vision", "not-there")


def test_old_and_new_pod_of_one_server_both_count() -> None:
    ledger = Ledger.from_pods(
        [
            pod("vision", "ada", 1, name="old", deleting=True),
            pod("vision", "ada", 1, name="new", phase="Pending"),
        ]
    )
    assert ledger.team_usage("vision").gpus == 2
    assert ledger.team_usage("vision").servers == 1


def test_pods_without_team_label_use_the_namespace_owner() -> None:
    config = sample_config()
    unlabeled = PodSummary(namespace="ml-nlp", name="batch-job", gpus=3)
    stray = PodSummary(namespace="elsewhere", name="other", gpus=5)
    ledger = Ledger.from_pods([unlabeled, stray], namespace_teams=config.namespace_teams)
    assert ledger.team_usage("nlp").gpus == 3
    assert ledger.team_usage("nlp").servers == 1
    assert [holding.user for holding in ledger.holdings("nlp")] == [None]


def test_users_are_counted_per_team() -> None:
    ledger = Ledger.from_pods(
        [
            pod("vision", "ada", 2, server_name="a"),
            pod("nlp", "ada", 1, server_name="b"),
            pod("vision", "bob", 1),
        ]
    )
    assert ledger.user_usage("vision", "ada").gpus == 2
    assert ledger.user_usage("nlp", "ada").gpus == 1
    assert ledger.user_usage("nlp", "bob") == Usage()
    assert ledger.team_usage("vision") == Usage(gpus=3, servers=2)


def test_server_share_and_holdings() -> None:
    ledger = Ledger.from_pods(
        [pod("vision", "ada", 2, server_name="a"), pod("vision", "bob", 1)],
        [reservation("vision", "cy", 1)],
    )
    assert ledger.server_share("ada/a", "vision") == Usage(gpus=2, servers=1)
    assert ledger.server_share("ada/a", "vision", "ada").gpus == 2
    assert ledger.server_share("ada/a", "vision", "bob") == Usage()
    assert ledger.server_share("ada/a", "nlp") == Usage()
    holdings = ledger.holdings("vision")
    assert [(h.server, h.user, h.usage.gpus, h.reserved_only) for h in holdings] == [
        ("ada/a", "ada", 2, False),
        ("bob/", "bob", 1, False),
        ("cy/", "cy", 1, True),
    ]


def test_pod_moving_to_another_server_key() -> None:
    ledger = Ledger()
    ledger.upsert_pod(PodSummary(namespace="team-vision", name="p", team="vision", gpus=1))
    ledger.upsert_pod(
        PodSummary(
            namespace="team-vision", name="p", team="vision", user="ada", server="ada/", gpus=1
        )
    )
    assert ledger.team_usage("vision").gpus == 1
    assert ledger.user_usage("vision", "ada").gpus == 1
    assert ledger.pods("pod:team-vision/p") == []


def test_replace_pods_resynchronises() -> None:
    ledger = Ledger.from_pods([pod("vision", "ada", 2), pod("vision", "bob", 1)])
    ledger.replace_pods([pod("vision", "cy", 1)])
    assert ledger.team_usage("vision") == Usage(gpus=1, servers=1)
    assert ledger.user_usage("vision", "ada") == Usage()


@pytest.mark.parametrize(
    ("override", "gpus", "per_user"),
    [
        (None, 8, 2),
        (QuotaOverride(gpus=4), 4, 2),
        (QuotaOverride(gpus=1), 1, 1),
        (QuotaOverride(gpus_per_user=8), 8, 8),
        (QuotaOverride(gpus=16, gpus_per_user=4), 16, 4),
        (QuotaOverride(gpus=0), 0, 0),
    ],
)
def test_effective_quota_is_config_updated_by_override(
    override: QuotaOverride | None, gpus: int, per_user: int
) -> None:
    config = sample_config()
    ledger = Ledger(overrides={"vision": override} if override else None)
    quota = ledger.effective_quota(config.teams["vision"])
    assert (quota.gpus, quota.gpus_per_user) == (gpus, per_user)
    assert ledger.effective_quota(config.teams["nlp"]) == config.teams["nlp"].quota


def test_overrides_change_at_run_time() -> None:
    config = sample_config()
    vision = config.teams["vision"]
    ledger = Ledger()
    ledger.set_quota_override("vision", QuotaOverride(gpus=2, memory=GIB))
    assert ledger.effective_quota(vision).gpus == 2
    assert ledger.effective_quota(vision).memory == GIB
    assert ledger.quota_override("vision") == QuotaOverride(gpus=2, memory=GIB)
    ledger.set_quota_override("vision", None)
    assert ledger.effective_quota(vision) == vision.quota
    ledger.set_quota_override("vision", None)


def test_set_quota_overrides_replaces_them_all() -> None:
    config = sample_config()
    vision, nlp = config.teams["vision"], config.teams["nlp"]
    ledger = Ledger(overrides={"vision": QuotaOverride(gpus=2)})
    ledger.set_quota_overrides({"nlp": QuotaOverride(gpus=1)})
    assert ledger.effective_quota(vision) == vision.quota
    assert ledger.effective_quota(nlp).gpus == 1
    ledger.set_quota_override("vision", QuotaOverride(gpus=3))
    assert (ledger.effective_quota(vision).gpus, ledger.effective_quota(nlp).gpus) == (3, 1)
    ledger.set_quota_overrides({})
    assert ledger.effective_quota(vision) == vision.quota
    assert ledger.effective_quota(nlp) == nlp.quota


def test_set_user_grants_replaces_them_and_drops_empty_ones() -> None:
    ledger = Ledger()
    ledger.set_user_grants({("vision", "bob"): 2, ("vision", "cy"): 0, ("nlp", "ada"): -1})
    assert ledger.user_grant("vision", "bob") == 2
    assert ledger.user_grant("vision", "cy") == 0
    assert ledger.user_grant("nlp", "ada") == 0
    assert ledger.user_grant("nlp", "bob") == 0
    assert dict(ledger.team_grants("vision")) == {"bob": 2}
    assert dict(ledger.team_grants("nlp")) == {}
    ledger.set_user_grants({("nlp", "ada"): 1})
    assert ledger.user_grant("vision", "bob") == 0
    assert ledger.user_grant("nlp", "ada") == 1


Holders = tuple[tuple[str, str, int], ...]
Grants = tuple[tuple[tuple[str, str], int], ...]


@pytest.mark.parametrize(
    ("grants", "holders", "override", "user", "gpus", "per_user"),
    [
        pytest.param((), (), None, "ada", 8, 2, id="no grants"),
        pytest.param(((("vision", "bob"), 2),), (), None, None, 10, 2, id="team-wide"),
        pytest.param(((("vision", "bob"), 2),), (), None, "bob", 10, 4, id="grantee"),
        pytest.param(
            ((("vision", "bob"), 2),), (), None, "ada", 8, 2, id="unused grant is not ada's"
        ),
        pytest.param(
            ((("vision", "bob"), 2),),
            (("vision", "bob", 2),),
            None,
            "ada",
            8,
            2,
            id="grantee within the normal cap",
        ),
        pytest.param(
            ((("vision", "bob"), 2),),
            (("vision", "bob", 3),),
            None,
            "ada",
            9,
            2,
            id="grantee using part of the grant",
        ),
        pytest.param(
            ((("vision", "bob"), 2),),
            (("vision", "bob", 2), ("vision", "bob", 2)),
            None,
            "ada",
            10,
            2,
            id="grantee using all the grant",
        ),
        pytest.param(
            ((("vision", "bob"), 2),),
            (("vision", "bob", 2), ("vision", "bob", 2), ("vision", "bob", 2)),
            None,
            "ada",
            10,
            2,
            id="grantee over the grant counts only the grant",
        ),
        pytest.param(
            ((("vision", "bob"), 2),),
            (("vision", "bob", 2), ("vision", "bob", 2)),
            None,
            "bob",
            10,
            4,
            id="grantee's own figures do not depend on their use",
        ),
        pytest.param(
            ((("vision", "bob"), 2), (("vision", "cy"), 1)),
            (),
            None,
            None,
            11,
            2,
            id="team-wide includes every grant",
        ),
        pytest.param(
            ((("vision", "ada"), 1), (("vision", "bob"), 2)),
            (("vision", "bob", 2), ("vision", "bob", 2)),
            None,
            "ada",
            11,
            3,
            id="two grantees",
        ),
        pytest.param(
            ((("nlp", "bob"), 2), (("nlp", "ada"), 1)),
            (("nlp", "bob", 4), ("nlp", "bob", 2)),
            None,
            "ada",
            8,
            2,
            id="grants in another team do not count",
        ),
        pytest.param(
            ((("vision", "ada"), 2),),
            (),
            (("gpus", 1),),
            "ada",
            3,
            3,
            id="grant on top of the team override",
        ),
        pytest.param(
            ((("vision", "ada"), 2),),
            (),
            (("gpus", 0),),
            None,
            2,
            0,
            id="team-wide cap stays within gpus",
        ),
        pytest.param(
            ((("vision", "ada"), 64),),
            (),
            (("gpus", 4096), ("gpus_per_user", 4096)),
            "ada",
            4160,
            4160,
            id="past the schema's maximum without re-validation",
        ),
    ],
)
def test_effective_quota_with_grants(
    grants: Grants,
    holders: Holders,
    override: tuple[tuple[str, int], ...] | None,
    user: str | None,
    gpus: int,
    per_user: int,
) -> None:
    vision = sample_config().teams["vision"]
    ledger = Ledger.from_pods(
        [pod(team, who, held, server_name=f"s{i}") for i, (team, who, held) in enumerate(holders)]
    )
    if override is not None:
        ledger.set_quota_override("vision", QuotaOverride(**dict(override)))
    ledger.set_user_grants(dict(grants))
    quota = ledger.effective_quota(vision, user)
    assert (quota.gpus, quota.gpus_per_user) == (gpus, per_user)
    assert quota.gpus_per_user <= quota.gpus
    assert (quota.cpu, quota.memory) == (vision.quota.cpu, vision.quota.memory)


@pytest.mark.parametrize("seed", range(20))
def test_grants_never_put_the_cap_above_the_total(seed: int) -> None:
    rng = random.Random(seed)
    config = sample_config()
    users = ["ada", "bob", "cy", "dan"]
    ledger = Ledger.from_pods(
        [
            pod(rng.choice(["vision", "nlp"]), rng.choice(users), rng.randint(0, 6), name=f"p{i}")
            for i in range(rng.randint(0, 8))
        ]
    )
    ledger.set_quota_override("vision", QuotaOverride(gpus=rng.randint(0, 8), gpus_per_user=0))
    ledger.set_user_grants(
        {(rng.choice(["vision", "nlp"]), user): rng.randint(-1, 4) for user in users}
    )
    for team in config.teams.values():
        wide = ledger.effective_quota(team)
        assert wide.gpus == ledger.base_quota(team).gpus + sum(
            ledger.team_grants(team.name).values()
        )
        for user in [None, *users]:
            quota = ledger.effective_quota(team, user)
            assert 0 <= quota.gpus_per_user <= quota.gpus <= wide.gpus


def _brute_force(pods: dict[tuple[str, str], PodSummary], reservations: dict[str, Reservation]):
    """Team and user GPU totals computed from scratch, the slow and obvious way."""
    servers: dict[str, dict[tuple[str, str | None], int]] = {}
    for summary in pods.values():
        if summary.active and summary.team is not None:
            share = servers.setdefault(summary.key, {})
            share[(summary.team, summary.user)] = share.get((summary.team, summary.user), 0) + (
                summary.gpus
            )
    for res in reservations.values():
        share = servers.setdefault(res.server, {})
        share[(res.team, res.user)] = max(share.get((res.team, res.user), 0), res.gpus)
    teams: dict[str, int] = {}
    users: dict[tuple[str, str], int] = {}
    for share in servers.values():
        for (team, user), gpus in share.items():
            teams[team] = teams.get(team, 0) + gpus
            if user is not None:
                users[(team, user)] = users.get((team, user), 0) + gpus
    return teams, users


@pytest.mark.parametrize("seed", range(25))
def test_incremental_totals_match_a_recount_after_random_events(seed: int) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    pods: dict[tuple[str, str], PodSummary] = {}
    reservations: dict[str, Reservation] = {}
    teams, users = ["vision", "nlp"], ["ada", "bob", "cy"]
    for _ in range(300):
        team, user = rng.choice(teams), rng.choice(users)
        server_name = rng.choice(["", "x"])
        action = rng.random()
        if action < 0.4:
            summary = pod(
                team,
                user,
                rng.randint(0, 3),
                name=rng.choice(["p1", "p2", "p3"]) + user + server_name,
                server_name=server_name,
                phase=rng.choice(["Pending", "Running", "Succeeded", "Failed"]),
            )
            ledger.upsert_pod(summary)
            pods[(summary.namespace, summary.name)] = summary
        elif action < 0.6 and pods:
            key = rng.choice(sorted(pods))
            ledger.remove_pod(*key)
            del pods[key]
        elif action < 0.85:
            res = reservation(team, user, rng.randint(0, 3), server_name)
            ledger.reserve(res)
            reservations[res.server] = res
        elif reservations:
            key = rng.choice(sorted(reservations))
            ledger.release(key)
            del reservations[key]
        expected_teams, expected_users = _brute_force(pods, reservations)
        for name in teams:
            assert ledger.team_usage(name).gpus == expected_teams.get(name, 0)
            for person in users:
                assert ledger.user_usage(name, person).gpus == expected_users.get((name, person), 0)


def _gpu_pod(namespace: str, name: str, user: str, gpus: int, phase: str = "Running"):
    return manifest(
        metadata={
            "namespace": namespace,
            "name": name,
            "annotations": {"mlteams.io/user": user, "mlteams.io/server": f"{user}/{name}"},
        },
        spec={"containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        status={"phase": phase},
    )


def test_mirrored_pods_keep_the_ledger_in_step() -> None:
    ledger = Ledger()
    ledger.reserve(reservation("vision", "zed", 1))
    store = MirroredPods(ledger, {"team-vision/a": _gpu_pod("team-vision", "a", "ada", 2)})
    assert ledger.team_usage("vision").gpus == 3
    store["team-vision/b"] = _gpu_pod("team-vision", "b", "bob", 1)
    assert ledger.user_usage("vision", "bob").gpus == 1
    store["team-vision/b"] = _gpu_pod("team-vision", "b", "bob", 1, phase="Succeeded")
    assert ledger.user_usage("vision", "bob").gpus == 0
    store.pop("team-vision/b", None)
    store.pop("team-vision/missing", None)
    assert "team-vision/b" not in store
    store.update({"team-vision/c": _gpu_pod("team-vision", "c", "cy", 2)})
    store.setdefault("team-vision/d", _gpu_pod("team-vision", "d", "dee", 1))
    assert ledger.team_usage("vision").gpus == 2 + 2 + 1 + 1
    del store["team-vision/c"]
    assert ledger.user_usage("vision", "cy") == Usage()
    store.clear()
    assert ledger.team_usage("vision").gpus == 1, "only the reservation is left"
    MirroredPods(ledger, {"team-vision/e": _gpu_pod("team-vision", "e", "eve", 2)})
    assert ledger.team_usage("vision").gpus == 3, "a relist replaces pods, keeps reservations"
