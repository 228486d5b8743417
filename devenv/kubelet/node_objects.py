"""Node and Lease objects for the fake nodes, as a kubelet registers and renews them."""

from __future__ import annotations

import platform
from typing import Any

from .clock import micro_time, rfc3339
from .node_config import NodeSpec

KUBELET_VERSION = "v1.35.4"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
HOST_IP = "127.0.0.1"

_PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def pod_cidr(block: int) -> str:
    """The loopback /16 whose addresses the node's pods get."""
    return f"127.{block}.0.0/16"


def node_body(spec: NodeSpec, index: int, ready_since: str) -> dict[str, Any]:
    """The Node to create for ``spec``, status included."""
    cidr = pod_cidr(spec.block(index))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": spec.all_labels()},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "taints": spec.all_taints()},
        "status": node_status(spec, ready_since),
    }


def node_status(spec: NodeSpec, ready_since: str, heartbeat: str | None = None) -> dict[str, Any]:
    beat = heartbeat or rfc3339()
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": ready_since,
        }
        for kind, reason, message in _PRESSURE_CONDITIONS
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "process kubelet is posting ready status",
            "lastHeartbeatTime": beat,
            "lastTransitionTime": ready_since,
        }
    )
    capacity = spec.capacity()
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": HOST_IP},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": f"process-kubelet-{spec.name}",
            "systemUUID": f"process-kubelet-{spec.name}",
            "bootID": f"process-kubelet-{spec.name}",
            "kernelVersion": platform.release(),
            "osImage": "process kubelet (local processes)",
            "containerRuntimeVersion": "process://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def merged_taints(
    existing: list[dict[str, Any]], wanted: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """``existing`` plus any ``wanted`` taint it lacks (keyed by key and effect)."""
    present = {(t.get("key"), t.get("effect")) for t in existing}
    return list(existing) + [t for t in wanted if (t["key"], t["effect"]) not in present]


def lease_body(spec: NodeSpec, node_uid: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": spec.name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": spec.name, "uid": node_uid}
        ]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": spec.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time(),
        },
    }
