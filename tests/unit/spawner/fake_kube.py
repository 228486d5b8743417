"""A stand-in for the Kubernetes API under KubeSpawner's own spawn code, for unit tests.

``FakeKube.install`` replaces KubeSpawner's API client and reflector start with in-memory ones,
so that ``TeamKubeSpawner.start()`` runs the installed KubeSpawner's real ``_start()`` (call
order, retries, pod manifest) without a cluster. A created pod is running at once, and the pod
"reflector" mirrors into the hub's ledger as the real one does.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner import spawner as kubespawner_module
from traitlets.config import Config

from hub_ext.policy import MirroredPods
from hub_ext.spawner import TeamKubeSpawner
from tests.unit.policy.sample import sample_raw


class FakeReflector:
    def __init__(self, resources: dict[str, Any]) -> None:
        self.resources = resources
        self.first_load_future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_load_future.set_result(None)

    @property
    def pods(self) -> dict[str, Any]:
        return self.resources

    @property
    def events(self) -> list[Any]:
        return []

    async def stop(self) -> None:
        pass


@dataclass
class FakeKube:
    """The cluster as KubeSpawner sees it: pods by ``namespace/name``, and call counts.

    ``existing`` holds pod manifests the cluster has before the hub's reflector starts.
    """

    existing: dict[str, Any] = field(default_factory=dict)
    created: list[Any] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reflector_starts: Counter[str] = field(default_factory=Counter)
    create_errors: list[ApiException] = field(default_factory=list)
    reflectors: dict[Any, FakeReflector] = field(default_factory=dict)
    # volume claims by ``namespace/name``, and the errors the next claim creations raise
    claims: dict[str, Any] = field(default_factory=dict)
    claim_errors: list[ApiException] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(kubespawner_module, "load_config", lambda **_: None)
        monkeypatch.setattr(kubespawner_module, "shared_client", lambda *_a, **_k: self)
        monkeypatch.setattr(KubeSpawner, "reflectors", self.reflectors)
        monkeypatch.setattr(TeamKubeSpawner, "_team_states", {})
        kube = self

        async def start_reflector(
            spawner: KubeSpawner, kind: str, reflector_class: Any, replace: bool = False, **_: Any
        ) -> FakeReflector:
            key = spawner._get_reflector_key(kind)
            if key in kube.reflectors and not replace:
                return kube.reflectors[key]
            kube.reflector_starts[kind] += 1
            resources: dict[str, Any] = {}
            if kind == "pods" and isinstance(spawner, TeamKubeSpawner):
                resources = MirroredPods(spawner.team_state.ledger, dict(kube.existing))
            reflector = kube.reflectors[key] = FakeReflector(resources)
            return reflector

        monkeypatch.setattr(KubeSpawner, "_start_reflector", start_reflector)

    @property
    def pods(self) -> dict[str, Any]:
        return self.reflectors[("pods", None)].pods

    async def create_namespaced_pod(self, namespace: str, pod: Any) -> None:
        if self.create_errors:
            raise self.create_errors.pop(0)
        pod.metadata.namespace = namespace
        self.created.append(pod)
        async with ApiClient() as api:
            manifest = api.sanitize_for_serialization(pod)
        manifest["metadata"]["uid"] = f"uid-{len(self.created)}"
        manifest["status"] = {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "containerStatuses": [{"name": "notebook", "ready": True, "state": {"running": {}}}],
        }
        self.pods[f"{namespace}/{pod.metadata.name}"] = manifest

    async def create_namespaced_persistent_volume_claim(self, namespace: str, body: Any) -> Any:
        if self.claim_errors:
            raise self.claim_errors.pop(0)
        key = f"{namespace}/{body.metadata.name}"
        if key in self.claims:
            raise ApiException(status=409, reason="Conflict")
        body.metadata.namespace = namespace
        self.claims[key] = body
        return body

    async def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
        found = self.claims.get(f"{namespace}/{name}")
        if found is None:
            raise ApiException(status=404, reason="Not Found")
        return found

    async def delete_namespaced_persistent_volume_claim(
        self, name: str, namespace: str, **_: Any
    ) -> None:
        if self.claims.pop(f"{namespace}/{name}", None) is None:
            raise ApiException(status=404, reason="Not Found")

    async def delete_namespaced_pod(self, name: str, namespace: str, **_: Any) -> None:
        self.deleted.append(f"{namespace}/{name}")
        if self.pods.pop(f"{namespace}/{name}", None) is None:
            raise ApiException(status=404, reason="Not Found")


def hub_config(**spawner: Any) -> Config:
    """The hub configuration of the unit tests: the sample teams, no events, quick polls."""
    config = Config()
    for key, value in sample_raw().items():
        setattr(config.MLTeams, key, value)
    config.MLTeams.queue_poll_seconds = 0.05
    config.KubeSpawner.events_enabled = False
    config.KubeSpawner.start_timeout = 60
    for key, value in spawner.items():
        setattr(config.KubeSpawner, key, value)
    return config


def make_spawner(
    config: Config,
    user: str,
    groups: list[str],
    user_options: dict[str, Any] | None = None,
) -> TeamKubeSpawner:
    """A spawner of ``user``'s default server, the user in hub groups ``groups``."""
    hub_user = SimpleNamespace(
        name=user,
        id=1,
        url=f"/user/{user}/",
        groups=[SimpleNamespace(name=g) for g in groups],
        settings={},
    )
    spawner = TeamKubeSpawner(_mock=True, config=config, user=hub_user)
    spawner.user_options = user_options or {}
    return spawner
