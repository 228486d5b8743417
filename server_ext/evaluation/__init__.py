"""The evaluation Job's side: score a frozen model on features it is handed, with no credentials.

``python -m server_ext.evaluation`` reads the presigned GET URL of its spec from
``MLTEAMS_EVALUATION_SPEC_URL`` (``server_ext.contract.EVALUATION_SPEC_URL``). The spec is JSON:
``{"model_files": {<relative path>: <GET url>}, "features_url": <GET url of a CSV with header>,
"predictions_url": <PUT url>}``. The Job downloads the model files into a temporary folder, loads
the model with ``mlflow.pyfunc.load_model``, predicts on the features and PUTs
``{"predictions": [...]}`` to ``predictions_url``. When anything fails it PUTs
``{"error": "<one line>"}`` there instead (best effort), prints that line and exits 1, so the
service can tell the data scientist why without reading the pod's log.
"""

from __future__ import annotations

from .job import EvaluationError, Spec, evaluate, main, parse_spec, predictions_json

__all__ = ["EvaluationError", "Spec", "evaluate", "main", "parse_spec", "predictions_json"]
