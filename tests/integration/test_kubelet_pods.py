"""The process kubelet runs pods bound to its nodes as local processes, each on its own loopback
address, and reports them to the API server as a kubelet does."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from devenv.cluster import LocalCluster
from devenv.kubelet.processes import is_alive, start_time
from tests.kube_helpers import eventually

pytestmark = pytest.mark.integration

SERVER = """
import http.server, os, signal, sys
open("/data/hello.txt", "w").write("hello from " + os.environ["POD_NAME"])
def stop(signum, frame):
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
os.chdir("/data")
server = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), http.server.SimpleHTTPRequestHandler)
server.serve_forever()
"""


def pod_body(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "mlteams/test:dev",
        "command": command,
    }
    container.update(spec.pop("container", {}))
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [container],
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
        },
    }
    body["spec"].update(spec)
    return body


def server_pod(name: str) -> dict[str, Any]:
    return pod_body(
        name,
        ["python", "-c", SERVER],
        container={
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "readinessProbe": {"httpGet": {"path": "/hello.txt", "port": 8080}, "periodSeconds": 1},
        },
        volumes=[{"name": "data", "emptyDir": {}}],
    )


def pod_dir(cluster: LocalCluster, pod: client.V1Pod) -> Path:
    meta = pod.metadata
    return cluster.state_dir / "kubelet" / "pods" / f"{meta.namespace}_{meta.name}_{meta.uid}"


def container_pid(pod: client.V1Pod) -> int:
    container_id = pod.status.container_statuses[0].container_id
    assert container_id.startswith("process://")
    return int(container_id.removeprefix("process://"))


async def http_get(url: str) -> str:
    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    return await asyncio.to_thread(fetch)


async def wait_phase(
    core: client.CoreV1Api, name: str, namespace: str, *phases: str
) -> client.V1Pod:
    async def reached() -> client.V1Pod | None:
        pod = await core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in phases else None

    return await eventually(reached, timeout=60, what=f"pod {name} in phase {'/'.join(phases)}")


async def wait_ready(core: client.CoreV1Api, name: str, namespace: str) -> client.V1Pod:
    async def ready() -> client.V1Pod | None:
        pod = await core.read_namespaced_pod(name, namespace)
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        return pod if conditions.get("Ready") == "True" else None

    return await eventually(ready, timeout=60, what=f"pod {name} Ready")


async def test_pod_serves_on_its_own_loopback_address(
    kube: client.ApiClient, namespace: str, cluster: LocalCluster
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_pod(namespace, server_pod("web"))
    pod = await wait_ready(core, "web", namespace)

    assert pod.status.phase == "Running"
    assert pod.spec.node_name == "cpu-0"
    ip = pod.status.pod_ip
    assert ip.startswith("127.10.")
    assert [p.ip for p in pod.status.pod_ips] == [ip]
    assert pod.status.host_ip == "127.0.0.1"
    assert pod.status.start_time is not None
    status = pod.status.container_statuses[0]
    assert status.ready and status.started
    assert status.image == "mlteams/test:dev"
    assert status.restart_count == 0
    assert status.state.running.started_at is not None
    assert is_alive(container_pid(pod), start_time(container_pid(pod)) or -1)

    assert await http_get(f"http://{ip}:8080/hello.txt") == "hello from web"
    empty_dir = pod_dir(cluster, pod) / "volumes" / "data" / "hello.txt"
    assert empty_dir.read_text() == "hello from web"

    events = await core.list_namespaced_event(namespace, field_selector="involvedObject.name=web")
    by_reason = {e.reason: e for e in events.items}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(by_reason)
    assert "recorded, not pulled" in by_reason["Pulled"].message
    assert by_reason["Started"].source.component == "kubelet"
    assert by_reason["Started"].source.host == "cpu-0"
    assert by_reason["Started"].reporting_component == "kubelet"
    assert by_reason["Started"].involved_object.field_path == "spec.containers{main}"


async def test_env_from_secret_config_map_and_downward_api(
    kube: client.ApiClient, namespace: str, cluster: LocalCluster
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_secret(
        namespace, {"metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}
    )
    await core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"level": "debug", "MODE": "fast"}}
    )
    env = [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
        {
            "name": "OPTIONAL",
            "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}},
        },
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
        {"name": "URL", "value": "http://0.0.0.0:8888/user/$(POD_NAME)/"},
    ]
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    body = pod_body(
        "env",
        ["python", "-c", script],
        restartPolicy="Never",
        container={"env": env, "envFrom": [{"configMapRef": {"name": "settings"}}]},
    )
    body["metadata"]["labels"] = {"team": "vision"}
    await core.create_namespaced_pod(namespace, body)
    pod = await wait_phase(core, "env", namespace, "Succeeded", "Failed")
    assert pod.status.phase == "Succeeded"

    seen = json.loads((pod_dir(cluster, pod) / "main.log").read_text())
    ip = pod.status.pod_ip
    assert seen["PASSWORD"] == "hunter2"
    assert seen["LEVEL"] == "debug"
    assert seen["MODE"] == "fast"
    assert "OPTIONAL" not in seen
    assert seen["POD_NAME"] == "env"
    assert seen["POD_NS"] == namespace
    assert seen["POD_IP"] == ip
    assert seen["NODE"] == pod.spec.node_name
    assert seen["TEAM"] == "vision"
    assert seen["URL"] == f"http://{ip}:8888/user/env/"
    assert seen["HOSTNAME"] == "env"
    assert seen["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert seen.get("MLTEAMS_RIG") == os.environ.get("MLTEAMS_RIG")


@pytest.mark.parametrize(
    ("code", "phase", "reason"), [(0, "Succeeded", "Completed"), (3, "Failed", "Error")]
)
async def test_exit_code_decides_phase(
    kube: client.ApiClient, namespace: str, code: int, phase: str, reason: str
) -> None:
    core = client.CoreV1Api(kube)
    name = f"exit-{code}"
    body = pod_body(name, ["sh", "-c", f"echo bye; exit {code}"], restartPolicy="Never")
    await core.create_namespaced_pod(namespace, body)
    pod = await wait_phase(core, name, namespace, "Succeeded", "Failed")
    assert pod.status.phase == phase
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (code, reason)
    assert pod.status.container_statuses[0].ready is False


async def test_failing_container_is_restarted_with_on_failure(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    script = 'n=$(cat /c/n 2>/dev/null || echo 0); echo $((n+1)) > /c/n; test "$n" -ge 1'
    body = pod_body(
        "flaky",
        ["sh", "-c", script],
        restartPolicy="OnFailure",
        container={"volumeMounts": [{"name": "c", "mountPath": "/c"}]},
        volumes=[{"name": "c", "emptyDir": {}}],
    )
    await core.create_namespaced_pod(namespace, body)
    pod = await wait_phase(core, "flaky", namespace, "Succeeded", "Failed")
    assert pod.status.phase == "Succeeded"
    status = pod.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1


async def test_graceful_deletion_stops_process_and_removes_pod(
    kube: client.ApiClient, namespace: str, cluster: LocalCluster
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_pod(namespace, server_pod("doomed"))
    pod = await wait_ready(core, "doomed", namespace)
    pid = container_pid(pod)
    started = start_time(pid)
    assert started is not None
    addresses = cluster.state_dir / "kubelet" / "addresses.json"
    assert pod.metadata.uid in json.loads(addresses.read_text())["owners"]

    await core.delete_namespaced_pod("doomed", namespace, grace_period_seconds=10)

    async def gone() -> bool:
        try:
            await core.read_namespaced_pod("doomed", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, timeout=15, what="pod object removed")
    assert not is_alive(pid, started)
    assert pod.metadata.uid not in json.loads(addresses.read_text())["owners"]
    directory = pod_dir(cluster, pod)
    assert "got SIGTERM" in (directory / "main.log").read_text()
    assert not (directory / "volumes").exists()
    events = await core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=doomed"
    )
    assert "Killing" in {e.reason for e in events.items}


async def test_claim_is_provisioned_and_outlives_its_pods(
    kube: client.ApiClient, namespace: str, cluster: LocalCluster
) -> None:
    core = client.CoreV1Api(kube)
    await core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "home"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]
    mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    writer = pod_body(
        "writer",
        ["sh", "-c", 'echo kept > "$HOME/notes.txt"'],
        restartPolicy="Never",
        volumes=volumes,
        container={"volumeMounts": mounts},
    )
    await core.create_namespaced_pod(namespace, writer)
    pod = await wait_phase(core, "writer", namespace, "Succeeded", "Failed")
    assert pod.status.phase == "Succeeded"
    claim = await core.read_namespaced_persistent_volume_claim("home", namespace)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "process-kubelet-local"
    directory = cluster.state_dir / "kubelet" / "pvc" / namespace / "home"
    assert (directory / "notes.txt").read_text() == "kept\n"

    await core.delete_namespaced_pod("writer", namespace)
    reader = pod_body(
        "reader",
        ["cat", "/home/jovyan/notes.txt"],
        restartPolicy="Never",
        volumes=volumes,
        container={"volumeMounts": [dict(mounts[0], readOnly=True)]},
    )
    await core.create_namespaced_pod(namespace, reader)
    pod = await wait_phase(core, "reader", namespace, "Succeeded", "Failed")
    assert pod.status.phase == "Succeeded"
    assert (pod_dir(cluster, pod) / "main.log").read_text() == "kept\n"

    await core.delete_namespaced_pod("reader", namespace)
    await core.delete_namespaced_persistent_volume_claim("home", namespace)
    await eventually(
        lambda: asyncio.to_thread(lambda: not directory.exists()),
        timeout=60,
        what="the released claim's directory to be removed",
    )
    volume = claim.spec.volume_name

    async def volume_gone() -> bool:
        try:
            await core.read_persistent_volume(volume)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(volume_gone, timeout=30, what="the released volume to be deleted")
