"""Registering the fake nodes and keeping them Ready: a Lease renewal and a status update per
node every few seconds, so the node lifecycle controller never marks them unreachable."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from .api import Kube, KubeError
from .clock import micro_time, rfc3339
from .node_config import NodeSpec
from .node_objects import (
    LEASE_DURATION_SECONDS,
    LEASE_NAMESPACE,
    lease_body,
    merged_taints,
    node_body,
    node_status,
)

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0


class NodeHeartbeat:
    def __init__(self, kube: Kube, nodes: list[NodeSpec]) -> None:
        self._kube = kube
        self._nodes = nodes
        self._ready_since = rfc3339()
        self._uids: dict[str, str] = {}

    async def register(self) -> None:
        """Create each node, or bring an existing one up to date; then post status and lease."""
        for index, spec in enumerate(self._nodes):
            node = await self._register_one(spec, index)
            self._uids[spec.name] = node["metadata"]["uid"]
            await self._post_status(spec)
            await self._renew_lease(spec)
            log.info("node %s registered and ready", spec.name)

    async def _register_one(self, spec: NodeSpec, index: int) -> dict[str, Any]:
        body = node_body(spec, index, self._ready_since)
        try:
            return await self._kube.create("/api/v1/nodes", body)
        except KubeError as exc:
            if exc.status != 409:
                raise
        existing = await self._kube.get(f"/api/v1/nodes/{spec.name}")
        taints = merged_taints(existing.get("spec", {}).get("taints") or [], spec.all_taints())
        patch = {"metadata": {"labels": spec.all_labels()}, "spec": {"taints": taints}}
        return await self._kube.merge_patch(f"/api/v1/nodes/{spec.name}", patch)

    async def _post_status(self, spec: NodeSpec) -> None:
        status = node_status(spec, self._ready_since)
        await self._kube.merge_patch(f"/api/v1/nodes/{spec.name}/status", {"status": status})

    async def _renew_lease(self, spec: NodeSpec) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{spec.name}"
        patch = {
            "spec": {
                "holderIdentity": spec.name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": micro_time(),
            }
        }
        try:
            await self._kube.merge_patch(path, patch)
        except KubeError as exc:
            if exc.status != 404:
                raise
            body = lease_body(spec, self._uids.get(spec.name))
            await self._kube.create(
                f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", body
            )

    async def run(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Renew leases and post node status forever; a node deleted meanwhile is registered
        again."""
        while True:
            await asyncio.sleep(interval)
            for index, spec in enumerate(self._nodes):
                await self._beat(spec, index)

    async def _beat(self, spec: NodeSpec, index: int) -> None:
        try:
            await self._renew_lease(spec)
        except (KubeError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("node %s: lease renewal failed: %s", spec.name, exc)
        try:
            await self._post_status(spec)
        except KubeError as exc:
            if exc.status != 404:
                log.warning("node %s: status update failed: %s", spec.name, exc)
                return
            log.warning("node %s disappeared; registering it again", spec.name)
            try:
                node = await self._register_one(spec, index)
                self._uids[spec.name] = node["metadata"]["uid"]
                await self._post_status(spec)
            except (KubeError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as again:
                log.warning("node %s: registration failed: %s", spec.name, again)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("node %s: status update failed: %s", spec.name, exc)
