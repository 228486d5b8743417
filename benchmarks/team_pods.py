"""Team pods on the local platform's control plane, made through the apiserver as TeamKubeSpawner
makes them: ``servers`` servers across ``teams`` team namespaces, with the labels, annotations and
resources of a team server's pod, and their status patched to ``Running`` (there is no kubelet to
run them). Used by the admin page and hub memory benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from devenv.cluster import LocalCluster
from hub_ext.policy.ledger import HUB_SERVER_ANNOTATION, HUB_USER_ANNOTATION
from hub_ext.policy.pod_settings import USER_LABEL
from hub_ext.service.kube import kube_client
from server_ext.contract import PROFILE_LABEL, SERVER_ANNOTATION, TEAM_LABEL, USER_ANNOTATION

SETUP_CONCURRENCY = 32
GPU_RESOURCE = "nvidia.com/gpu"
PROFILES = {
    "cpu": {"display_name": "CPU", "image": "mlteams/notebook:dev", "cpu": 2, "memory": "4Gi"},
    "gpu1": {
        "display_name": "1 GPU",
        "image": "mlteams/pytorch:dev",
        "gpus": 1,
        "cpu": 4,
        "memory": "16Gi",
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    },
    "gpu2": {
        "display_name": "2 GPUs",
        "image": "mlteams/pytorch:dev",
        "gpus": 2,
        "cpu": 8,
        "memory": "32Gi",
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    },
}
PROFILE_OF_GPUS = {0: "cpu", 1: "gpu1", 2: "gpu2"}
RESOURCES_OF_PROFILE = {"cpu": ("2", "4Gi"), "gpu1": ("4", "16Gi"), "gpu2": ("8", "32Gi")}


@dataclass(frozen=True)
class Server:
    """One user's default server: the pod in the team's namespace and the hub's user model."""

    user: str
    team: str
    namespace: str
    gpus: int
    started: datetime
    last_activity: datetime

    @property
    def profile(self) -> str:
        return PROFILE_OF_GPUS[self.gpus]

    @property
    def pod_name(self) -> str:
        return f"jupyter-{self.user}"


@dataclass(frozen=True)
class Platform:
    """``servers`` servers across ``teams`` teams named ``<prefix>-NN`` in namespaces
    ``bench-<prefix>-NN``, one user per server, round robin over the teams."""

    prefix: str
    teams: int
    servers: list[Server] = field(default_factory=list)

    @classmethod
    def make(cls, prefix: str, teams: int, servers: int, now: datetime) -> Platform:
        made = []
        for i in range(servers):
            team = f"{prefix}-{i % teams:02d}"
            started = now - timedelta(minutes=5 + (i * 37) % (72 * 60))
            made.append(
                Server(
                    user=f"{prefix}-u{i:05d}",
                    team=team,
                    namespace=f"bench-{team}",
                    gpus=i % 3,
                    started=started,
                    last_activity=now - timedelta(seconds=(i * 13) % 3600),
                )
            )
        return cls(prefix, teams, made)

    @property
    def team_names(self) -> list[str]:
        return [f"{self.prefix}-{k:02d}" for k in range(self.teams)]

    def config(self) -> dict[str, Any]:
        """The ``MLTeams`` section: each team's hub group is its name."""
        return {
            "profiles": PROFILES,
            "teams": {
                name: {
                    "groups": [name],
                    "namespace": f"bench-{name}",
                    "quota": {"gpus": 1024, "gpus_per_user": 2},
                    "profiles": ["cpu", "gpu1", "gpu2"],
                }
                for name in self.team_names
            },
        }


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pod_manifest(server: Server) -> dict[str, Any]:
    """A team server's pod as TeamKubeSpawner makes it (KubeSpawner's labels and annotations,
    ``pod_settings``' own), without the hub's token in its environment."""
    user, team, profile = server.user, server.team, server.profile
    cpu, memory = RESOURCES_OF_PROFILE[profile]
    amounts = {"cpu": cpu, "memory": memory}
    if server.gpus:
        amounts[GPU_RESOURCE] = str(server.gpus)
    env = {
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_SERVICE_PREFIX": f"/user/{user}/",
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "MLTEAMS_TEAM": team,
        "MLTEAMS_PROFILE": profile,
        "MLTEAMS_IMAGE": str(PROFILES[profile]["image"]),
        "MLTEAMS_GPUS": str(server.gpus),
    }
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "restartPolicy": "OnFailure",
        "securityContext": {"fsGroup": 100},
        "containers": [
            {
                "name": "notebook",
                "image": PROFILES[profile]["image"],
                "args": ["jupyterhub-singleuser"],
                "ports": [{"name": "notebook-port", "containerPort": 8888}],
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "resources": {"limits": amounts, "requests": dict(amounts)},
                "securityContext": {"runAsUser": 1000, "allowPrivilegeEscalation": False},
            }
        ],
    }
    if server.gpus:
        spec["tolerations"] = PROFILES[profile]["tolerations"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": server.pod_name,
            "namespace": server.namespace,
            "labels": {
                "app": "jupyterhub",
                "component": "singleuser-server",
                "heritage": "jupyterhub",
                "hub.jupyter.org/network-access-hub": "true",
                "hub.jupyter.org/servername": "",
                "hub.jupyter.org/username": user,
                TEAM_LABEL: team,
                PROFILE_LABEL: profile,
                USER_LABEL: user,
            },
            "annotations": {
                HUB_USER_ANNOTATION: user,
                HUB_SERVER_ANNOTATION: "",
                USER_ANNOTATION: user,
                SERVER_ANNOTATION: f"{user}/",
            },
        },
        "spec": spec,
    }


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int) -> None:
    """Await every call, ``limit`` at a time."""
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            await call()

    await asyncio.gather(*(worker() for _ in range(limit)))


