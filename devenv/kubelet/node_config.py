"""The fake nodes the process kubelet registers: built-in defaults or a JSON file.

A nodes file is a JSON list of objects with the keys ``name``, ``cpu``, ``memory`` and optionally
``pods``, ``gpus``, ``gpuProduct``, ``instanceType``, ``labels`` (object), ``taints`` (list of
``{key, value, effect}``) and ``addressBlock`` (the second octet of the node's 127.x.0.0/16 pod
addresses; 10 + the node's position by default). Nodes with ``gpus`` get the ``nvidia.com/gpu``
resource, the ``nvidia.com/gpu.present`` / ``nvidia.com/gpu.product`` labels and the
``nvidia.com/gpu=present`` NoSchedule taint, as the NVIDIA device plugin and GPU operator set
them on real clusters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3-FAKE"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu: str
    memory: str
    pods: int = 110
    gpus: int = 0
    gpu_product: str = DEFAULT_GPU_PRODUCT
    instance_type: str = "process-kubelet"
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    address_block: int | None = None

    def block(self, index: int) -> int:
        """Second octet of the pod addresses of this node, the ``index``-th of its kubelet."""
        return self.address_block if self.address_block is not None else 10 + index

    def all_labels(self) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": self.instance_type,
        }
        if self.gpus:
            labels["nvidia.com/gpu.present"] = "true"
            labels["nvidia.com/gpu.product"] = self.gpu_product
            labels["nvidia.com/gpu.count"] = str(self.gpus)
        labels.update(self.labels)
        return labels

    def all_taints(self) -> list[dict[str, str]]:
        taints = [dict(t) for t in self.taints]
        if self.gpus and not any(t.get("key") == GPU_RESOURCE for t in taints):
            taints.append({"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"})
        return taints

    def capacity(self) -> dict[str, str]:
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.pods),
            "ephemeral-storage": "100Gi",
        }
        if self.gpus:
            resources[GPU_RESOURCE] = str(self.gpus)
        return resources


DEFAULT_NODES: tuple[NodeSpec, ...] = (
    NodeSpec(name="cpu-0", cpu="16", memory="64Gi", instance_type="cpu-16x64"),
    NodeSpec(name="gpu-0", cpu="32", memory="256Gi", gpus=4, instance_type="gpu-4x32x256"),
    NodeSpec(name="gpu-1", cpu="32", memory="256Gi", gpus=4, instance_type="gpu-4x32x256"),
)


def _address_block(value: object) -> int | None:
    if value is None:
        return None
    block = int(value)  # type: ignore[call-overload]
    if not 1 <= block <= 254:
        raise ValueError(f"addressBlock {block} is outside 1..254")
    return block


def node_from_json(item: dict[str, Any]) -> NodeSpec:
    try:
        return NodeSpec(
            name=str(item["name"]),
            cpu=str(item["cpu"]),
            memory=str(item["memory"]),
            pods=int(item.get("pods", 110)),
            gpus=int(item.get("gpus", 0)),
            gpu_product=str(item.get("gpuProduct", DEFAULT_GPU_PRODUCT)),
            instance_type=str(item.get("instanceType", "process-kubelet")),
            labels={str(k): str(v) for k, v in item.get("labels", {}).items()},
            address_block=_address_block(item.get("addressBlock")),
            taints=tuple(
                {"key": str(t["key"]), "value": str(t.get("value", "")), "effect": str(t["effect"])}
                for t in item.get("taints", [])
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid node entry {item!r}: {exc}") from exc


def load_nodes(path: Path | None) -> tuple[NodeSpec, ...]:
    if path is None:
        return DEFAULT_NODES
    data = json.loads(path.read_text())
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty JSON list of nodes")
    nodes = tuple(node_from_json(item) for item in data)
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: node names must be unique")
    blocks = [n.block(i) for i, n in enumerate(nodes)]
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"{path}: nodes must have distinct address blocks")
    return nodes
