"""What the controller reads from an InferenceService: its predictor, checked against what the
local platform can run. Pure.

The local platform runs ``spec.predictor.model`` with ``modelFormat: mlflow`` on MLServer, in
KServe's RawDeployment (``Standard``) way; a Serverless (``Knative``) object gets the same pod.
Anything else is refused with a reason the status shows (``Refusal``), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API_GROUP = "serving.kserve.io"
API_VERSION = f"{API_GROUP}/v1beta1"
KIND = "InferenceService"
DEPLOYMENT_MODE_ANNOTATION = f"{API_GROUP}/deploymentMode"

# KServe's modes and how it names them now (constants.ParseDeploymentMode)
DEPLOYMENT_MODES = {
    "": "Standard",
    "Standard": "Standard",
    "RawDeployment": "Standard",
    "Knative": "Knative",
    "Serverless": "Knative",
}
SUPPORTED_FORMAT = "mlflow"
SUPPORTED_PROTOCOL = "v2"
SUPPORTED_SCHEMES = ("s3://",)
# predictor fields that name another way of serving than ``model``
OTHER_SERVERS = (
    "containers",
    "sklearn",
    "xgboost",
    "lightgbm",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "pmml",
    "paddle",
    "huggingface",
    "worker",
)
# PodSpec fields of the predictor that KServe passes on to the pod
POD_FIELDS = ("nodeSelector", "tolerations", "affinity", "priorityClassName", "schedulerName")

# lastFailureInfo reasons of KServe's schema (modelStatus.lastFailureInfo.reason)
INVALID_PREDICTOR_SPEC = "InvalidPredictorSpec"
NO_SUPPORTING_RUNTIME = "NoSupportingRuntime"
RUNTIME_NOT_RECOGNIZED = "RuntimeNotRecognized"
MODEL_LOAD_FAILED = "ModelLoadFailed"
RUNTIME_UNHEALTHY = "RuntimeUnhealthy"


@dataclass(frozen=True)
class Refusal:
    """Why the object cannot be served: ``reason`` for the conditions, ``failure`` one of
    KServe's ``lastFailureInfo`` reasons."""

    reason: str
    message: str
    failure: str = INVALID_PREDICTOR_SPEC


@dataclass(frozen=True)
class Predictor:
    namespace: str
    name: str
    uid: str
    generation: int
    deployment_mode: str
    model_format: str
    model_format_version: str | None
    runtime: str | None
    protocol_version: str | None
    storage_uri: str
    service_account: str
    model: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    component_labels: dict[str, str] = field(default_factory=dict)
    component_annotations: dict[str, str] = field(default_factory=dict)
    pod_fields: dict[str, Any] = field(default_factory=dict)


def generation(isvc: dict[str, Any]) -> int:
    return int((isvc.get("metadata") or {}).get("generation") or 0)


def deployment_mode(isvc: dict[str, Any]) -> str | None:
    """KServe's name for the object's mode (``Standard``, ``Knative``); None when unsupported."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    return DEPLOYMENT_MODES.get(str(annotations.get(DEPLOYMENT_MODE_ANNOTATION, "")))


def read_predictor(isvc: dict[str, Any]) -> Predictor | Refusal:
    """The predictor to run, or why the local platform cannot run it."""
    meta = isvc.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    written_mode = str(annotations.get(DEPLOYMENT_MODE_ANNOTATION, ""))
    mode = deployment_mode(isvc)
    if mode is None:
        return Refusal(
            "DeploymentModeNotSupported",
            f"deploymentMode {written_mode!r} is not supported by the local platform's serving "
            "controller: use RawDeployment (Standard) or Serverless (Knative)",
        )
    spec = isvc.get("spec") or {}
    others = [key for key in ("transformer", "explainer") if spec.get(key)]
    if others:
        return Refusal(
            "ComponentNotSupported",
            f"spec.{others[0]} is not supported by the local platform's serving controller: it "
            "runs the predictor only",
        )
    predictor = spec.get("predictor") or {}
    model = predictor.get("model")
    servers = [key for key in OTHER_SERVERS if predictor.get(key)]
    if not isinstance(model, dict) or servers:
        named = f"spec.predictor.{servers[0]}" if servers else "a predictor without model"
        return Refusal(
            "PredictorNotSupported",
            f"{named} is not supported by the local platform's serving controller: it runs "
            "spec.predictor.model with modelFormat mlflow",
            NO_SUPPORTING_RUNTIME,
        )
    model_format = model.get("modelFormat") or {}
    format_name = str(model_format.get("name", ""))
    if format_name != SUPPORTED_FORMAT:
        return Refusal(
            NO_SUPPORTING_RUNTIME,
            f"model format {format_name!r} is not supported by the local platform: it serves "
            f"modelFormat {SUPPORTED_FORMAT!r} with MLServer's MLflow runtime",
            NO_SUPPORTING_RUNTIME,
        )
    protocol = model.get("protocolVersion")
    if protocol not in (None, SUPPORTED_PROTOCOL):
        return Refusal(
            NO_SUPPORTING_RUNTIME,
            f"protocolVersion {protocol!r} is not supported: MLServer speaks the open inference "
            f"protocol {SUPPORTED_PROTOCOL}",
            NO_SUPPORTING_RUNTIME,
        )
    storage_uri = str(model.get("storageUri") or "")
    if not storage_uri:
        return Refusal(
            "StorageURIMissing",
            "spec.predictor.model.storageUri is required: the storage initializer downloads the "
            "model from it",
        )
    if (
        not storage_uri.startswith(SUPPORTED_SCHEMES)
        or not storage_uri[len("s3://") :].split("/")[0]
    ):
        return Refusal(
            "StorageURINotSupported",
            f"storageUri {storage_uri!r} is not supported by the local platform's storage "
            "initializer: use s3://<bucket>/<path>",
        )
    version = model_format.get("version")
    return Predictor(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        generation=generation(isvc),
        deployment_mode=mode,
        model_format=format_name,
        model_format_version=None if version is None else str(version),
        runtime=model.get("runtime"),
        protocol_version=protocol,
        storage_uri=storage_uri,
        service_account=str(predictor.get("serviceAccountName") or "default"),
        model=dict(model),
        labels=dict(meta.get("labels") or {}),
        annotations=annotations,
        component_labels=dict(predictor.get("labels") or {}),
        component_annotations=dict(predictor.get("annotations") or {}),
        pod_fields={k: predictor[k] for k in POD_FIELDS if predictor.get(k)},
    )
