"""The ledger's edges: how a pod manifest is read (which annotation names the server, what an
unnamed or mislabelled pod becomes), every way the mirrored pod store forgets a pod, holdings
of a team that holds nothing, the queue's view of a scan in progress, and the message of an
expired queued spawn."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy import Ledger, MirroredPods, PodSummary, SpawnRequest, Usage
from hub_ext.policy.config import QuotaOverride
from hub_ext.policy.queue import QueuedSpawn, _Tentative, expired_message
from tests.unit.policy.sample import pod, sample_config

pytestmark = pytest.mark.unit


def gpu_pod(
    name: str,
    gpus: int,
    *,
    annotations: dict[str, Any] | None = None,
    labels: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team-vision",
            "name": name,
            "labels": {"mlteams.io/team": "vision", **(labels or {})},
            "annotations": annotations
            if annotations is not None
            else {"mlteams.io/user": "ada", "mlteams.io/server": f"ada/{name}"},
        },
        "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize(
    ("annotations", "user", "server"),
    [
        # the project's server annotation wins over the hub's server name
        (
            {
                "mlteams.io/user": "ada",
                "mlteams.io/server": "ada/train",
                "hub.jupyter.org/servername": "other",
            },
            "ada",
            "ada/train",
        ),
        # without it, the hub's user and server name make the key
        (
            {"hub.jupyter.org/username": "bob", "hub.jupyter.org/servername": "gpu"},
            "bob",
            "bob/gpu",
        ),
        # a default server has an empty name
        ({"hub.jupyter.org/username": "bob"}, "bob", "bob/"),
        ({"mlteams.io/user": "cy", "hub.jupyter.org/servername": ""}, "cy", "cy/"),
        # a server annotation without any user still names the server
        ({"mlteams.io/server": "dee/x"}, None, "dee/x"),
        # no user: the pod is keyed by itself
        ({}, None, None),
        # empty and non-text values count as absent
        ({"mlteams.io/user": "", "hub.jupyter.org/username": 7}, None, None),
        ({"mlteams.io/user": "eve", "mlteams.io/server": ""}, "eve", "eve/"),
    ],
)
def test_the_server_a_pod_belongs_to(
    annotations: dict[str, Any], user: str | None, server: str | None
) -> None:
    summary = PodSummary.from_manifest(gpu_pod("p", 1, annotations=annotations))
    assert (summary.user, summary.server) == (user, server)
    assert summary.key == (server if server is not None else "pod:team-vision/p")


def test_a_pod_without_metadata_or_with_odd_labels() -> None:
    """Missing names read as empty, labels that are not text as absent, and such a pod still
    counts once, by its own key."""
    summary = PodSummary.from_manifest({"metadata": {"labels": {"mlteams.io/team": 3}}})
    assert (summary.namespace, summary.name, summary.team, summary.profile) == ("", "", None, None)
    assert (summary.phase, summary.usage) == ("Pending", Usage(0, 0, 0, 1))
    assert summary.key == "pod:/"
    labelled = PodSummary.from_manifest(gpu_pod("p", 1, labels={"mlteams.io/profile": ""}))
    assert labelled.profile is None


def test_pods_of_a_server() -> None:
    ledger = Ledger()
    ledger.upsert_pod(pod("vision", "ada", 1, name="a"))
    ledger.upsert_pod(pod("vision", "ada", 1, name="b", server_name="x"))
    assert [summary.name for summary in ledger.pods("ada/")] == ["a"]
    assert [summary.name for summary in ledger.pods("ada/x")] == ["b"]
    assert ledger.pods("bob/") == []


def test_holdings_name_the_team_and_skip_other_teams_shares() -> None:
    ledger = Ledger()
    assert ledger.holdings("vision") == []
    ledger.upsert_pod(pod("nlp", "ada", 2, name="n"))
    ledger.upsert_pod(pod("vision", "ada", 1, name="v"))
    ledger.upsert_pod(pod("vision", "bob", 3, name="w", server_name="w"))
    holdings = ledger.holdings("vision")
    assert [(h.server, h.team, h.user, h.usage.gpus) for h in holdings] == [
        ("bob/w", "vision", "bob", 3),
        ("ada/", "vision", "ada", 1),
    ]
    assert [(h.server, h.team) for h in ledger.holdings("nlp")] == [("ada/", "nlp")]
    assert ledger.holdings("research") == []


def test_every_way_of_taking_a_pod_out_of_the_store_updates_the_ledger() -> None:
    ledger = Ledger()
    store = MirroredPods(ledger)
    store["team-vision/a"] = gpu_pod("a", 2)
    assert store["team-vision/a"]["metadata"]["name"] == "a"
    assert ledger.team_usage("vision").gpus == 2

    assert store.pop("team-vision/a")["metadata"]["name"] == "a"
    assert ledger.team_usage("vision").gpus == 0
    assert store.pop("team-vision/a", None) is None

    store["team-vision/b"] = gpu_pod("b", 1)
    key, value = store.popitem()
    assert (key, value["metadata"]["name"]) == ("team-vision/b", "b")
    assert ledger.team_usage("vision") == Usage()

    store.update(**{"team-vision/c": gpu_pod("c", 3)})
    assert ledger.user_usage("vision", "ada").gpus == 3
    store |= {"team-vision/d": gpu_pod("d", 1)}
    assert set(store) == {"team-vision/c", "team-vision/d"}
    assert ledger.team_usage("vision").gpus == 4


def test_the_scans_view_answers_like_the_ledger_plus_what_it_admitted() -> None:
    """While a scan admits queued spawns one after the other, its view of the ledger answers
    every query of the admission decision, quotas and grants included, as the ledger does."""
    config = sample_config()
    vision = config.teams["vision"]
    ledger = Ledger(overrides={"vision": QuotaOverride(gpus=6)})
    ledger.set_user_grants({("vision", "ada"): 2})
    ledger.upsert_pod(pod("vision", "ada", 1, name="a"))
    view = _Tentative(ledger)
    assert view.base_quota(vision) == ledger.base_quota(vision)
    assert view.base_quota(vision).gpus == 6
    assert view.team_grants("vision") == {"ada": 2}
    assert view.effective_quota(vision, "ada") == ledger.effective_quota(vision, "ada")
    assert view.server_share("ada/", "vision") == Usage(1, 0, 0, 1)


def _queued(waited: float) -> QueuedSpawn:
    request = SpawnRequest("ada", "nlp", "queued-1gpu")
    return QueuedSpawn(request, 1, enqueued_at=1000.0, deadline=1000.0 + waited)


@pytest.mark.parametrize(
    ("waited", "minutes"), [(20.0, "1 minute"), (3600.0, "60 minutes"), (150.0, "2 minutes")]
)
def test_an_expired_spawn_says_how_long_it_waited(waited: float, minutes: str) -> None:
    assert expired_message(_queued(waited)) == (
        f"Waited {minutes} for 1 GPU in team nlp, but none became free. Try again later, "
        "choose a smaller profile, or ask your team lead."
    )


def test_a_finished_pod_holds_nothing_and_is_no_holding() -> None:
    ledger = Ledger()
    ledger.upsert_pod(pod("vision", "ada", 2, name="a"))
    ledger.upsert_pod(pod("vision", "ada", 2, name="a", phase="Succeeded"))
    assert ledger.team_usage("vision") == Usage()
    assert ledger.user_usage("vision", "ada") == Usage()
    assert ledger.holdings("vision") == []


def test_a_ledger_built_from_pods_keeps_its_overrides() -> None:
    vision = sample_config().teams["vision"]
    ledger = Ledger.from_pods(
        [pod("vision", "ada", 1)], overrides={"vision": QuotaOverride(gpus=3, gpus_per_user=1)}
    )
    assert (ledger.base_quota(vision).gpus, ledger.base_quota(vision).gpus_per_user) == (3, 1)
    assert ledger.team_usage("vision").gpus == 1
