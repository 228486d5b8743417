"""kube-apiserver stopped for 20 seconds while users start and stop servers: each request gets
a clear answer (no traceback, no raw Kubernetes error), the hub's pod reflector recovers when the
API is back, and nothing is admitted twice or beyond a team's quota afterwards."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from tests.faults import rig
from tests.faults.conftest import HubFactory
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

DOWN_SECONDS = 20
GPU = "gpu1-queued"
RAW = ("Traceback", "ApiException", "Cannot connect", "ClientConnectorError", "HTTPSConnection")


def options(user: str) -> dict[str, str]:
    return {"team": "alpha" if user.startswith("a-") else "beta", "profile": GPU}


def assert_clear(text: str) -> None:
    for raw in RAW:
        assert raw not in text, text


def spawn_outcome(hub: LocalHub, user: str) -> tuple[int, str]:
    """POST the spawn; the HTTP status and the message the user gets, from the answer itself
    or, for a spawn that went on in the background (202), from its progress stream."""
    status, body = hub.call("POST", f"/users/{user}/server", options(user))
    if status != 202:
        text = body.get("message", "") if isinstance(body, dict) else str(body)
        return status, text

    def ended() -> dict[str, Any] | None:
        model = rig.hub_users(hub)[user]["servers"].get("")
        return None if model and model.get("pending") else {"ended": True}

    wait_for(ended, timeout=60, interval=1, what=f"{user}'s spawn to end")
    events = rig.progress_events(hub, user)
    assert events and events[-1].get("failed"), events
    return 202, str(events[-1]["message"])


def test_apiserver_down_gives_clear_answers_and_recovers_without_double_admission(
    fault_cluster: LocalCluster, fault_hubs: HubFactory
) -> None:
    """With two servers of team alpha running, kube-apiserver stops for 20 s: a spawn ends with
    a 503-style message that says the cluster is not answering, and a stop request is answered
    without a raw error. When the API is back the reflector sees pods again: the stopped server's
    pod is gone or its server still known, a new spawn starts, and a burst admits no more than
    each team's quota (counted from the apiserver) with the ledger equal to the pods."""
    hub = fault_hubs(stand_in_servers=True)
    control_plane = fault_cluster.control_plane
    assert control_plane is not None
    rig.wait_quota_settled(fault_cluster)
    for user in ("a-00", "a-01"):
        status, body = hub.call("POST", f"/users/{user}/server", options(user))
        assert status in (201, 202), body
    for user in ("a-00", "a-01"):
        wait_server_sync(hub, user, ready=True)

    control_plane.stop_apiserver()
    down_at = time.monotonic()
    try:
        status, message = spawn_outcome(hub, "b-00")
        assert status in (202, 503), (status, message)
        assert "cluster is not answering" in message, message
        assert_clear(message)

        status, body = hub.call("DELETE", "/users/a-00/server")
        # the server is reported stopped; its pod goes once the API answers (checked below)
        assert status in (202, 204), (status, body)
        assert_clear(json.dumps(body))
    finally:
        left = DOWN_SECONDS - (time.monotonic() - down_at)
        if left > 0:
            time.sleep(left)  # the outage lasts its full length: the fault, not a wait
        control_plane.start_apiserver()

    # the reflector follows the API again: a new server starts and is seen ready
    status, body = hub.call("POST", "/users/b-00/server", options("b-00"))
    assert status in (201, 202), body
    wait_server_sync(hub, "b-00", ready=True)
    rig.wait_no_orphans(fault_cluster, hub, timeout=90)
    rig.wait_quota_settled(fault_cluster)

    burst = [f"a-{i:02d}" for i in range(2, 8)] + [f"b-{i:02d}" for i in range(1, 5)]
    for user in burst:
        status, body = hub.call("POST", f"/users/{user}/server", options(user))
        assert status in (201, 202), body

    def quotas_full() -> bool:
        rig.within_quota(fault_cluster)
        counts = {
            t: sum(rig.pod_gpus(p) for p in rig.team_pods(fault_cluster, t)) for t in rig.QUOTAS
        }
        return counts == rig.QUOTAS

    wait_for(quotas_full, timeout=120, interval=1, what="both teams' quotas full")
    rig.ledger_matches_cluster(fault_cluster, hub)
    rig.wait_no_orphans(fault_cluster, hub, timeout=30)

    rig.stop_servers(fault_cluster, hub, ["a-00", "a-01", "b-00", *burst])
