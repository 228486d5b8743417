"""The hub killed (SIGKILL) in the middle of a burst of twenty spawns that fill two teams'
quotas and queue the rest: after the restart nothing is lost, nothing is doubled, and every
spawn the hub was in the middle of ends with a clear message."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from tests.faults import rig
from tests.faults.conftest import HubFactory
from tests.kube_helpers import poll, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

BURST = [*rig.USERS["alpha"][:13], *rig.USERS["beta"][:7]]
TEAM_OF = {user: team for team, users in rig.USERS.items() for user in users}
RESTARTED = "when the hub restarted"


def spawn_all(hub: LocalHub, users: list[str]) -> list[tuple[int, Any]]:
    """POST every user's spawn at once, as a burst of requests."""

    def post(user: str) -> tuple[int, Any]:
        options = {"team": TEAM_OF[user], "profile": "gpu1-queued"}
        return hub.call("POST", f"/users/{user}/server", options)

    with ThreadPoolExecutor(len(users)) as pool:
        return list(pool.map(post, users))


def running(hub: LocalHub) -> set[str]:
    users = rig.hub_users(hub)
    return {u for u in BURST if users[u]["servers"].get("", {}).get("ready")}


def test_hub_killed_mid_burst_loses_nothing_and_doubles_nothing(
    fault_cluster: LocalCluster, fault_hubs: HubFactory
) -> None:
    """SIGKILL the hub as soon as the burst's first pod exists. The restarted hub: stops the
    proxy the killed hub left (the mlteams service the killed hub started stops by itself);
    keeps each server that had started; deletes the pod of every spawn that had not finished;
    ends every such spawn, queued or starting, with a message on its progress stream; its
    ledger equals the pods in the apiserver and no team is over quota; a new burst fills the
    quotas again and no more."""
    hub = fault_hubs(stand_in_servers=True)
    assert hub.child is not None
    rig.wait_quota_settled(fault_cluster)
    log_path = hub.child.log_path
    answers = spawn_all(hub, BURST)
    assert all(status in (201, 202) for status, _ in answers), answers
    queued = len(BURST) - sum(rig.QUOTAS.values())
    # the moment every spawn beyond the quotas is queued: the admitted ones are being started
    wait_for(
        lambda: log_path.read_bytes().count(b" queued: ") >= queued,
        timeout=60,
        interval=0.05,
        what=f"{queued} spawns queued",
    )
    left = rig.kill_hub(hub)
    logged = log_path.stat().st_size
    try:
        assert left, "the hub had no child processes"
        rig.within_quota(fault_cluster)

        hub.start()
        gone = poll(lambda: [p for p in left if rig.alive(p)], lambda alive: not alive, timeout=30)
        assert not gone, [rig.command_line(p) for p in gone]
    finally:
        rig.end_processes(left)

    # every pod belongs to a server the hub reports, or is deleted
    rig.wait_no_orphans(fault_cluster, hub, timeout=90)
    rig.within_quota(fault_cluster)
    started = running(hub)
    users = rig.hub_users(hub)
    for user in BURST:
        model = users[user]["servers"].get("")
        assert model is None or model["ready"], (user, model)
    # each server the hub keeps has its pod, and each pod its server
    pod_users = sorted(
        p["metadata"]["labels"][rig.USER_LABEL]
        for team in rig.NAMESPACES
        for p in rig.team_pods(fault_cluster, team)
    )
    assert pod_users == sorted(started)

    # every spawn the hub did not finish ended with the reason, in words
    ended = [u for u in BURST if u not in started]
    assert len(ended) >= len(BURST) - sum(rig.QUOTAS.values()), (started, ended)
    for user in ended:
        events = rig.progress_events(hub, user)
        assert events and events[-1].get("failed"), (user, events)
        message = events[-1]["message"]
        assert RESTARTED in message and "Start it again" in message, message
        assert "Traceback" not in message and "ApiException" not in message, message

    # the admin reads in the hub's log which spawns were cut short
    restart_log = log_path.read_bytes()[logged:].decode(errors="replace")
    for user in ended:
        pattern = rf"spawn {user}/ was (queued|starting) when the hub stopped; ending it"
        assert re.search(pattern, restart_log), (user, restart_log[-3000:])

    rig.ledger_matches_cluster(fault_cluster, hub)
    rig.wait_quota_settled(fault_cluster)

    # the restarted hub admits a new burst up to the quotas, and queues the rest
    answers = spawn_all(hub, ended)
    assert all(status in (201, 202) for status, _ in answers), answers

    def quotas_full() -> set[str] | None:
        rig.within_quota(fault_cluster)
        now = running(hub)
        per_team = {t: sum(1 for u in now if TEAM_OF[u] == t) for t in rig.QUOTAS}
        return now if per_team == rig.QUOTAS else None

    wait_for(quotas_full, timeout=120, interval=1, what="both teams' quotas full again")
    counts = rig.ledger_matches_cluster(fault_cluster, hub)
    assert {t: c.pod_gpus for t, c in counts.items()} == rig.QUOTAS

    rig.stop_servers(fault_cluster, hub, BURST)
