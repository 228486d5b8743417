"""What the admin pages read from and write to the cluster, with the service's Kubernetes access:
the pods of every team namespace, and a team's ResourceQuota when an override changes it.

One API client serves the service process (made on first use); every call has a timeout, and a
namespace that cannot be read is ``None`` rather than an error, so one team's trouble leaves the
others' figures standing.

The team servers' pods are kept in memory by KubeSpawner's own pod reflector (one list, then a
watch, across namespaces, as the hub's spawner keeps them), once ``watch()`` has started it: the
overview then reads memory, not the API. Until it has listed once, or after it gave up, and for
an action that must see the pod as it is now (stopping a server), the pods are listed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from logging import Logger
from typing import Any

from kubernetes_asyncio import client
from kubespawner.reflector import ResourceReflector
from tornado.log import app_log

from hub_ext.policy.config import MLTeamsSection, Quota
from hub_ext.policy.manifests import team_manifests
from hub_ext.provisioning.apply import ProvisioningError, reconcile
from hub_ext.service.kube import kube_client
from hub_ext.service.team_handlers import KUBE_ERRORS, KUBE_TIMEOUT_SECONDS

Connect = Callable[[], Awaitable[client.ApiClient]]


SERVER_LABELS = {"component": "singleuser-server"}
"""The label KubeSpawner gives every server's pod (its ``component_label``)."""


class TeamPodReflector(ResourceReflector):
    """KubeSpawner's reflector of the servers' pods in every namespace."""

    kind = "pods"
    omit_namespace = True


class AdminCluster:
    """The team namespaces as the admin pages see them."""

    def __init__(self, connect: Connect = kube_client, timeout: float = KUBE_TIMEOUT_SECONDS):
        self.connect = connect
        self.timeout = timeout
        self._api: client.ApiClient | None = None
        self._lock = asyncio.Lock()
        self._reflector: TeamPodReflector | None = None

    async def watch(self, log: Logger = app_log) -> bool:
        """Keep the servers' pods in memory from now on; whether the first listing worked (if
        not, the pods are listed on each request, as before)."""
        reflector = None
        try:
            api = await self.api()
            # a full list again at most every 5 minutes without events (KubeSpawner's default of
            # 10 s would decode every pod of the cluster six times a minute)
            reflector = TeamPodReflector(
                labels=SERVER_LABELS, timeout_seconds=300, restart_seconds=300
            )
            # our client (the service's own configuration), not KubeSpawner's shared one
            reflector.api = client.CoreV1Api(api)
            await reflector.start()
        except Exception as exc:
            if reflector is not None and reflector.first_load_future.done():
                reflector.first_load_future.exception()  # said here, not again when collected
            log.warning("mlteams admin: pods not watched, listed on each request: %s", exc)
            return False
        self._reflector = reflector
        return True

    def _watched(self, namespaces: list[str]) -> dict[str, list[dict[str, Any]] | None] | None:
        reflector = self._reflector
        if reflector is None or reflector.watch_task is None or reflector.watch_task.done():
            return None
        found: dict[str, list[dict[str, Any]] | None] = {name: [] for name in namespaces}
        for pod in list(reflector.resources.values()):
            listed = found.get(str((pod.get("metadata") or {}).get("namespace")))
            if listed is not None:
                listed.append(pod)
        return found

    async def api(self) -> client.ApiClient:
        async with self._lock:
            if self._api is None:
                self._api = await self.connect()
            return self._api

    async def close(self) -> None:
        if self._reflector is not None:
            await self._reflector.stop()
            self._reflector = None
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def pods(
        self, namespaces: Iterable[str], *, fresh: bool = False
    ) -> dict[str, list[dict[str, Any]] | None]:
        """The servers' pods of each namespace as plain JSON; ``None`` for one the cluster did not
        list. ``fresh``: asked of the API now, not taken from memory."""
        names = list(namespaces)
        if not fresh:
            watched = self._watched(names)
            if watched is not None:
                return watched
        try:
            api = await self.api()
        except KUBE_ERRORS as exc:
            app_log.warning("mlteams admin: no Kubernetes API client: %s", exc)
            return dict.fromkeys(names)
        core = client.CoreV1Api(api)
        found = await asyncio.gather(
            *(self._list(core, namespace) for namespace in names), return_exceptions=True
        )
        out: dict[str, list[dict[str, Any]] | None] = {}
        for namespace, listed in zip(names, found, strict=True):
            if isinstance(listed, BaseException):
                if not isinstance(listed, KUBE_ERRORS):
                    raise listed
                app_log.warning("mlteams admin: could not list pods of %s: %s", namespace, listed)
                out[namespace] = None
                continue
            out[namespace] = listed
        return out

    async def _list(self, core: client.CoreV1Api, namespace: str) -> list[dict[str, Any]]:
        """The namespace's pods as the API sends them: plain JSON, no client models (which
        would parse every field of every pod only to be turned back into plain JSON)."""
        selector = ",".join(f"{key}={value}" for key, value in SERVER_LABELS.items())
        response: Any = await core.list_namespaced_pod(
            namespace,
            label_selector=selector,
            _request_timeout=self.timeout,
            _preload_content=False,
        )
        async with response:
            listed = json.loads(await response.read())
        items = listed.get("items") if isinstance(listed, dict) else None
        return [item for item in items or () if isinstance(item, dict)]

    async def apply_quotas(
        self, config: MLTeamsSection, quotas: Mapping[str, Quota], *, log: Logger = app_log
    ) -> list[str]:
        """Apply the ResourceQuota of each team in ``quotas`` (its effective quota); the problems,
        each naming its team, empty when every quota was applied."""
        if not config.provision:
            return []
        try:
            api = await self.api()
        except KUBE_ERRORS as exc:
            return [f"no Kubernetes API client: {exc}"]
        problems = []
        for name, quota in sorted(quotas.items()):
            team = config.teams.get(name)
            if team is None:
                continue
            manifests = [
                manifest
                for manifest in team_manifests(team, quota=quota)
                if manifest["kind"] == "ResourceQuota"
            ]
            try:
                await reconcile(api, manifests, log=log)
            except (ProvisioningError, *KUBE_ERRORS) as exc:
                problems.append(f"team {name}: {exc}")
        return problems
