"""The metrics the promotion service measures a candidate model with, on its own evaluation set.

A model's predictions arrive as JSON (numbers, strings, or lists of one value per row) and the
labels as the strings of a CSV column. Classification compares them by value: numeric strings
compare as numbers (``"1"``, ``1`` and ``1.0`` are one class), ``true``/``false`` as 1 and 0,
anything else as the exact string. Regression needs numbers on both sides.

Plain data in, ``{metric: value}`` out, or a ``ScoringError`` with the message the user reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from hub_ext.policy.validation import excerpt

Task = Literal["classification", "regression"]
CLASSIFICATION: Task = "classification"
REGRESSION: Task = "regression"
TASKS: tuple[Task, ...] = (CLASSIFICATION, REGRESSION)

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TRUTH = {"true": 1.0, "false": 0.0}


@dataclass(frozen=True)
class Metric:
    """A metric the service computes: its task and which way is better."""

    name: str
    task: Task
    higher_is_better: bool
    description: str = ""


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "accuracy": Metric("accuracy", CLASSIFICATION, True, "share of rows predicted right"),
        "f1_macro": Metric("f1_macro", CLASSIFICATION, True, "F1 averaged over the classes"),
        "precision_macro": Metric(
            "precision_macro", CLASSIFICATION, True, "precision averaged over the classes"
        ),
        "recall_macro": Metric(
            "recall_macro", CLASSIFICATION, True, "recall averaged over the classes"
        ),
        "rmse": Metric("rmse", REGRESSION, False, "root mean squared error"),
        "mae": Metric("mae", REGRESSION, False, "mean absolute error"),
        "r2": Metric("r2", REGRESSION, True, "coefficient of determination"),
    }
)


class ScoringError(ValueError):
    """Predictions that cannot be scored against the labels, with the reason in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def metrics_for(task: str) -> tuple[str, ...]:
    """The names of the metrics the service computes for ``task``, in a fixed order."""
    return tuple(name for name, metric in METRICS.items() if metric.task == task)


def score(
    task: str, metrics: Iterable[str], predictions: Sequence[Any], labels: Sequence[str]
) -> dict[str, float]:
    """The value of each of ``metrics`` for ``predictions`` against ``labels`` (row order).

    Every metric must be one the service computes for ``task``.
    """
    if task not in TASKS:
        raise ScoringError(f"unknown task {excerpt(task)}; the service scores {' or '.join(TASKS)}")
    wanted = list(dict.fromkeys(metrics))
    for name in wanted:
        metric = METRICS.get(name)
        if metric is None:
            raise ScoringError(
                f"unknown metric {excerpt(name)}; the service computes {', '.join(METRICS)}"
            )
        if metric.task != task:
            raise ScoringError(f"{name} is a {metric.task} metric, not a {task} metric")
    if not isinstance(predictions, Sequence) or isinstance(predictions, str | bytes):
        raise ScoringError("the model's predictions must be a list, one value per row")
    if not labels:
        raise ScoringError("the evaluation set has no rows, so there is nothing to score")
    if len(predictions) != len(labels):
        raise ScoringError(
            f"the model returned {len(predictions)} predictions for the {len(labels)} rows of "
            "the evaluation set"
        )
    values = [_one_value(index, prediction) for index, prediction in enumerate(predictions)]
    if task == CLASSIFICATION:
        return _classification(wanted, values, labels)
    return _regression(wanted, values, labels)


def _one_value(index: int, prediction: Any) -> Any:
    """A prediction's single value: a list of one element stands for that element."""
    value = prediction
    while isinstance(value, list | tuple):
        if len(value) != 1:
            raise ScoringError(
                f"prediction {index} has {len(value)} values; the service scores models that "
                "predict one value per row"
            )
        value = value[0]
    if value is None:
        raise ScoringError(f"prediction {index} is empty (null)")
    if isinstance(value, bool | int | float | str):
        return value
    raise ScoringError(
        f"prediction {index} is {excerpt(value)}; predictions must be numbers or strings"
    )


ClassKey = tuple[str, float | str]


def class_key(value: bool | int | float | str) -> ClassKey:
    """The value a label or prediction is compared by: a number when it reads as one."""
    number = as_number(value)
    if number is not None:
        return ("number", number)
    return ("text", str(value))


def as_number(value: Any) -> float | None:
    """``value`` as a finite number, if it is one or is written as one; else ``None``."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _TRUTH:
            return _TRUTH[text.lower()]
        if _NUMBER.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def _classification(
    wanted: Sequence[str], predictions: Sequence[Any], labels: Sequence[str]
) -> dict[str, float]:
    predicted = [class_key(value) for value in predictions]
    actual = [class_key(label) for label in labels]
    classes = sorted(set(predicted) | set(actual))
    precisions: list[float] = []
    recalls: list[float] = []
    f1s: list[float] = []
    for cls in classes:
        hits = sum(1 for p, a in zip(predicted, actual, strict=True) if p == cls and a == cls)
        said = sum(1 for p in predicted if p == cls)
        there = sum(1 for a in actual if a == cls)
        precision = hits / said if said else 0.0
        recall = hits / there if there else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    right = sum(1 for p, a in zip(predicted, actual, strict=True) if p == a)
    everything = {
        "accuracy": right / len(actual),
        "f1_macro": sum(f1s) / len(classes),
        "precision_macro": sum(precisions) / len(classes),
        "recall_macro": sum(recalls) / len(classes),
    }
    return {name: everything[name] for name in wanted}


def _regression(
    wanted: Sequence[str], predictions: Sequence[Any], labels: Sequence[str]
) -> dict[str, float]:
    predicted: list[float] = []
    for index, value in enumerate(predictions):
        number = None if isinstance(value, bool) else as_number(value)
        if number is None:
            raise ScoringError(
                f"prediction {index} is {excerpt(value)}, not a number; a regression model "
                "must predict numbers"
            )
        predicted.append(number)
    actual: list[float] = []
    for index, label in enumerate(labels):
        number = None if str(label).strip().lower() in _TRUTH else as_number(label)
        if number is None:
            raise ScoringError(
                f"the label of row {index} is {excerpt(label)}, not a number; a regression "
                "evaluation needs numeric labels"
            )
        actual.append(number)
    count = len(actual)
    errors = [p - a for p, a in zip(predicted, actual, strict=True)]
    squared = sum(error * error for error in errors)
    mean = sum(actual) / count
    spread = sum((a - mean) ** 2 for a in actual)
    if spread:
        r2 = 1.0 - squared / spread
    else:
        r2 = 1.0 if squared == 0 else 0.0
    everything = {
        "rmse": math.sqrt(squared / count),
        "mae": sum(abs(error) for error in errors) / count,
        "r2": r2,
    }
    return {name: everything[name] for name in wanted}
