"""A sample team configuration and small builders shared by the policy unit tests."""

from __future__ import annotations

import copy
from typing import Any

from hub_ext.policy import (
    Ledger,
    MLTeamsConfig,
    PodSummary,
    Reservation,
    SpawnRequest,
    load_config,
    server_key,
)

GIB = 2**30

SAMPLE: dict[str, Any] = {
    "teams": {
        "vision": {
            "groups": ["/ml/vision", "vision-engineers"],
            "lead_groups": ["/ml/vision/leads"],
            "quota": {"gpus": 8, "gpus_per_user": 2},
            "profiles": ["cpu", "pytorch-1gpu", "pytorch-2gpu", "flex"],
            "datasets": ["imagenet"],
            "promotion": {
                "evaluation": {
                    "uri": "s3://mlteams-governed/evaluation/vision/crops.csv",
                    "label_column": "label",
                    "task": "classification",
                },
                "gates": {"accuracy": {"min": 0.9}},
                "high_stakes": False,
            },
            "contact": "#ml-vision",
        },
        "nlp": {
            "groups": ["/ml/nlp"],
            "lead_groups": ["/ml/nlp/leads"],
            "namespace": "ml-nlp",
            "quota": {"gpus": 4, "gpus_per_user": 4, "cpu": "64", "memory": "256Gi"},
            "profiles": ["cpu", "queued-1gpu", "queued-4gpu"],
        },
        "research": {
            "groups": ["/ml/research"],
            "quota": {"gpus": 0, "cpu": "4", "memory": "16Gi"},
            "profiles": ["cpu"],
        },
    },
    "profiles": {
        "cpu": {"display_name": "CPU only", "image": "mlteams/cpu:1", "cpu": 2, "memory": "8Gi"},
        "pytorch-1gpu": {
            "display_name": "PyTorch, 1 GPU",
            "image": "mlteams/pytorch:1",
            "gpus": 1,
            "cpu": 8,
            "memory": "64Gi",
            "node_selector": {"nvidia.com/gpu.product": "A100"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "env": {"NCCL_DEBUG": "WARN"},
        },
        "pytorch-2gpu": {"image": "mlteams/pytorch:1", "gpus": 2, "cpu": 16, "memory": "128Gi"},
        "flex": {"image": "mlteams/pytorch:1", "gpus": {"min": 1, "max": 4, "default": 1}},
        "queued-1gpu": {
            "image": "mlteams/pytorch:1",
            "gpus": 1,
            "cpu": "8",
            "memory": "32Gi",
            "queue": {"enabled": True, "max_wait_seconds": 600},
        },
        "queued-4gpu": {
            "image": "mlteams/pytorch:1",
            "gpus": 4,
            "queue": {"enabled": True, "max_wait_seconds": 1200},
        },
    },
    "datasets": {
        "imagenet": {
            "uri": "s3://lake/imagenet/",
            "format": "parquet",
            "credentials_secret": "lake-readonly",
        }
    },
}


def sample_raw() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE)


def sample_config() -> MLTeamsConfig:
    return load_config(sample_raw())


def pod(
    team: str,
    user: str,
    gpus: int = 1,
    *,
    name: str | None = None,
    server_name: str = "",
    phase: str = "Running",
    cpu: int = 0,
    memory: int = 0,
    deleting: bool = False,
    namespace: str | None = None,
) -> PodSummary:
    return PodSummary(
        namespace=namespace or f"team-{team}",
        name=name or f"jupyter-{user}-{server_name or 'default'}",
        team=team,
        user=user,
        server=server_key(user, server_name),
        gpus=gpus,
        cpu=cpu,
        memory=memory,
        phase=phase,
        deleting=deleting,
    )


def reservation(team: str, user: str, gpus: int = 1, server_name: str = "") -> Reservation:
    return Reservation(
        server=server_key(user, server_name),
        team=team,
        user=user,
        profile="pytorch-1gpu",
        gpus=gpus,
    )


def ledger_with(*holders: tuple[str, str, int]) -> Ledger:
    """A ledger with one running pod per (team, user, gpus), each on its own named server."""
    ledger = Ledger()
    for index, (team, user, gpus) in enumerate(holders):
        ledger.upsert_pod(pod(team, user, gpus, server_name=f"s{index}"))
    return ledger


def req(
    user: str = "ada", team: str = "vision", profile: str = "pytorch-1gpu", **fields: Any
) -> SpawnRequest:
    return SpawnRequest(user=user, team=team, profile=profile, **fields)
