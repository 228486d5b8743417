"""JupyterHub with stock KubeSpawner spawns a user's server as a pod on the rig, end to end."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from kubernetes_asyncio import client

from devenv.hub import LocalHub
from tests.kube_helpers import eventually

pytestmark = pytest.mark.integration


async def _server_ready(hub: LocalHub, user: str) -> dict | None:
    model = await asyncio.to_thread(hub.api, "GET", f"/users/{user}")
    server = model.get("servers", {}).get("")
    return server if server and server.get("ready") else None


async def test_spawn_reach_and_stop_server_through_hub_api(
    hub: LocalHub, kube: client.ApiClient
) -> None:
    user = "e2e-alice"
    core = client.CoreV1Api(kube)
    await asyncio.to_thread(hub.api, "POST", f"/users/{user}")
    await asyncio.to_thread(hub.api, "POST", f"/users/{user}/server")

    server = await eventually(
        lambda: _server_ready(hub, user),
        timeout=180,
        interval=1,
        what="the user's server to be ready",
    )
    assert server["url"] == f"/user/{user}/"

    pods = await core.list_namespaced_pod(
        "jupyterhub", label_selector=f"hub.jupyter.org/username={user}"
    )
    assert len(pods.items) == 1
    pod = pods.items[0]
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip.startswith("127.")
    assert pod.spec.node_name == "cpu-0"

    # through the proxy, with a token whose scopes include access to this user's server
    req = urllib.request.Request(
        f"{hub.url}/user/{user}/api", headers={"Authorization": f"token {hub.api_token}"}
    )
    body = await asyncio.to_thread(
        lambda: json.loads(urllib.request.urlopen(req, timeout=30).read())
    )
    assert "version" in body

    await asyncio.to_thread(hub.api, "DELETE", f"/users/{user}/server")

    async def stopped():
        model = await asyncio.to_thread(hub.api, "GET", f"/users/{user}")
        return not model.get("servers")

    await eventually(stopped, timeout=120, interval=1, what="the server to stop")

    async def pod_gone():
        remaining = await core.list_namespaced_pod(
            "jupyterhub", label_selector=f"hub.jupyter.org/username={user}"
        )
        return not remaining.items

    await eventually(pod_gone, timeout=60, what="the pod to be deleted")
