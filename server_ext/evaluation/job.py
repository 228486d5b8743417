"""What the evaluation Job does, step by step (see the package docstring for the contract)."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_ext.contract import EVALUATION_SPEC_URL

HTTP_TIMEOUT_SECONDS = 120


class EvaluationError(Exception):
    """The evaluation cannot go on; the message is the one line the data scientist reads."""


@dataclass(frozen=True)
class Spec:
    model_files: Mapping[str, str]
    features_url: str
    predictions_url: str


def parse_spec(raw: bytes) -> Spec:
    """The spec in ``raw`` (JSON); ``EvaluationError`` when it is not a complete one."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise EvaluationError("the evaluation spec is not JSON") from None
    if not isinstance(body, dict):
        raise EvaluationError("the evaluation spec is not a JSON object")
    files = body.get("model_files")
    if not isinstance(files, dict) or not files:
        raise EvaluationError("the evaluation spec lists no model files")
    for key in ("features_url", "predictions_url"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise EvaluationError(f"the evaluation spec has no {key}")
    for path in files:
        _check_relative(str(path))
    return Spec(
        {str(k): str(v) for k, v in files.items()}, body["features_url"], body["predictions_url"]
    )


def _check_relative(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise EvaluationError(f"model file path {path!r} is not inside the model's folder")


def _download(url: str, what: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        raise EvaluationError(f"could not download {what}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EvaluationError(f"could not download {what}: {exc}") from None


def _upload(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS):
            pass
    except urllib.error.HTTPError as exc:
        raise EvaluationError(f"could not upload the predictions: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EvaluationError(f"could not upload the predictions: {exc}") from None


def predictions_json(predictions: Any) -> list[Any]:
    """Predictions as a JSON list, one item per row: arrays, Series, one-column frames flat."""
    value = predictions
    if hasattr(value, "columns") and hasattr(value, "to_numpy"):
        value = value.to_numpy()
        if value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]
    elif hasattr(value, "to_numpy"):
        value = value.to_numpy()
    if hasattr(value, "ndim") and value.ndim == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list):
        raise EvaluationError(
            f"the model's predictions are a {type(predictions).__name__}, not one value per row"
        )
    return value


def evaluate(spec: Spec, workdir: Path) -> list[Any]:
    """Download the model and the features, predict; the predictions as a JSON list."""
    model_dir = workdir / "model"
    for path, url in sorted(spec.model_files.items()):
        target = model_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_download(url, f"the model file {path}"))
    features_csv = _download(spec.features_url, "the evaluation features")

    import mlflow.pyfunc
    import pandas as pd

    try:
        features = pd.read_csv(io.BytesIO(features_csv))
    except Exception as exc:
        raise EvaluationError(f"the evaluation features are not a CSV file: {exc}") from None
    try:
        model = mlflow.pyfunc.load_model(str(model_dir))
    except Exception as exc:
        raise EvaluationError(f"the model could not be loaded: {_one_line(exc)}") from None
    try:
        predictions = model.predict(features)
    except Exception as exc:
        raise EvaluationError(f"the model failed to predict: {_one_line(exc)}") from None
    found = predictions_json(predictions)
    if len(found) != len(features):
        raise EvaluationError(
            f"the model gave {len(found)} predictions for {len(features)} rows of features"
        )
    return found


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the evaluation; 0 when the predictions were uploaded, 1 with a one-line reason."""
    env = os.environ if environ is None else environ
    spec_url = env.get(EVALUATION_SPEC_URL, "")
    spec: Spec | None = None
    try:
        if not spec_url:
            raise EvaluationError(f"{EVALUATION_SPEC_URL} is not set")
        spec = parse_spec(_download(spec_url, "the evaluation spec"))
        with tempfile.TemporaryDirectory(prefix="mlteams-evaluation-") as workdir:
            predictions = evaluate(spec, Path(workdir))
        _upload(spec.predictions_url, json.dumps({"predictions": predictions}).encode())
    except Exception as exc:
        reason = str(exc) if isinstance(exc, EvaluationError) else _one_line(exc)
        print(f"evaluation failed: {reason}", file=sys.stderr, flush=True)
        if spec is not None:
            try:
                _upload(spec.predictions_url, json.dumps({"error": reason}).encode())
            except EvaluationError as upload:
                print(f"evaluation failed: {upload}", file=sys.stderr, flush=True)
        return 1
    print(f"evaluation done: {len(predictions)} predictions", flush=True)
    return 0
