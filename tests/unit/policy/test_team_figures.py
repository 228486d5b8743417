"""A team's figures for the side panel, shaped from what the cluster and the hub say: whole
answers, the notes that say what could not be read, the gates in words and the pending spawns."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy import MLTeamsConfig, load_config
from hub_ext.policy.config import Promotion
from hub_ext.policy.team_figures import (
    ClusterReading,
    PendingSpawn,
    approvers,
    gate_list,
    pending_spawns,
    quota_gpus,
    team_figures,
)

pytestmark = pytest.mark.unit

GPU = "requests.nvidia.com/gpu"


def _config() -> MLTeamsConfig:
    return load_config(
        {
            "profiles": {
                "cpu": {"image": "mlteams/cpu:1"},
                "gpu1": {"image": "mlteams/pytorch:1", "gpus": 1},
            },
            "teams": {
                "vision": {
                    "display_name": "Team Vision",
                    "groups": ["vision-engineers"],
                    "quota": {"gpus": 8, "gpus_per_user": 2},
                    "namespace": "team-vision",
                    "profiles": ["gpu1", "cpu"],
                    "promotion": {
                        "evaluation": {
                            "uri": "s3://governed/evaluation/vision.csv",
                            "label_column": "species",
                            "task": "classification",
                        },
                        "gates": {"accuracy": {"min": 0.9}},
                        "approver_groups": ["ml-reviewers", "ml-audit"],
                        "high_stakes": True,
                    },
                },
                "nlp": {"groups": ["nlp-engineers"], "quota": {"gpus": 4}, "profiles": ["cpu"]},
            },
        }
    )


def _promotion_view(available: bool = True) -> dict[str, Any]:
    return {
        "available": available,
        "reason": None if available else "promotion is not set up",
        "high_stakes": True,
        "approvers": "a lead of team vision or a member of ml-reviewers, ml-audit",
        "gates": [
            {
                "gate": "accuracy.min",
                "metric": "accuracy",
                "threshold": 0.9,
                "description": "accuracy measured on the team's held-out set is at least 0.9",
            },
            {
                "gate": "evidence.signature",
                "metric": None,
                "threshold": None,
                "description": "the model was logged with a signature (its inputs and outputs)",
            },
        ],
    }


QUEUE = [{"user": "dora", "gpus": 1, "position": 1}]


@pytest.mark.parametrize(
    ("quota", "pods", "queue", "note", "gpus"),
    [
        (
            {"status": {"hard": {GPU: "6"}, "used": {GPU: "7"}}},
            [],
            QUEUE,
            None,
            {
                "limit": 6,
                "in_use": 7,
                "free": 0,
                "per_user_limit": 2,
                "you_hold": 0,
                "queue": QUEUE,
            },
        ),
        (
            {"status": {"hard": {GPU: "6"}, "used": {GPU: "2"}}},
            None,
            None,
            "The GPUs you hold are unavailable: the cluster did not list the team's pods. "
            "The spawn queue is unavailable: the hub did not answer.",
            {
                "limit": 6,
                "in_use": 2,
                "free": 4,
                "per_user_limit": 2,
                "you_hold": None,
                "queue": [],
            },
        ),
        (
            None,
            None,
            QUEUE,
            "Live figures are unavailable: the cluster did not answer for namespace "
            "team-vision. These are the team's configured limits.",
            {
                "limit": 8,
                "in_use": None,
                "free": None,
                "per_user_limit": 2,
                "you_hold": None,
                "queue": QUEUE,
            },
        ),
    ],
    ids=["more in use than the limit", "no pods and no queue", "nothing live"],
)
def test_the_whole_answer_says_what_could_not_be_read(
    quota: dict[str, Any] | None,
    pods: list[dict[str, Any]] | None,
    queue: list[dict[str, Any]] | None,
    note: str | None,
    gpus: dict[str, Any],
) -> None:
    team = _config().teams["vision"]
    answer = team_figures(
        team,
        user="alice",
        reading=ClusterReading(quota, pods),
        queue=queue,
        promotion_unavailable=None,
    )
    assert answer == {
        "team": "vision",
        "display_name": "Team Vision",
        "source": "config" if quota is None else "live",
        "note": note,
        "gpus": gpus,
        "promotion": _promotion_view(),
        "quota_requests": None,
    }


def test_the_users_own_cap_and_quota_requests_are_passed_through() -> None:
    answer = team_figures(
        _config().teams["vision"],
        user="alice",
        reading=ClusterReading({"status": {"hard": {GPU: "8"}, "used": {GPU: "8"}}}, []),
        queue=[],
        promotion_unavailable="promotion is not set up",
        per_user_limit=4,
        requests=[{"id": 3, "gpus": 4}],
    )
    assert answer["gpus"]["free"] == 0
    assert answer["gpus"]["per_user_limit"] == 4
    assert answer["promotion"] == _promotion_view(available=False)
    assert answer["quota_requests"] == [{"id": 3, "gpus": 4}]


def test_every_kind_of_gate_in_words() -> None:
    promotion = Promotion.model_validate(
        {
            "evaluation": {
                "uri": "s3://governed/evaluation/k.csv",
                "label_column": "y",
                "task": "regression",
            },
            "gates": {
                "rmse": {"max": 0.5, "max_regression": 0.05},
                "r2": {"min": 0.75, "max": 1},
            },
            "evidence": {"signature": True, "dataset_inputs": True},
        }
    )
    assert gate_list(promotion) == [
        {
            "gate": "r2.min",
            "metric": "r2",
            "threshold": 0.75,
            "description": "r2 measured on the team's held-out set is at least 0.75",
        },
        {
            "gate": "r2.max",
            "metric": "r2",
            "threshold": 1,
            "description": "r2 measured on the team's held-out set is at most 1",
        },
        {
            "gate": "rmse.max",
            "metric": "rmse",
            "threshold": 0.5,
            "description": "rmse measured on the team's held-out set is at most 0.5",
        },
        {
            "gate": "rmse.max_regression",
            "metric": "rmse",
            "threshold": 0.05,
            "description": "rmse is at most 0.05 worse than the current champion's",
        },
        {
            "gate": "evidence.signature",
            "metric": None,
            "threshold": None,
            "description": "the model was logged with a signature (its inputs and outputs)",
        },
        {
            "gate": "evidence.dataset_inputs",
            "metric": None,
            "threshold": 1.0,
            "description": "the run recorded at least one dataset it was trained on",
        },
    ]


def test_approvers_in_words() -> None:
    config = _config()
    assert approvers(config.teams["vision"]) == (
        "a lead of team vision or a member of ml-reviewers, ml-audit"
    )
    assert approvers(config.teams["nlp"]) == "a lead of team nlp"


@pytest.mark.parametrize(
    "quota",
    [
        {"status": {"hard": {GPU: "8"}}},
        {"status": {"hard": {GPU: 8.0}, "used": {GPU: "1"}}},
        {"status": {"hard": {GPU: "8"}, "used": {GPU: 1.0}}},
    ],
    ids=["nothing counted yet", "a float limit", "a float in use"],
)
def test_a_quota_that_does_not_say_both_counts_as_integers_is_not_read(
    quota: dict[str, Any],
) -> None:
    assert quota_gpus(quota) is None


def _pending(options: dict[str, Any], started: str | None) -> dict[str, Any]:
    return {"pending": "spawn", "ready": False, "user_options": options, "started": started}


def test_pending_spawns_skip_other_servers_and_keep_looking() -> None:
    model = {
        "name": "dora",
        "groups": ["vision-engineers"],
        "servers": {
            "ready": {"pending": None, "ready": True, "user_options": {"team": "vision"}},
            "refused": _pending({"team": "vision", "profile": "nope"}, "2026-03-01T10:00:00Z"),
            "": _pending({"team": "vision", "profile": "gpu1"}, None),
            "small": _pending({"team": "vision", "profile": "cpu"}, "2026-03-01T10:00:03Z"),
            "late": _pending({"team": "vision", "profile": "gpu1"}, "2026-03-01T10:00:04Z"),
        },
    }
    assert pending_spawns(_config(), "vision", model) == [
        PendingSpawn("dora", "", 1, ""),
        PendingSpawn("dora", "late", 1, "2026-03-01T10:00:04Z"),
    ]
