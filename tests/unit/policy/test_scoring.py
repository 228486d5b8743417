"""Scoring a candidate's predictions against the evaluation set's labels, by value."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hub_ext.policy.scoring import METRICS, ScoringError, metrics_for, score

pytestmark = pytest.mark.unit

CLASSIFICATION = metrics_for("classification")
REGRESSION = metrics_for("regression")


def test_the_metrics_of_each_task_and_which_way_is_better() -> None:
    assert metrics_for("classification") == (
        "accuracy",
        "f1_macro",
        "precision_macro",
        "recall_macro",
    )
    assert metrics_for("regression") == ("rmse", "mae", "r2")
    assert metrics_for("ranking") == ()
    lower = sorted(name for name, metric in METRICS.items() if not metric.higher_is_better)
    assert lower == ["mae", "rmse"]


@pytest.mark.parametrize(
    ("predictions", "labels"),
    [
        ([1, 0, 1], ["1", "0", "1"]),
        ([1.0, 0.0, 1.0], ["1", "0", "1"]),
        (["1", "0", "1"], ["1.0", "0", "1"]),
        ([[1], [0], [1]], ["1", "0", "1"]),
        ([True, False, True], ["1", "0", "1"]),
        (["setosa", "virginica", "setosa"], ["setosa", "virginica", "setosa"]),
        ([["setosa"], ["virginica"], ["setosa"]], ["setosa", "virginica", "setosa"]),
    ],
    ids=["ints", "floats", "numeric strings", "lists of one", "booleans", "words", "word lists"],
)
def test_classes_compare_by_value(predictions: list[Any], labels: list[str]) -> None:
    assert score("classification", CLASSIFICATION, predictions, labels) == {
        "accuracy": 1.0,
        "f1_macro": 1.0,
        "precision_macro": 1.0,
        "recall_macro": 1.0,
    }


def test_words_compare_exactly() -> None:
    result = score("classification", ["accuracy"], ["Setosa", "setosa "], ["setosa", "setosa"])
    assert result == {"accuracy": 0.0}


def test_macro_averages_over_every_class_seen() -> None:
    # classes a, b, c; c is predicted but never the label, b is a label never predicted
    labels = ["a", "a", "b", "b"]
    predictions = ["a", "a", "a", "c"]
    result = score("classification", CLASSIFICATION, predictions, labels)
    assert result["accuracy"] == pytest.approx(0.5)
    # precision: a 2/3, b 0 (never predicted), c 0
    assert result["precision_macro"] == pytest.approx((2 / 3) / 3)
    # recall: a 1, b 0, c 0 (never the label)
    assert result["recall_macro"] == pytest.approx(1 / 3)
    # f1: a 0.8, b 0, c 0
    assert result["f1_macro"] == pytest.approx(0.8 / 3)


def test_only_the_metrics_asked_for() -> None:
    assert score("classification", ["accuracy"], [1], ["1"]) == {"accuracy": 1.0}


def test_regression() -> None:
    result = score("regression", REGRESSION, [1.0, 2.0, 4.0], ["1", "2", "3"])
    assert result["mae"] == pytest.approx(1 / 3)
    assert result["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert result["r2"] == pytest.approx(1 - 1 / 2)


@pytest.mark.parametrize(
    ("predictions", "labels", "r2"),
    [([2, 2], ["2", "2"], 1.0), ([1, 3], ["2", "2"], 0.0)],
    ids=["constant labels predicted exactly", "constant labels missed"],
)
def test_r2_of_constant_labels(predictions: list[float], labels: list[str], r2: float) -> None:
    assert score("regression", ["r2"], predictions, labels) == {"r2": r2}


@pytest.mark.parametrize(
    ("task", "metrics", "predictions", "labels", "message"),
    [
        (
            "classification",
            ["accuracy"],
            [1, 0],
            ["1"],
            "the model returned 2 predictions for the 1 rows of the evaluation set",
        ),
        ("classification", ["accuracy"], [], [], "the evaluation set has no rows"),
        ("classification", ["accuracy"], [[0.2, 0.8]], ["1"], "prediction 0 has 2 values"),
        ("classification", ["accuracy"], [None], ["1"], "prediction 0 is empty"),
        (
            "classification",
            ["accuracy"],
            [{"a": 1}],
            ["1"],
            "predictions must be numbers or strings",
        ),
        ("classification", ["accuracy"], "11", ["1", "1"], "must be a list"),
        (
            "classification",
            ["rmse"],
            [1],
            ["1"],
            "rmse is a regression metric, not a classification metric",
        ),
        ("classification", ["acuracy"], [1], ["1"], "unknown metric 'acuracy'"),
        ("ranking", ["accuracy"], [1], ["1"], "unknown task 'ranking'"),
        ("regression", ["rmse"], ["cat"], ["1"], "prediction 0 is 'cat', not a number"),
        ("regression", ["rmse"], [True], ["1"], "prediction 0 is 'true', not a number"),
        ("regression", ["rmse"], [1.0], ["n/a"], "the label of row 0 is 'n/a', not a number"),
        ("regression", ["rmse"], [float("nan")], ["1"], "not a number"),
    ],
)
def test_what_cannot_be_scored_says_why(
    task: str, metrics: list[str], predictions: Any, labels: list[str], message: str
) -> None:
    with pytest.raises(ScoringError) as info:
        score(task, metrics, predictions, labels)
    assert message in info.value.message
    assert str(info.value) == info.value.message


@pytest.mark.parametrize(
    ("task", "metrics", "predictions", "labels", "message"),
    [
        (
            "ranking",
            ["accuracy"],
            [1],
            ["1"],
            "unknown task 'ranking'; the service scores classification or regression",
        ),
        (
            "classification",
            ["acuracy"],
            [1],
            ["1"],
            "unknown metric 'acuracy'; the service computes accuracy, f1_macro, "
            "precision_macro, recall_macro, rmse, mae, r2",
        ),
        (
            "classification",
            ["accuracy"],
            "11",
            ["1", "1"],
            "the model's predictions must be a list, one value per row",
        ),
        (
            "classification",
            ["accuracy"],
            [],
            [],
            "the evaluation set has no rows, so there is nothing to score",
        ),
        (
            "classification",
            ["accuracy"],
            [1, [0.2, 0.8]],
            ["1", "0"],
            "prediction 1 has 2 values; the service scores models that predict one value per row",
        ),
        (
            "classification",
            ["accuracy"],
            [{"a": 1}],
            ["1"],
            "prediction 0 is a dict; predictions must be numbers or strings",
        ),
        (
            "regression",
            ["rmse"],
            ["cat"],
            ["1"],
            "prediction 0 is 'cat', not a number; a regression model must predict numbers",
        ),
        (
            "regression",
            ["rmse"],
            [1.0],
            ["n/a"],
            "the label of row 0 is 'n/a', not a number; a regression evaluation needs "
            "numeric labels",
        ),
        (
            "regression",
            ["rmse"],
            [1.0, 0.0],
            ["1", " True "],
            "the label of row 1 is ' True ', not a number; a regression evaluation needs "
            "numeric labels",
        ),
        (
            "regression",
            ["rmse"],
            [1.0],
            ["1e999"],
            "the label of row 0 is '1e999', not a number; a regression evaluation needs "
            "numeric labels",
        ),
    ],
    ids=[
        "unknown task",
        "unknown metric",
        "not a list",
        "no rows",
        "several values in a row",
        "an object",
        "a word for regression",
        "a label that is no number",
        "a truth word as a regression label",
        "a label too large for a float",
    ],
)
def test_refusals_word_for_word(
    task: str, metrics: list[str], predictions: Any, labels: list[str], message: str
) -> None:
    with pytest.raises(ScoringError) as info:
        score(task, metrics, predictions, labels)
    assert info.value.message == message


def test_truth_words_in_labels_are_the_classes_one_and_zero() -> None:
    result = score("classification", ["accuracy"], [1, 0, 1.0], ["True", " false ", "TRUE"])
    assert result == {"accuracy": 1.0}


def test_numbers_too_large_for_a_float_compare_as_their_text() -> None:
    assert score("classification", ["accuracy"], ["1e999"], ["2e999"]) == {"accuracy": 0.0}
    assert score("classification", ["accuracy"], ["1e999"], ["1e999"]) == {"accuracy": 1.0}


def test_f1_is_the_harmonic_mean_of_precision_and_recall() -> None:
    # class a: precision 1, recall 1/2; class b: precision 1/2, recall 1
    result = score("classification", CLASSIFICATION, ["a", "b", "b"], ["a", "a", "b"])
    assert result == pytest.approx(
        {
            "accuracy": 2 / 3,
            "precision_macro": 3 / 4,
            "recall_macro": 3 / 4,
            "f1_macro": 2 / 3,
        }
    )
