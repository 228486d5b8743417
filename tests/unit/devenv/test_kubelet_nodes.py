"""The process kubelet's fake nodes: objects, node files, leases and quantities."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from devenv.kubelet.node_config import DEFAULT_NODES, NodeSpec, load_nodes
from devenv.kubelet.node_objects import lease_body, merged_taints, node_body
from devenv.kubelet.quantity import divide_ceil, parse_quantity

pytestmark = pytest.mark.unit

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def test_default_nodes() -> None:
    assert [n.name for n in DEFAULT_NODES] == ["cpu-0", "gpu-0", "gpu-1"]
    cpu = node_body(DEFAULT_NODES[0], 0, "2030-01-01T00:00:00Z")
    assert cpu["status"]["capacity"] == {
        "cpu": "16",
        "memory": "64Gi",
        "pods": "110",
        "ephemeral-storage": "100Gi",
    }
    assert cpu["spec"]["taints"] == []
    assert cpu["spec"]["podCIDR"] == "127.10.0.0/16"
    assert "nvidia.com/gpu.present" not in cpu["metadata"]["labels"]


def test_gpu_node_object() -> None:
    body = node_body(DEFAULT_NODES[2], 2, "2030-01-01T00:00:00Z")
    labels = body["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "gpu-1"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == "amd64"
    assert labels["node.kubernetes.io/instance-type"]
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.product"]
    assert body["spec"]["taints"] == [GPU_TAINT]
    assert body["spec"]["podCIDR"] == "127.12.0.0/16"
    status = body["status"]
    assert status["capacity"]["nvidia.com/gpu"] == "4"
    assert status["allocatable"] == status["capacity"]
    assert status["capacity"]["cpu"] == "32"
    assert status["capacity"]["memory"] == "256Gi"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
        "Ready": "True",
    }
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert status["nodeInfo"]["kubeletVersion"] == "v1.35.4"


def test_lease_is_owned_by_node() -> None:
    lease = lease_body(DEFAULT_NODES[0], "node-uid")
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "node-uid"
    assert lease["spec"]["holderIdentity"] == "cpu-0"
    assert lease["spec"]["renewTime"].endswith("Z")


def test_merged_taints_keep_others_and_add_missing() -> None:
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    assert merged_taints([not_ready], [GPU_TAINT]) == [not_ready, GPU_TAINT]
    assert merged_taints([GPU_TAINT], [GPU_TAINT]) == [GPU_TAINT]


def test_nodes_file(tmp_path: Path) -> None:
    path = tmp_path / "nodes.json"
    path.write_text(
        json.dumps(
            [
                {"name": "small", "cpu": "2", "memory": "4Gi", "addressBlock": 200},
                {
                    "name": "a100",
                    "cpu": "8",
                    "memory": "32Gi",
                    "gpus": 2,
                    "gpuProduct": "A100-FAKE",
                    "labels": {"team": "a"},
                    "taints": [{"key": "dedicated", "value": "a", "effect": "NoExecute"}],
                },
            ]
        )
    )
    small, a100 = load_nodes(path)
    assert small == NodeSpec(name="small", cpu="2", memory="4Gi", address_block=200)
    assert small.block(0) == 200
    assert a100.block(1) == 11
    assert a100.all_labels()["nvidia.com/gpu.product"] == "A100-FAKE"
    assert a100.all_labels()["team"] == "a"
    assert a100.all_taints() == [
        {"key": "dedicated", "value": "a", "effect": "NoExecute"},
        GPU_TAINT,
    ]
    assert load_nodes(None) == DEFAULT_NODES


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"name": "x"}',
        '[{"name": "x"}]',
        '[{"name": "x", "cpu": "1", "memory": "1Gi"}, {"name": "x", "cpu": "1", "memory": "1Gi"}]',
        '[{"name": "x", "cpu": "1", "memory": "1Gi", "addressBlock": 300}]',
        '[{"name": "x", "cpu": "1", "memory": "1Gi", "addressBlock": 11},'
        ' {"name": "y", "cpu": "1", "memory": "1Gi"}]',
    ],
)
def test_invalid_nodes_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "nodes.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        load_nodes(path)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("1.5", Fraction(3, 2)),
        ("64Gi", Fraction(64 * 2**30)),
        ("1k", Fraction(1000)),
        ("1e3", Fraction(1000)),
        ("100n", Fraction(1, 10**7)),
    ],
)
def test_parse_quantity(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Qi", "1.2.3"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("quantity", "divisor", "value"),
    [("250m", None, 1), ("250m", "1m", 250), ("1Gi", "1Mi", 1024), ("1G", "1Mi", 954)],
)
def test_divide_ceil(quantity: str, divisor: str | None, value: int) -> None:
    assert divide_ceil(quantity, divisor) == value
