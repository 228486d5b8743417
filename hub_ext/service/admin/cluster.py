"""What the admin pages read from and write to the cluster, with the service's Kubernetes access:
the pods of every team namespace, and a team's ResourceQuota when an override changes it.

One API client serves the service process (made on first use); every call has a timeout, and a
namespace that cannot be read is ``None`` rather than an error, so one team's trouble leaves the
others' figures standing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from logging import Logger
from typing import Any

from kubernetes_asyncio import client
from tornado.log import app_log

from hub_ext.policy.config import MLTeamsSection, Quota
from hub_ext.policy.manifests import team_manifests
from hub_ext.provisioning.apply import ProvisioningError, reconcile
from hub_ext.service.kube import kube_client
from hub_ext.service.team_handlers import KUBE_ERRORS, KUBE_TIMEOUT_SECONDS

Connect = Callable[[], Awaitable[client.ApiClient]]


class AdminCluster:
    """The team namespaces as the admin pages see them."""

    def __init__(self, connect: Connect = kube_client, timeout: float = KUBE_TIMEOUT_SECONDS):
        self.connect = connect
        self.timeout = timeout
        self._api: client.ApiClient | None = None
        self._lock = asyncio.Lock()

    async def api(self) -> client.ApiClient:
        async with self._lock:
            if self._api is None:
                self._api = await self.connect()
            return self._api

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def pods(self, namespaces: Iterable[str]) -> dict[str, list[dict[str, Any]] | None]:
        """The pods of each namespace as plain JSON; ``None`` for one the cluster did not list."""
        names = list(namespaces)
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
        response: Any = await core.list_namespaced_pod(
            namespace, _request_timeout=self.timeout, _preload_content=False
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
