"""Quality gates: does a candidate's measured performance and evidence allow its promotion?

The values decided on are the ones the promotion service measured on its own evaluation set.
What the user logged on the run is passed as ``logged`` and shown beside each result as
``advisory``; it never changes a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hub_ext.policy.promotion import PromotionRules
from hub_ext.policy.scoring import METRICS


@dataclass(frozen=True)
class GateResult:
    gate: str
    metric: str | None
    value: float | None
    threshold: float | None
    passed: bool
    message: str
    advisory: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    def to_json(self) -> list[dict[str, Any]]:
        return [result.to_json() for result in self.results]


@dataclass(frozen=True)
class CandidateEvidence:
    has_signature: bool
    dataset_inputs: int


def _number(value: float) -> str:
    return f"{value:.3f}"


def _threshold_results(
    metric: str,
    measured: float | None,
    gate: Any,
    champion: Mapping[str, float] | None,
    advisory: float | None,
) -> list[GateResult]:
    results: list[GateResult] = []
    higher_is_better = METRICS[metric].higher_is_better if metric in METRICS else True

    def result(kind: str, threshold: float | None, passed: bool, message: str) -> GateResult:
        gate_name = f"{metric}.{kind}"
        return GateResult(gate_name, metric, measured, threshold, passed, message, advisory)

    for kind, threshold in (("min", gate.min), ("max", gate.max)):
        if threshold is None:
            continue
        if measured is None:
            results.append(result(kind, threshold, False, f"{metric} was not measured"))
            continue
        passed = measured >= threshold if kind == "min" else measured <= threshold
        word = "below the minimum" if kind == "min" else "above the maximum"
        message = (
            f"{metric} {_number(measured)} meets the {'minimum' if kind == 'min' else 'maximum'} "
            f"{_number(threshold)}"
            if passed
            else f"{metric} {_number(measured)} is {word} {_number(threshold)}"
        )
        results.append(result(kind, threshold, passed, message))
    if gate.max_regression is not None:
        best = (champion or {}).get(metric)
        if best is None:
            results.append(
                result(
                    "max_regression",
                    None,
                    measured is not None,
                    "no current champion to compare with"
                    if measured is not None
                    else f"{metric} was not measured",
                )
            )
        elif measured is None:
            results.append(result("max_regression", None, False, f"{metric} was not measured"))
        else:
            floor = best - gate.max_regression if higher_is_better else best + gate.max_regression
            passed = measured >= floor if higher_is_better else measured <= floor
            message = (
                f"{metric} {_number(measured)} is within {gate.max_regression:g} of the "
                f"champion's {_number(best)}"
                if passed
                else f"{metric} {_number(measured)} is worse than the champion's "
                f"{_number(best)} by more than {gate.max_regression:g}"
            )
            results.append(result("max_regression", floor, passed, message))
    return results


def check_gates(
    rules: PromotionRules,
    measured: Mapping[str, float],
    *,
    champion: Mapping[str, float] | None,
    evidence: CandidateEvidence,
    logged: Mapping[str, float],
) -> GateReport:
    """Every gate of ``rules`` applied to the measured values and the candidate's evidence."""
    results: list[GateResult] = []
    for metric, gate in sorted(rules.gates.items()):
        advisory = logged.get(metric)
        results += _threshold_results(metric, measured.get(metric), gate, champion, advisory)
    if rules.evidence.signature:
        results.append(
            GateResult(
                "evidence.signature",
                None,
                None,
                None,
                evidence.has_signature,
                "the model has a signature"
                if evidence.has_signature
                else "the model has no signature: log it with one (mlflow.models.infer_signature)",
            )
        )
    if rules.evidence.dataset_inputs:
        passed = evidence.dataset_inputs > 0
        results.append(
            GateResult(
                "evidence.dataset_inputs",
                None,
                float(evidence.dataset_inputs),
                1.0,
                passed,
                f"the run recorded {evidence.dataset_inputs} dataset input(s)"
                if passed
                else "the run recorded no dataset inputs: read the training data from the "
                "team's catalog, or log it with mlflow.log_input",
            )
        )
    return GateReport(tuple(results))
