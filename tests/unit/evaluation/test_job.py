"""The evaluation Job's pure parts: reading its spec and turning predictions into JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from server_ext.contract import EVALUATION_SPEC_URL
from server_ext.evaluation import EvaluationError, main, parse_spec, predictions_json

pytestmark = pytest.mark.unit

SPEC = {
    "model_files": {"MLmodel": "http://store/a", "code/model.py": "http://store/b"},
    "features_url": "http://store/features.csv",
    "predictions_url": "http://store/predictions.json",
}


def test_a_complete_spec_is_read() -> None:
    spec = parse_spec(json.dumps(SPEC).encode())
    assert dict(spec.model_files) == SPEC["model_files"]
    assert (spec.features_url, spec.predictions_url) == (
        "http://store/features.csv",
        "http://store/predictions.json",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "the evaluation spec is not JSON"),
        (b"[]", "the evaluation spec is not a JSON object"),
        (json.dumps({**SPEC, "model_files": {}}).encode(), "lists no model files"),
        (json.dumps({**SPEC, "features_url": ""}).encode(), "has no features_url"),
        (
            json.dumps({k: v for k, v in SPEC.items() if k != "predictions_url"}).encode(),
            "has no predictions_url",
        ),
        (
            json.dumps({**SPEC, "model_files": {"../escape": "u"}}).encode(),
            "'../escape' is not inside the model's folder",
        ),
        (
            json.dumps({**SPEC, "model_files": {"/etc/passwd": "u"}}).encode(),
            "'/etc/passwd' is not inside the model's folder",
        ),
    ],
)
def test_an_incomplete_or_unsafe_spec_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(EvaluationError, match=message.replace(".", r"\.")):
        parse_spec(raw)


@pytest.mark.parametrize(
    ("predictions", "expected"),
    [
        (np.array([0, 1, 2]), [0, 1, 2]),
        (np.array([[0.5], [1.5]]), [0.5, 1.5]),
        (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
        (pd.Series(["a", "b"]), ["a", "b"]),
        (pd.DataFrame({"label": [1, 0]}), [1, 0]),
        (pd.DataFrame({"p0": [0.1, 0.9], "p1": [0.9, 0.1]}), [[0.1, 0.9], [0.9, 0.1]]),
        ([1, 2], [1, 2]),
    ],
)
def test_predictions_become_one_json_value_per_row(predictions: object, expected: list) -> None:
    assert predictions_json(predictions) == expected


def test_a_single_value_is_not_predictions() -> None:
    with pytest.raises(EvaluationError, match="the model's predictions are a float"):
        predictions_json(3.0)


def test_without_the_spec_url_the_job_exits_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main({}) == 1
    assert capsys.readouterr().err == f"evaluation failed: {EVALUATION_SPEC_URL} is not set\n"
