"""One InferenceService's reconciliation: from the object and what the cluster holds to the pod
to create, the pods to delete and the status to write. Pure.

The pod for the current spec (the ``target``, found by its digest) is created when missing.
Pods of an earlier spec stay while they serve and the target is not ready, the way a Deployment
rolls; once the target is ready they are deleted, and a pod of an earlier spec that does not
serve is deleted at once. An object the local platform cannot serve (``predictor.Refusal``) keeps
no pods. When the ServiceAccount or a Secret it lists is missing, nothing new is created and what
serves keeps serving; the status says why the spec is not served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .credentials import storage_variables
from .pods import Programs, owned_by, predictor_hash, predictor_pod
from .predictor import Refusal, deployment_mode, generation, read_predictor
from .runtimes import select_runtime
from .status import Outcome, PodReport, build_status, read_pod


@dataclass(frozen=True)
class Facts:
    """What the controller read from the cluster for one InferenceService."""

    pods: list[dict[str, Any]] = field(default_factory=list)
    service_account: dict[str, Any] | None = None
    secrets: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    namespaced_runtimes: list[dict[str, Any]] = field(default_factory=list)
    cluster_runtimes: list[dict[str, Any]] = field(default_factory=list)
    # the end of a failed container's log, by pod name then container name
    log_tails: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # why the last attempt to create the target pod failed (the API's answer)
    create_error: str | None = None


@dataclass(frozen=True)
class Plan:
    create: dict[str, Any] | None
    delete: list[dict[str, Any]]  # pods, for their name and uid
    status: dict[str, Any]


def _name(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def _deleting(pod: dict[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _ready(pod: dict[str, Any]) -> bool:
    return read_pod(pod).ready


def reconcile(isvc: dict[str, Any], facts: Facts, programs: Programs, now: str) -> Plan:
    uid = str((isvc.get("metadata") or {}).get("uid", ""))
    previous = dict(isvc.get("status") or {})
    pods = [p for p in facts.pods if owned_by(p, uid)]
    live = [p for p in pods if not _deleting(p)]

    def refused(refusal: Refusal, keep_serving: bool, runtime: tuple[str, str] | None) -> Plan:
        serving = next((p for p in live if _ready(p)), None) if keep_serving else None
        outcome = Outcome(
            generation=generation(isvc),
            deployment_mode=deployment_mode(isvc),
            runtime=runtime,
            serving=serving,
            target=None,
            report=None,
            refusal=refusal,
        )
        delete = [p for p in live if p is not serving and not (keep_serving and _ready(p))]
        return Plan(None, delete, build_status(outcome, previous, now))

    predictor = read_predictor(isvc)
    if isinstance(predictor, Refusal):
        return refused(predictor, keep_serving=False, runtime=None)
    runtime = select_runtime(predictor, facts.namespaced_runtimes, facts.cluster_runtimes)
    if isinstance(runtime, Refusal):
        return refused(runtime, keep_serving=False, runtime=None)
    runtime_ref = (runtime.kind, runtime.name)
    storage_env = storage_variables(predictor.service_account, facts.service_account, facts.secrets)
    if isinstance(storage_env, Refusal):
        return refused(storage_env, keep_serving=True, runtime=runtime_ref)

    desired = predictor_pod(predictor, runtime, storage_env, programs)
    digest = predictor_hash(desired)
    target = next((p for p in live if predictor_hash(p) == digest), None)
    create = None
    if target is None:
        name_taken = any(_name(p) == _name(desired) for p in facts.pods)
        create = None if name_taken or facts.create_error else desired
    report = read_pod(target, facts.log_tails.get(_name(target)) if target else None)
    if target is None and facts.create_error:
        report = PodReport(
            False,
            "FailedCreate",
            f"cannot create predictor pod {_name(desired)}: {facts.create_error}",
        )
    others = [p for p in live if p is not target]
    if target is not None and report.ready:
        serving: dict[str, Any] | None = target
        delete = others
    else:
        serving = next((p for p in others if _ready(p)), None)
        delete = [p for p in others if p is not serving]
    outcome = Outcome(
        generation=predictor.generation,
        deployment_mode=predictor.deployment_mode,
        runtime=runtime_ref,
        serving=serving,
        target=target if target is not None else (None if facts.create_error else desired),
        report=report,
    )
    return Plan(create, delete, build_status(outcome, previous, now))
