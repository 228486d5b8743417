"""A process kubelet that exits with ``--on-exit keep`` leaves its pods running, and the next one
adopts them: same processes, same addresses, no restarts.

The test runs a kubelet of its own, for a node of its own, beside the rig's kubelet."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from devenv.cluster import LocalCluster
from devenv.kubelet.processes import is_alive, kill_marked, start_time
from tests.kube_helpers import eventually

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDRESS_BLOCK = 240
TAINT = {"key": "mlteams.dev/kubelet-test", "value": "restart", "effect": "NoSchedule"}


class KubeletRun:
    """A process kubelet started by the test, stopped by pid."""

    def __init__(self, cluster: LocalCluster, workdir: Path, node: str) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.node = node
        self.nodes_file = workdir / "nodes.json"
        self.nodes_file.write_text(
            json.dumps(
                [
                    {
                        "name": node,
                        "cpu": "2",
                        "memory": "4Gi",
                        "addressBlock": ADDRESS_BLOCK,
                        "taints": [TAINT],
                    }
                ]
            )
        )
        self.state_dir = workdir / "state"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, on_exit: str) -> None:
        assert self.proc is None
        self.runs += 1
        with open(self.workdir / f"kubelet-{self.runs}.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devenv.kubelet",
                    "--kubeconfig",
                    str(self.cluster.kubeconfig),
                    "--state-dir",
                    str(self.state_dir),
                    "--nodes",
                    str(self.nodes_file),
                    "--on-exit",
                    on_exit,
                ],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        return "\n".join(
            (self.workdir / f"kubelet-{i}.log").read_text(errors="replace")
            for i in range(1, self.runs + 1)
        )


@pytest.fixture
def own_kubelet(cluster: LocalCluster, tmp_path: Path) -> Iterator[KubeletRun]:
    run = KubeletRun(cluster, tmp_path, f"restart-{uuid.uuid4().hex[:6]}")
    try:
        yield run
    finally:
        run.stop()
        for record in run.state_dir.glob("pods/*/record.json"):
            data = json.loads(record.read_text())
            for name in data["containers"]:
                kill_marked(f"{data['uid']}/{name}")


@pytest.fixture
async def own_node(own_kubelet: KubeletRun, kube: client.ApiClient) -> AsyncIterator[str]:
    yield own_kubelet.node
    own_kubelet.stop()
    try:
        await client.CoreV1Api(kube).delete_node(own_kubelet.node)
    except ApiException as exc:
        if exc.status != 404:
            raise


def pinned_server(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": TAINT["key"], "operator": "Exists"}],
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "srv",
                    "image": "mlteams/test:dev",
                    "command": ["python", "-m", "http.server", "--bind", "0.0.0.0", "8000"],
                    "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1},
                }
            ],
        },
    }


async def reachable(ip: str) -> bool:
    def fetch() -> bool:
        try:
            with urllib.request.urlopen(f"http://{ip}:8000/", timeout=3) as response:
                return response.status == 200
        except OSError:
            return False

    return await asyncio.to_thread(fetch)


async def test_kubelet_restart_adopts_running_pod(
    own_kubelet: KubeletRun, own_node: str, kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    own_kubelet.start(on_exit="keep")
    await core.create_namespaced_pod(namespace, pinned_server("kept", own_node))

    async def running() -> client.V1Pod | None:
        pod = await core.read_namespaced_pod("kept", namespace)
        statuses = pod.status.container_statuses or []
        return pod if statuses and statuses[0].ready else None

    pod = await eventually(running, timeout=60, what="pod Running on the test's own node")
    ip = pod.status.pod_ip
    assert ip.startswith(f"127.{ADDRESS_BLOCK}.")
    container_id = pod.status.container_statuses[0].container_id
    pid = int(container_id.removeprefix("process://"))
    started = start_time(pid)
    assert started is not None
    assert await reachable(ip)

    own_kubelet.stop()
    assert is_alive(pid, started), own_kubelet.log()
    assert await reachable(ip)

    own_kubelet.start(on_exit="stop")
    await eventually(
        lambda: asyncio.to_thread(lambda: "adopted container srv" in own_kubelet.log()),
        timeout=30,
        what="the new kubelet to adopt the container",
    )
    pod = await core.read_namespaced_pod("kept", namespace)
    status = pod.status.container_statuses[0]
    assert pod.status.phase == "Running"
    assert status.container_id == container_id
    assert status.restart_count == 0
    assert pod.status.pod_ip == ip
    assert is_alive(pid, started)
    assert await reachable(ip)

    await core.delete_namespaced_pod("kept", namespace, grace_period_seconds=5)

    async def gone() -> bool:
        try:
            await core.read_namespaced_pod("kept", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, timeout=20, what="pod deleted by the adopting kubelet")
    assert not is_alive(pid, started)
