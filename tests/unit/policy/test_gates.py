"""The promotion gate, result by result: each threshold kind at and beyond its boundary, for
metrics where higher and where lower is better, with and without a champion, and the evidence
gates; every result carries the measured value, the threshold it was held to, the logged value
as advice only, and the message the requester reads."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy.config import Evidence, Gate
from hub_ext.policy.gates import CandidateEvidence, GateReport, GateResult, check_gates
from hub_ext.policy.promotion import PromotionRules

pytestmark = pytest.mark.unit

GOOD = CandidateEvidence(has_signature=True, dataset_inputs=2)


def rules(gates: dict[str, dict[str, float]], **evidence: bool) -> PromotionRules:
    return PromotionRules(
        team="vision",
        model="iris",
        gates={metric: Gate(**gate) for metric, gate in gates.items()},
        evidence=Evidence(**{"signature": False, "dataset_inputs": False, **evidence}),
        evaluation=None,
        high_stakes=False,
        approver_groups=(),
        approval_ttl_seconds=3600.0,
        champion_alias="champion",
        previous_alias="previous",
    )


def only(report: GateReport) -> GateResult:
    (result,) = report.results
    return result


def check(
    gates: dict[str, dict[str, float]],
    measured: dict[str, float],
    champion: dict[str, float] | None = None,
    logged: dict[str, float] | None = None,
) -> GateReport:
    return check_gates(
        rules(gates), measured, champion=champion, evidence=GOOD, logged=logged or {}
    )


@pytest.mark.parametrize(
    ("gate", "measured", "passed", "message"),
    [
        ({"min": 0.9}, 0.9, True, "accuracy 0.900 meets the minimum 0.900"),
        ({"min": 0.9}, 0.95, True, "accuracy 0.950 meets the minimum 0.900"),
        ({"min": 0.9}, 0.8999, False, "accuracy 0.900 is below the minimum 0.900"),
        ({"max": 0.5}, 0.5, True, "accuracy 0.500 meets the maximum 0.500"),
        ({"max": 0.5}, 0.25, True, "accuracy 0.250 meets the maximum 0.500"),
        ({"max": 0.5}, 0.5001, False, "accuracy 0.500 is above the maximum 0.500"),
    ],
)
def test_min_and_max_hold_at_their_boundary(
    gate: dict[str, float], measured: float, passed: bool, message: str
) -> None:
    """A minimum is met by the minimum itself, a maximum by the maximum; the result names
    the gate, the metric, the measured value, the threshold and the logged value."""
    kind, threshold = next(iter(gate.items()))
    result = only(check({"accuracy": gate}, {"accuracy": measured}, logged={"accuracy": 0.1}))
    assert result == GateResult(
        f"accuracy.{kind}", "accuracy", measured, threshold, passed, message, 0.1
    )


@pytest.mark.parametrize("gate", [{"min": 0.9}, {"max": 0.9}])
def test_an_unmeasured_metric_fails_its_threshold(gate: dict[str, float]) -> None:
    kind, threshold = next(iter(gate.items()))
    result = only(check({"f1_macro": gate}, {"accuracy": 0.99}))
    assert result == GateResult(
        f"f1_macro.{kind}", "f1_macro", None, threshold, False, "f1_macro was not measured", None
    )


def test_min_and_max_together_give_one_result_each_in_that_order() -> None:
    report = check({"r2": {"min": 0.5, "max": 0.8}}, {"r2": 0.9})
    assert [(r.gate, r.threshold, r.passed) for r in report.results] == [
        ("r2.min", 0.5, True),
        ("r2.max", 0.8, False),
    ]
    assert report.failures == (report.results[1],)
    assert not report.passed


@pytest.mark.parametrize(
    ("metric", "measured", "champion", "floor", "passed", "message"),
    [
        (
            "accuracy",
            0.88,
            0.9,
            0.88,
            True,
            "accuracy 0.880 is within 0.02 of the champion's 0.900",
        ),
        (
            "accuracy",
            0.87,
            0.9,
            0.88,
            False,
            "accuracy 0.870 is worse than the champion's 0.900 by more than 0.02",
        ),
        ("rmse", 0.52, 0.5, 0.52, True, "rmse 0.520 is within 0.02 of the champion's 0.500"),
        (
            "rmse",
            0.53,
            0.5,
            0.52,
            False,
            "rmse 0.530 is worse than the champion's 0.500 by more than 0.02",
        ),
        ("rmse", 0.1, 0.5, 0.52, True, "rmse 0.100 is within 0.02 of the champion's 0.500"),
        (
            "custom_score",
            0.87,
            0.9,
            0.88,
            False,
            "custom_score 0.870 is worse than the champion's 0.900 by more than 0.02",
        ),
    ],
)
def test_max_regression_is_measured_from_the_champion_in_the_metrics_direction(
    metric: str, measured: float, champion: float, floor: float, passed: bool, message: str
) -> None:
    """Worse is lower for accuracy (and a metric the scorer does not know), higher for rmse;
    the threshold reported is the floor (or ceiling) the champion's value sets."""
    result = only(
        check(
            {metric: {"max_regression": 0.02}},
            {metric: measured},
            champion={metric: champion, "other": 0.0},
            logged={metric: 0.5},
        )
    )
    assert result.gate == f"{metric}.max_regression"
    assert (result.metric, result.value, result.advisory) == (metric, measured, 0.5)
    assert result.threshold == pytest.approx(floor)
    assert (result.passed, result.message) == (passed, message)