async def fill_cluster(
    kubeconfig: Path,
    platforms: list[Platform],
    manifest: Callable[[Server], dict[str, Any]] = pod_manifest,
) -> None:
    """The platforms' namespaces, and their pods (``manifest``) running since their servers
    started."""
    api = await kube_client(str(kubeconfig))
    async with api:
        core = client.CoreV1Api(api)
        namespaces = sorted({s.namespace for p in platforms for s in p.servers})
        for name in namespaces:
            await core.create_namespace({"metadata": {"name": name}})
        # the ServiceAccount admission wants the namespace's default account, which the
        # controller-manager makes
        for name in namespaces:
            deadline = time.monotonic() + 60
            while True:
                listed = await core.list_namespaced_service_account(name)
                if any(sa.metadata.name == "default" for sa in listed.items):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"no default ServiceAccount in {name} within 60 s")
                await asyncio.sleep(0.2)
        servers = [s for p in platforms for s in p.servers]

        def create(server: Server) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                response = await core.create_namespaced_pod(
                    server.namespace, manifest(server), _preload_content=False
                )
                await response.read()

            return call

        def run(server: Server) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                response = await core.patch_namespaced_pod_status(
                    server.pod_name,
                    server.namespace,
                    {
                        "status": {
                            "phase": "Running",
                            "startTime": server.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "conditions": [
                                {"type": "Ready", "status": "True"},
                                {"type": "PodScheduled", "status": "True"},
                            ],
                        }
                    },
                    _content_type="application/merge-patch+json",
                    _preload_content=False,
                )
                await response.read()

            return call

        await bounded((create(s) for s in servers), SETUP_CONCURRENCY)
        await bounded((run(s) for s in servers), SETUP_CONCURRENCY)
        for platform in platforms:
            running = 0
            names = {s.pod_name for s in platform.servers}
            for namespace in sorted({s.namespace for s in platform.servers}):
                listed = await core.list_namespaced_pod(namespace, _preload_content=False)
                pods = json.loads(await listed.read())["items"]
                running += sum(
                    1
                    for pod in pods
                    if pod["metadata"]["name"] in names and pod["status"].get("phase") == "Running"
                )
            if running != len(platform.servers):
                raise SystemExit(f"{running} of {len(platform.servers)} pods are running")


def stop_scheduler(cluster: LocalCluster) -> None:
    """Stop a started cluster's scheduler: nothing is scheduled, so the pods made in it stay
    exactly as they are made."""
    assert cluster.control_plane is not None
    procs = cluster.control_plane.procs
    procs.stop_child(next(c for c in procs.children if c.name == "kube-scheduler"))
