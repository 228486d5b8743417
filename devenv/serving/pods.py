"""The predictor pod of an InferenceService, as KServe renders it in RawDeployment mode. Pure.

KServe merges the runtime's ``kserve-container`` with ``spec.predictor.model`` (the model's
fields win), adds ``MLSERVER_MODEL_NAME`` (the InferenceService's name) and
``MLSERVER_MODEL_URI=/mnt/models``, and its pod webhook injects the ``storage-initializer`` init
container, which downloads ``storageUri`` into the emptyDir ``kserve-provision-location`` that
the ``kserve-container`` mounts read-only at ``/mnt/models``.

On the local platform the process kubelet runs a container's ``command`` from the host (the image
is only recorded), so both containers name local programs (``Programs``): MLServer from
``.venv-mlserver`` and ``devenv.serving.storage_initializer``. ``MLSERVER_HOST`` is the literal
``0.0.0.0``, which the kubelet rewrites to the pod's own loopback address, so every predictor pod
listens on its own address with the same ports. The pod carries a digest of what it was rendered
from (``PREDICTOR_HASH_ANNOTATION``); a change of the InferenceService that changes the pod
changes the digest, and with it the pod's name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .predictor import API_VERSION, KIND, Predictor
from .runtimes import Runtime, model_class

STORAGE_INITIALIZER = "storage-initializer"
KSERVE_CONTAINER = "kserve-container"
MODEL_VOLUME = "kserve-provision-location"
MODEL_DIR = "/mnt/models"
STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:latest"
# KServe's default storageInitializer settings (inferenceservice-config)
STORAGE_INITIALIZER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "100Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
SOURCE_URI_ANNOTATION = "internal.serving.kserve.io/storage-initializer-sourceuri"
PREDICTOR_HASH_ANNOTATION = "mlteams.io/predictor-hash"
INFERENCE_SERVICE_LABEL = "serving.kserve.io/inferenceservice"
COMPONENT_LABEL = "component"
APP_LABEL = "app"
MODEL_CLASS_LABEL = "modelClass"
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
DEFAULT_HTTP_PORT = 8080
WILDCARD = "0.0.0.0"
READINESS = {"periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3}

_TEMPLATE = re.compile(
    r"\{\{\s*\.(Name|Namespace|Labels\.([\w.-]+)|Annotations\.([\w./-]+))\s*\}\}"
)


@dataclass(frozen=True)
class Programs:
    """The local programs the predictor pod's containers run."""

    mlserver: str
    python: str
    pythonpath: str


def owner_reference(predictor: Predictor) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": predictor.name,
        "uid": predictor.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(pod: dict[str, Any], uid: str) -> bool:
    """Whether ``pod`` is controlled by the object with ``uid``."""
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def predictor_hash(pod: dict[str, Any]) -> str:
    return str(
        ((pod.get("metadata") or {}).get("annotations") or {}).get(PREDICTOR_HASH_ANNOTATION, "")
    )


def served_uri(pod: dict[str, Any]) -> str:
    return str(
        ((pod.get("metadata") or {}).get("annotations") or {}).get(SOURCE_URI_ANNOTATION, "")
    )


def _expand(value: str, predictor: Predictor, labels: dict[str, str]) -> str:
    """A runtime template value (``{{.Labels.modelClass}}``, ``{{.Name}}``, ...)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "Name":
            return predictor.name
        if match.group(1) == "Namespace":
            return predictor.namespace
        if match.group(2):
            return labels.get(match.group(2), "")
        return predictor.annotations.get(match.group(3) or "", "")

    return _TEMPLATE.sub(replace, value)


def _merge_env(base: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``base`` with ``more`` over it: a variable of ``more`` replaces one of the same name in
    place, new ones come after."""
    merged = [dict(v) for v in base]
    index = {v["name"]: i for i, v in enumerate(merged)}
    for var in more:
        if var["name"] in index:
            merged[index[var["name"]]] = dict(var)
        else:
            index[var["name"]] = len(merged)
            merged.append(dict(var))
    return merged


def http_port(env: list[dict[str, Any]]) -> int:
    for var in env:
        if var.get("name") == "MLSERVER_HTTP_PORT" and str(var.get("value", "")).isdigit():
            return int(var["value"])
    return DEFAULT_HTTP_PORT


