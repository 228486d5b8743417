"""Promotion requests, approvals and rollbacks: what each refusal says and its HTTP status,
the limits of artifact paths and free text at their boundary, and approval checked against a
team alone (without the whole configuration)."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy import load_config
from hub_ext.policy.promotion import (
    MAX_HUMAN_TEXT,
    PromotionRefused,
    PromotionRequest,
    check_human_fields,
    choose_rollback,
    may_approve,
    parse_request,
    rules_for,
)

pytestmark = pytest.mark.unit

RUN = "0123456789abcdef" * 2
CONFIG = load_config(
    {
        "profiles": {"cpu": {"image": "img"}},
        "teams": {
            "vision": {
                "groups": ["vision-engineers"],
                "lead_groups": ["vision-leads", "/ml/vision/leads"],
                "quota": {"gpus": 0},
                "profiles": ["cpu"],
                "promotion": {
                    "evaluation": {
                        "uri": "s3://gov/eval/v.csv",
                        "label_column": "y",
                        "task": "classification",
                    },
                    "gates": {"accuracy": {"min": 0.9}},
                    "approver_groups": ["model-risk"],
                    "models": {"fraud": {"high_stakes": True}},
                },
            },
        },
    }
)
VISION = CONFIG.teams["vision"]


def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(PromotionRefused) as info:
        call(*args, **kwargs)
    return info.value.http_status, info.value.message


def test_rules_name_their_team_and_model_and_an_unknown_team_is_404() -> None:
    rules = rules_for(CONFIG, "vision", "fraud")
    assert (rules.team, rules.model, rules.high_stakes) == ("vision", "fraud", True)
    assert refusal(rules_for, CONFIG, "nope", "iris") == (404, "There is no team 'nope'.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'Send a JSON object such as {"model": "iris", "run_id": "<MLflow run id>"}.'),
        (
            {"model": "iris", "run_id": RUN, "stage": "prod"},
            "Unknown key 'stage'; the keys are model, run_id, artifact_path, team, "
            "intended_use, out_of_scope_use, limitations.",
        ),
        (
            {"model": "Iris", "run_id": RUN},
            "model must be your team's name for the model: lower-case letters, digits and '-', "
            "at most 63 characters (got 'Iris').",
        ),
        (
            {"model": "iris", "run_id": "abc"},
            "run_id must be the MLflow run that logged the model (32 hexadecimal characters).",
        ),
        (
            {"model": "iris", "run_id": RUN, "artifact_path": "a/../b"},
            "artifact_path must be the relative path the run logged the model under, "
            "such as model.",
        ),
        (
            {"model": "iris", "run_id": RUN, "team": ["vision"]},
            "team must be the name of one of your teams.",
        ),
    ],
)
def test_a_bad_request_says_what_to_change(body: Any, message: str) -> None:
    assert refusal(parse_request, body) == (400, message)


def test_a_request_keeps_its_run_and_team() -> None:
    request = parse_request({"model": "iris", "run_id": RUN, "team": "vision"})
    assert request == PromotionRequest(model="iris", run_id=RUN, team="vision")
    assert parse_request({"model": "iris", "run_id": RUN, "team": ""}).team is None


@pytest.mark.parametrize(
    ("path", "accepted"),
    [
        ("a" * 1024, True),
        ("a" * 1025, False),
        ("my model/v 1", True),
        ("model\x7f", False),
        ("model\x1f", False),
        ("model\x80", True),
        ("a\\b", False),
        ("./model", False),
        ("model/", False),
    ],
)
def test_artifact_paths(path: str, accepted: bool) -> None:
    body = {"model": "iris", "run_id": RUN, "artifact_path": path}
    if accepted:
        assert parse_request(body).artifact_path == path
    else:
        assert refusal(parse_request, body)[0] == 400


def test_free_text_up_to_its_limit() -> None:
    base = {"model": "iris", "run_id": RUN}
    text = "x" * MAX_HUMAN_TEXT
    assert parse_request({**base, "limitations": text}).limitations == text
    assert refusal(parse_request, {**base, "limitations": text + "x"}) == (
        400,
        f"limitations must be at most {MAX_HUMAN_TEXT} characters.",
    )
    assert parse_request({**base, "intended_use": "a\tb\r\nc"}).intended_use == "a\tb\r\nc"


def test_a_high_stakes_model_needs_its_card_fields() -> None:
    request = parse_request({"model": "fraud", "run_id": RUN, "limitations": "small data"})
    assert refusal(check_human_fields, rules_for(CONFIG, "vision", "fraud"), request) == (
        400,
        "Team vision's model fraud is high-stakes: its card needs intended_use, "
        "out_of_scope_use. Add them to the request.",
    )


def test_approval_checked_against_the_team_alone() -> None:
    """Without the whole configuration, the team's own lead groups decide who leads it."""
    rules = rules_for(CONFIG, "vision", "iris")
    approve: dict[str, Any] = {"requester": "ada", "team": VISION, "rules": rules}
    may_approve(approver="bob", approver_groups=["/ml/vision/leads"], **approve)
    may_approve(approver="bob", approver_groups=["model-risk"], **approve)
    who = "members of vision-leads, /ml/vision/leads, model-risk"
    assert refusal(may_approve, approver="cy", approver_groups=["vision-engineers"], **approve) == (
        403,
        f"Only {who} may approve or reject team vision's promotions.",
    )
    assert refusal(may_approve, approver="ada", approver_groups=["vision-leads"], **approve) == (
        403,
        f"You asked for this promotion; another lead of team vision must approve it ({who}).",
    )


@pytest.mark.parametrize(
    ("versions", "current", "target", "status", "message"),
    [
        ([1, 3, 2], 3, 7, 404, "There is no governed version 7; the versions are 1, 2, 3."),
        ([], None, 1, 404, "There is no governed version 1; the versions are none yet."),
        ([1, 2], 2, 2, 409, "Version 2 is already the champion."),
        ([2, 3], 2, None, 409, "There is no earlier governed version to roll back to."),
    ],
)
def test_a_rollback_that_cannot_happen(
    versions: list[int], current: int | None, target: int | None, status: int, message: str
) -> None:
    assert refusal(choose_rollback, versions, current, target) == (status, message)


def test_a_refusal_reads_as_its_message() -> None:
    refused = PromotionRefused("Version 2 is already the champion.", 409)
    assert str(refused) == refused.message == "Version 2 is already the champion."
    assert PromotionRefused("no").http_status == 403
