"""Which ServingRuntime runs a predictor, as KServe chooses it. Pure.

A predictor naming ``model.runtime`` gets that runtime (a ServingRuntime of its namespace first,
then a ClusterServingRuntime); otherwise the runtimes that are enabled, list the model's format
(and version, when the model gives one) with ``autoSelect`` and speak its protocol are candidates,
the namespace's before the cluster's, the highest ``priority`` first. The local platform can only
run MLServer, so a runtime of another server is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .predictor import NO_SUPPORTING_RUNTIME, RUNTIME_NOT_RECOGNIZED, Predictor, Refusal

SERVER_TYPE_ANNOTATION = "serving.kserve.io/server-type"
MLSERVER = "mlserver"
MODEL_CLASS_TEMPLATE = "{{.Labels.modelClass}}"
# KServe's model class for MLServer per model format (SetMlServerDefaults)
MLSERVER_MODEL_CLASSES = {
    "sklearn": "mlserver_sklearn.SKLearnModel",
    "xgboost": "mlserver_xgboost.XGBoostModel",
    "lightgbm": "mlserver_lightgbm.LightGBMModel",
    "mlflow": "mlserver_mlflow.MLflowRuntime",
}


@dataclass(frozen=True)
class Runtime:
    name: str
    kind: str  # ServingRuntime or ClusterServingRuntime
    container: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def _formats(runtime: dict[str, Any]) -> list[dict[str, Any]]:
    return list((runtime.get("spec") or {}).get("supportedModelFormats") or [])


def _supports(runtime: dict[str, Any], predictor: Predictor, auto: bool) -> bool:
    spec = runtime.get("spec") or {}
    if spec.get("disabled"):
        return False
    protocols = spec.get("protocolVersions") or ["v1"]
    if predictor.protocol_version and predictor.protocol_version not in protocols:
        return False
    for entry in _formats(runtime):
        if entry.get("name") != predictor.model_format:
            continue
        if auto and not entry.get("autoSelect"):
            continue
        wanted = predictor.model_format_version
        if wanted is None or str(entry.get("version", "")).split(".")[0] == wanted.split(".")[0]:
            return True
    return False


def _priority(runtime: dict[str, Any], predictor: Predictor) -> int:
    return max(
        (
            int(entry.get("priority") or 0)
            for entry in _formats(runtime)
            if entry.get("name") == predictor.model_format
        ),
        default=0,
    )


def _as_runtime(runtime: dict[str, Any], predictor: Predictor) -> Runtime | Refusal:
    meta = runtime.get("metadata") or {}
    name = str(meta.get("name", ""))
    annotations = dict(meta.get("annotations") or {})
    containers = list((runtime.get("spec") or {}).get("containers") or [])
    container = next((c for c in containers if c.get("name") == "kserve-container"), None)
    if container is None and containers:
        container = containers[0]
    image = str((container or {}).get("image", ""))
    if annotations.get(SERVER_TYPE_ANNOTATION) != MLSERVER and "mlserver" not in image:
        return Refusal(
            RUNTIME_NOT_RECOGNIZED,
            f"runtime {name!r} is not MLServer: the local platform runs MLServer only",
            RUNTIME_NOT_RECOGNIZED,
        )
    return Runtime(
        name=name,
        kind=str(runtime.get("kind") or "ClusterServingRuntime"),
        container=dict(container or {}),
        annotations=annotations,
    )


def select_runtime(
    predictor: Predictor,
    namespaced: list[dict[str, Any]],
    cluster: list[dict[str, Any]],
) -> Runtime | Refusal:
    """The runtime for ``predictor`` among the namespace's ServingRuntimes and the cluster's
    ClusterServingRuntimes."""
    candidates = [*namespaced, *cluster]
    if predictor.runtime:
        named = [
            r for r in candidates if (r.get("metadata") or {}).get("name") == predictor.runtime
        ]
        if not named:
            return Refusal(
                NO_SUPPORTING_RUNTIME,
                f"runtime {predictor.runtime!r} not found: no ServingRuntime in namespace "
                f"{predictor.namespace!r} and no ClusterServingRuntime has that name",
                NO_SUPPORTING_RUNTIME,
            )
        if not _supports(named[0], predictor, auto=False):
            return Refusal(
                NO_SUPPORTING_RUNTIME,
                f"runtime {predictor.runtime!r} does not support model format "
                f"{predictor.model_format!r} with protocol {predictor.protocol_version or 'v2'}",
                NO_SUPPORTING_RUNTIME,
            )
        return _as_runtime(named[0], predictor)
    for group in (namespaced, cluster):
        supporting = [r for r in group if _supports(r, predictor, auto=True)]
        if supporting:
            best = max(supporting, key=lambda r: _priority(r, predictor))
            return _as_runtime(best, predictor)
    return Refusal(
        NO_SUPPORTING_RUNTIME,
        f"no runtime supports model format {predictor.model_format!r}: the local platform "
        "installs the ClusterServingRuntime kserve-mlserver when it starts",
        NO_SUPPORTING_RUNTIME,
    )


def model_class(model_format: str) -> str:
    return MLSERVER_MODEL_CLASSES.get(model_format, MLSERVER_MODEL_CLASSES["sklearn"])