def _labels(predictor: Predictor) -> dict[str, str]:
    labels = {**predictor.labels, **predictor.component_labels}
    labels[MODEL_CLASS_LABEL] = model_class(predictor.model_format)
    labels[INFERENCE_SERVICE_LABEL] = predictor.name
    labels[COMPONENT_LABEL] = "predictor"
    app = f"isvc.{predictor.name}-predictor"
    if len(app) <= 63:
        labels[APP_LABEL] = app
    return labels


def _annotations(predictor: Predictor) -> dict[str, str]:
    merged = {**predictor.annotations, **predictor.component_annotations}
    annotations = {k: v for k, v in merged.items() if k not in DROPPED_ANNOTATIONS}
    annotations[SOURCE_URI_ANNOTATION] = predictor.storage_uri
    return annotations


def kserve_container(
    predictor: Predictor, runtime: Runtime, programs: Programs, labels: dict[str, str]
) -> dict[str, Any]:
    model = predictor.model
    runtime_env = [
        dict(var, value=_expand(str(var["value"]), predictor, labels)) if "value" in var else var
        for var in runtime.container.get("env") or []
    ]
    model_env = _merge_env(
        list(model.get("env") or []),
        [
            var
            for var in (
                {"name": "MLSERVER_MODEL_NAME", "value": predictor.name},
                {"name": "MLSERVER_MODEL_URI", "value": MODEL_DIR},
            )
            if var["name"] not in {v.get("name") for v in model.get("env") or []}
        ],
    )
    env = _merge_env(runtime_env, model_env)
    if "MLSERVER_HOST" not in {v["name"] for v in env}:
        env.append({"name": "MLSERVER_HOST", "value": WILDCARD})
    port = http_port(env)
    container: dict[str, Any] = {
        "name": KSERVE_CONTAINER,
        "image": str(runtime.container.get("image", "")),
        "command": [programs.mlserver, "start", MODEL_DIR],
        "env": env,
        "resources": model.get("resources") or runtime.container.get("resources") or {},
        "readinessProbe": model.get("readinessProbe")
        or {
            "httpGet": {"path": f"/v2/models/{predictor.name}/ready", "port": port},
            **READINESS,
        },
        "volumeMounts": [{"name": MODEL_VOLUME, "mountPath": MODEL_DIR, "readOnly": True}],
    }
    if runtime.container.get("securityContext"):
        container["securityContext"] = runtime.container["securityContext"]
    return container


def storage_initializer(
    predictor: Predictor, storage_env: list[dict[str, Any]], programs: Programs
) -> dict[str, Any]:
    return {
        "name": STORAGE_INITIALIZER,
        "image": STORAGE_INITIALIZER_IMAGE,
        "command": [programs.python, "-m", "devenv.serving.storage_initializer"],
        "args": [predictor.storage_uri, MODEL_DIR],
        "env": [*storage_env, {"name": "PYTHONPATH", "value": programs.pythonpath}],
        "resources": STORAGE_INITIALIZER_RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": MODEL_VOLUME, "mountPath": MODEL_DIR}],
    }


def _digest(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    rendered = {"labels": meta["labels"], "annotations": meta["annotations"], "spec": pod["spec"]}
    return hashlib.sha256(json.dumps(rendered, sort_keys=True).encode()).hexdigest()[:10]


def predictor_pod(
    predictor: Predictor,
    runtime: Runtime,
    storage_env: list[dict[str, Any]],
    programs: Programs,
) -> dict[str, Any]:
    """The pod that serves ``predictor``, named and annotated with its digest."""
    labels = _labels(predictor)
    spec: dict[str, Any] = {
        "serviceAccountName": predictor.service_account,
        "restartPolicy": "Always",
        "initContainers": [storage_initializer(predictor, storage_env, programs)],
        "containers": [kserve_container(predictor, runtime, programs, labels)],
        "volumes": [{"name": MODEL_VOLUME, "emptyDir": {}}],
        **predictor.pod_fields,
    }
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": predictor.namespace,
            "labels": labels,
            "annotations": _annotations(predictor),
            "ownerReferences": [owner_reference(predictor)],
        },
        "spec": spec,
    }
    digest = _digest(pod)
    pod["metadata"]["name"] = f"{predictor.name}-predictor-{digest}"
    pod["metadata"]["annotations"][PREDICTOR_HASH_ANNOTATION] = digest
    return pod
