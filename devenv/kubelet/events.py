"""core/v1 Events about pods, reported as the kubelet of the pod's node reports them."""

from __future__ import annotations

import logging
import time
from typing import Any

from .api import Kube, KubeError
from .clock import rfc3339

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def event_body(
    pod: dict[str, Any],
    node: str,
    kind: str,
    reason: str,
    message: str,
    container: str | None = None,
    init: bool = False,
) -> dict[str, Any]:
    meta = pod["metadata"]
    involved: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if container:
        field = "initContainers" if init else "containers"
        involved["fieldPath"] = f"spec.{field}{{{container}}}"
    stamp = rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{time.time_ns():x}",
            "namespace": meta["namespace"],
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": "kubelet",
        "reportingInstance": node,
    }


class EventRecorder:
    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    async def record(
        self,
        pod: dict[str, Any],
        kind: str,
        reason: str,
        message: str,
        container: str | None = None,
        init: bool = False,
    ) -> None:
        node = pod.get("spec", {}).get("nodeName", "")
        body = event_body(pod, node, kind, reason, message, container, init)
        try:
            await self._kube.create(
                f"/api/v1/namespaces/{body['metadata']['namespace']}/events", body
            )
        except KubeError as exc:
            if exc.status in (403, 404):
                log.debug(
                    "event %s for pod %s not recorded: %s", reason, pod["metadata"]["name"], exc
                )
                return
            log.warning(
                "could not record event %s for pod %s: %s", reason, pod["metadata"]["name"], exc
            )
