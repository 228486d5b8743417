"""The KServe InferenceService that serves a team's champion, and its state, as plain data.

``render_inference_service`` turns a governed version (its frozen ``s3://`` folder and digest)
and the team's ``serving`` settings into a ``serving.kserve.io/v1beta1`` InferenceService: the
``mlflow`` model format on the V2 protocol (no format version: KServe's MLServer runtime lists
MLflow 1 and 2 only, so a version would match no runtime), the deployment mode always annotated,
labels and annotations naming team, model, version and artifact digest. Object-store credentials
are never written into it: the predictor's ServiceAccount carries them, as KServe documents.

``serving_state`` reads what KServe reports back (the ``Ready`` condition, the URL, the reason
it is not ready) into one small value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub_ext.policy.config import Serving
from hub_ext.policy.quantities import format_cpu, format_memory

API_GROUP = "serving.kserve.io"
API_VERSION_NAME = "v1beta1"
API_VERSION = f"{API_GROUP}/{API_VERSION_NAME}"
KIND = "InferenceService"
PLURAL = "inferenceservices"
MODEL_FORMAT = "mlflow"
PROTOCOL = "v2"
GPU_RESOURCE = "nvidia.com/gpu"

DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "jupyterhub-mlteams"
TEAM_LABEL = "mlteams.io/team"
MODEL_LABEL = "mlteams.io/model"
VERSION_LABEL = "mlteams.io/version"
DIGEST_ANNOTATION = "mlteams.io/artifact-sha256"
GOVERNED_ANNOTATION = "mlteams.io/governed-model"
PROMOTION_ANNOTATION = "mlteams.io/promotion-id"

NAME_MAX = 45
"""KServe derives Service and Deployment names from the InferenceService's (``<name>-predictor``,
with the namespace in the host name), so it keeps names well under the 63 of a DNS label."""
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class ServedVersion:
    """A governed version to serve: where its frozen model folder is and what it must hash to."""

    team: str
    namespace: str
    model: str
    governed_name: str
    version: int
    storage_uri: str
    artifact_sha256: str
    promotion_id: str


def inference_service_name(model: str) -> str:
    """The InferenceService's name for a team's model: the model's own name when KServe accepts
    it (a DNS-1035 label of at most 45 characters), else a stable shortened form of it."""
    if len(model) <= NAME_MAX and _DNS_1035.fullmatch(model):
        return model
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    body = re.sub(r"[^a-z0-9-]", "-", model.lower()).strip("-")[: NAME_MAX - 11].strip("-")
    return f"m-{body}-{digest}" if body else f"m-{digest}"


def render_inference_service(served: ServedVersion, serving: Serving) -> dict[str, Any]:
    """The InferenceService that serves ``served`` with the team's ``serving`` settings."""
    if not served.storage_uri.startswith("s3://"):
        raise ValueError(
            f"a governed version is served from its frozen s3:// folder, got {served.storage_uri!r}"
        )
    if not re.fullmatch(r"[0-9a-f]{64}", served.artifact_sha256):
        raise ValueError("a governed version is served with its artifact's sha256 digest")
    resources: dict[str, str] = {
        "cpu": format_cpu(serving.cpu),
        "memory": format_memory(serving.memory),
    }
    limits = dict(resources)
    if serving.gpus:
        limits[GPU_RESOURCE] = str(serving.gpus)
    predictor: dict[str, Any] = {
        "serviceAccountName": serving.service_account,
        "minReplicas": serving.min_replicas,
        "maxReplicas": serving.max_replicas,
        "model": {
            "modelFormat": {"name": MODEL_FORMAT},
            "protocolVersion": PROTOCOL,
            "storageUri": served.storage_uri,
            "resources": {"requests": resources, "limits": limits},
        },
    }
    if serving.node_selector:
        predictor["nodeSelector"] = dict(serving.node_selector)
    if serving.tolerations:
        predictor["tolerations"] = [toleration.to_k8s() for toleration in serving.tolerations]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": inference_service_name(served.model),
            "namespace": served.namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                TEAM_LABEL: served.team,
                MODEL_LABEL: served.model,
                VERSION_LABEL: str(served.version),
            },
            "annotations": {
                DEPLOYMENT_MODE_ANNOTATION: serving.deployment_mode,
                DIGEST_ANNOTATION: served.artifact_sha256,
                GOVERNED_ANNOTATION: served.governed_name,
                PROMOTION_ANNOTATION: served.promotion_id,
            },
        },
        "spec": {"predictor": predictor},
    }


@dataclass(frozen=True)
class ServingState:
    """What KServe reports of an InferenceService, in the terms the service's API shows."""

    name: str
    namespace: str
    version: int | None
    storage_uri: str | None
    ready: bool
    url: str | None
    reason: str | None
    current: bool
    """Whether the status describes the object's latest spec (KServe has seen the change)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "version": self.version,
            "storage_uri": self.storage_uri,
            "ready": self.ready,
            "url": self.url,
            "reason": self.reason,
            "current": self.current,
        }


def serving_state(obj: Mapping[str, Any]) -> ServingState:
    """The state of an InferenceService as read from the cluster."""
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    predictor = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
    label = (metadata.get("labels") or {}).get(VERSION_LABEL)
    version = int(label) if isinstance(label, str) and label.isdigit() else None
    generation = metadata.get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or observed == generation
    ready_condition = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
    )
    ready = bool(current and ready_condition and ready_condition.get("status") == "True")
    reason: str | None = None
    if not ready:
        if not status:
            reason = "KServe has not reported on it yet (is KServe installed?)"
        elif not current:
            reason = "KServe has not reconciled the latest version yet"
        elif ready_condition is None:
            reason = "KServe reports no Ready condition yet"
        else:
            words = [ready_condition.get("reason"), ready_condition.get("message")]
            reason = ": ".join(str(w) for w in words if w) or "not ready"
    url = status.get("url") or ((status.get("address") or {}).get("url"))
    return ServingState(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        version=version,
        storage_uri=predictor.get("storageUri"),
        ready=ready,
        url=url if isinstance(url, str) else None,
        reason=reason,
        current=current,
    )
