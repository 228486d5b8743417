"""The process kubelet restarted under a running Jupyter server, seen from the user's side: the
server answers through the hub's proxy all along, the hub keeps reporting it ready, the pod keeps
its container (no restart), and the node takes new servers once the kubelet is back."""

from __future__ import annotations

from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from tests.faults.conftest import HubFactory
from tests.faults.rig import NAMESPACES, team_pods
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

CPU = {"team": "alpha", "profile": "cpu"}


def status_through_proxy(hub: LocalHub, user: str) -> int:
    """The HTTP status of the user's server's ``api/status``, reached through the proxy."""
    try:
        status, _ = hub.request("GET", f"/user/{user}/api/status", timeout=10)
    except OSError:
        return 0
    return status


def server_pod(cluster: LocalCluster, user: str) -> dict[str, Any]:
    pods = [
        p
        for p in team_pods(cluster, "alpha")
        if p["metadata"]["labels"].get("mlteams.io/user") == user
    ]
    assert len(pods) == 1, pods
    return pods[0]


def test_a_running_server_stays_reachable_across_a_kubelet_restart(
    fault_cluster: LocalCluster, fault_hubs: HubFactory
) -> None:
    """Restarting the kubelet does not stop a user's server: through the proxy it answers 200
    before, during and after; the hub still reports it ready with the same pod, container and
    address; a new server starts on the restarted kubelet."""
    hub = fault_hubs()
    user, other = "a-00", "a-01"
    status, body = hub.call("POST", f"/users/{user}/server", CPU)
    assert status in (201, 202), body
    wait_server_sync(hub, user, ready=True)
    assert status_through_proxy(hub, user) == 200
    before = server_pod(fault_cluster, user)
    container = before["status"]["containerStatuses"][0]

    assert fault_cluster.kubelet is not None
    log_path = fault_cluster.kubelet.log_path
    logged = log_path.stat().st_size
    fault_cluster.stop_kubelet()
    # no kubelet: the server process runs on, and the user reaches it
    assert status_through_proxy(hub, user) == 200
    fault_cluster.start_kubelet(on_exit="keep")
    wait_for(
        lambda: b"adopted container notebook" in log_path.read_bytes()[logged:],
        timeout=60,
        what="the new kubelet to adopt the server's container",
    )
    fault_cluster.wait_nodes_ready()

    assert status_through_proxy(hub, user) == 200
    status, model = hub.call("GET", f"/users/{user}")
    assert status == 200, model
    assert model["servers"][""]["ready"] is True, model
    after = server_pod(fault_cluster, user)
    kept = after["status"]["containerStatuses"][0]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["podIP"] == before["status"]["podIP"]
    assert kept["containerID"] == container["containerID"]
    assert kept["restartCount"] == 0
    assert after["status"]["phase"] == "Running"

    # the restarted kubelet runs new servers too
    status, body = hub.call("POST", f"/users/{other}/server", CPU)
    assert status in (201, 202), body
    wait_server_sync(hub, other, ready=True)
    assert status_through_proxy(hub, other) == 200

    for name in (user, other):
        status, body = hub.call("DELETE", f"/users/{name}/server")
        assert status in (202, 204), body
    for name in (user, other):
        wait_server_sync(hub, name, ready=False)
    wait_for(
        lambda: not team_pods(fault_cluster, "alpha"),
        timeout=120,
        what=f"no server pod left in {NAMESPACES['alpha']}",
    )