@pytest.mark.parametrize("champion", [None, {}, {"f1_macro": 0.4}])
def test_max_regression_without_a_champion_value(champion: dict[str, float] | None) -> None:
    """Without a champion's value for the metric there is nothing to regress from: measured
    passes, unmeasured fails."""
    gates = {"accuracy": {"max_regression": 0.1}}
    measured = only(check(gates, {"accuracy": 0.2}, champion=champion))
    assert measured == GateResult(
        "accuracy.max_regression",
        "accuracy",
        0.2,
        None,
        True,
        "no current champion to compare with",
        None,
    )
    unmeasured = only(check(gates, {}, champion=champion))
    assert unmeasured == GateResult(
        "accuracy.max_regression",
        "accuracy",
        None,
        None,
        False,
        "accuracy was not measured",
        None,
    )


def test_max_regression_with_a_champion_and_no_measurement_fails() -> None:
    result = only(check({"accuracy": {"max_regression": 0.1}}, {}, champion={"accuracy": 0.9}))
    assert result == GateResult(
        "accuracy.max_regression",
        "accuracy",
        None,
        None,
        False,
        "accuracy was not measured",
        None,
    )


def test_gates_are_checked_in_metric_order_each_with_its_own_logged_value() -> None:
    report = check(
        {"rmse": {"max": 1.0}, "accuracy": {"min": 0.5}, "mae": {"max": 2.0}},
        {"accuracy": 0.7, "mae": 1.0, "rmse": 3.0},
        logged={"accuracy": 0.71, "rmse": 0.3},
    )
    assert [(r.gate, r.value, r.advisory) for r in report.results] == [
        ("accuracy.min", 0.7, 0.71),
        ("mae.max", 1.0, None),
        ("rmse.max", 3.0, 0.3),
    ]
    assert [r.gate for r in report.failures] == ["rmse.max"]
    assert report.to_json()[2] == {
        "gate": "rmse.max",
        "metric": "rmse",
        "value": 3.0,
        "threshold": 1.0,
        "passed": False,
        "message": "rmse 3.000 is above the maximum 1.000",
        "advisory": 0.3,
    }


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        (
            CandidateEvidence(has_signature=True, dataset_inputs=3),
            [
                GateResult(
                    "evidence.signature", None, None, None, True, "the model has a signature"
                ),
                GateResult(
                    "evidence.dataset_inputs",
                    None,
                    3.0,
                    1.0,
                    True,
                    "the run recorded 3 dataset input(s)",
                ),
            ],
        ),
        (
            CandidateEvidence(has_signature=False, dataset_inputs=0),
            [
                GateResult(
                    "evidence.signature",
                    None,
                    None,
                    None,
                    False,
                    "the model has no signature: log it with one (mlflow.models.infer_signature)",
                ),
                GateResult(
                    "evidence.dataset_inputs",
                    None,
                    0.0,
                    1.0,
                    False,
                    "the run recorded no dataset inputs: read the training data from the "
                    "team's catalog, or log it with mlflow.log_input",
                ),
            ],
        ),
    ],
)
def test_evidence_gates(evidence: CandidateEvidence, expected: list[GateResult]) -> None:
    report = check_gates(
        rules({}, signature=True, dataset_inputs=True),
        {},
        champion=None,
        evidence=evidence,
        logged={},
    )
    assert list(report.results) == expected
    assert report.passed is all(result.passed for result in expected)


@pytest.mark.parametrize(
    ("evidence", "gates"),
    [
        ({"signature": True}, ["evidence.signature"]),
        ({"dataset_inputs": True}, ["evidence.dataset_inputs"]),
        ({}, []),
    ],
)
def test_only_the_evidence_the_rules_ask_for_is_checked(
    evidence: dict[str, Any], gates: list[str]
) -> None:
    bare = CandidateEvidence(has_signature=False, dataset_inputs=0)
    report = check_gates(rules({}, **evidence), {}, champion=None, evidence=bare, logged={})
    assert [result.gate for result in report.results] == gates
    assert report.passed is (not gates)


def test_an_unmeasured_metric_fails_each_of_its_thresholds() -> None:
    report = check({"r2": {"min": 0.5, "max": 0.8}}, {})
    assert [(r.gate, r.passed, r.message) for r in report.results] == [
        ("r2.min", False, "r2 was not measured"),
        ("r2.max", False, "r2 was not measured"),
    ]
