"""How a predictor pod is doing, and the InferenceService status that says so. Pure.

The status uses only fields of KServe's schema (``status`` of the InferenceService CRD):
``observedGeneration``, ``url``, ``address.url``, ``deploymentMode``,
``clusterServingRuntimeName`` or ``servingRuntimeName``, ``components.predictor``
(``url``, ``address.url``, ``latestCreatedRevision``, ``latestReadyRevision``: a pod is the
local platform's revision), ``modelStatus`` (``transitionStatus``, ``states``, ``copies``,
``lastFailureInfo``), ``annotations`` (``mlteams.io/storage-uri``: the storageUri of the model
behind ``url``) and the conditions ``PredictorReady`` and ``Ready``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .pods import KSERVE_CONTAINER, STORAGE_INITIALIZER, http_port, served_uri
from .predictor import MODEL_LOAD_FAILED, RUNTIME_UNHEALTHY, Refusal

STORAGE_URI_STATUS_ANNOTATION = "mlteams.io/storage-uri"
ARTIFACT_ANNOTATION = "mlteams.io/artifact-sha256"
CONDITION_TYPES = ("PredictorReady", "Ready")
MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class Failure:
    """A container that failed: KServe's ``lastFailureInfo``."""

    container: str
    reason: str
    message: str
    exit_code: int | None
    location: str
    time: str | None


@dataclass(frozen=True)
class PodReport:
    ready: bool
    reason: str
    message: str
    failure: Failure | None = None


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MESSAGE_LIMIT else flat[: MESSAGE_LIMIT - 3] + "..."


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _statuses(pod: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {s.get("name", ""): s for s in (pod.get("status") or {}).get(key) or []}


def _terminated(container_status: dict[str, Any]) -> dict[str, Any] | None:
    """The failed run of a container: its current state when it ended in failure, else its
    last one while it waits to restart or runs again without being ready."""
    state = container_status.get("state") or {}
    terminated = state.get("terminated")
    if terminated:
        return dict(terminated) if int(terminated.get("exitCode", 0)) != 0 else None
    last = (container_status.get("lastState") or {}).get("terminated")
    if last and int(last.get("exitCode", 0)) != 0 and not container_status.get("ready"):
        return dict(last)
    return None


def _failure(
    pod_name: str,
    container: str,
    terminated: dict[str, Any],
    reason: str,
    log_tail: str | None,
) -> Failure:
    code = terminated.get("exitCode")
    detail = last_line(terminated.get("message")) or last_line(log_tail)
    message = f"{container} exited with code {code} ({terminated.get('reason', 'Error')})"
    if detail:
        message += f": {detail}"
    return Failure(
        container=container,
        reason=reason,
        message=_short(message),
        exit_code=None if code is None else int(code),
        location=pod_name,
        time=terminated.get("finishedAt"),
    )


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def read_pod(pod: dict[str, Any] | None, log_tails: Mapping[str, str] | None = None) -> PodReport:
    """Whether the predictor pod serves, and if not why, from its status. ``log_tails`` holds the
    end of a failed container's log by container name, for when its termination message is
    empty (``FallbackToLogsOnError``, which the process kubelet does not fill in)."""
    tails = log_tails or {}
    if pod is None:
        return PodReport(False, "PodNotCreated", "the predictor pod is being created")
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    if meta.get("deletionTimestamp"):
        return PodReport(False, "PodTerminating", f"predictor pod {name} is being deleted")
    if _condition(pod, "Ready").get("status") == "True":
        return PodReport(True, "PodReady", f"predictor pod {name} is ready")
    inits = _statuses(pod, "initContainerStatuses")
    mains = _statuses(pod, "containerStatuses")
    for container, statuses, reason in (
        (STORAGE_INITIALIZER, inits, MODEL_LOAD_FAILED),
        (KSERVE_CONTAINER, mains, RUNTIME_UNHEALTHY),
    ):
        status = statuses.get(container) or {}
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CreateContainerConfigError":
            message = f"{container}: {waiting.get('message', '')}".strip()
            return PodReport(False, "CreateContainerConfigError", _short(message))
        terminated = _terminated(status)
        if terminated is not None:
            failure = _failure(name, container, terminated, reason, tails.get(container))
            return PodReport(False, reason, failure.message, failure)
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        return PodReport(
            False,
            str(scheduled.get("reason") or "Unschedulable"),
            _short(f"predictor pod {name}: {scheduled.get('message', 'not scheduled')}"),
        )
    init = inits.get(STORAGE_INITIALIZER) or {}
    if not (init.get("state") or {}).get("terminated"):
        return PodReport(
            False,
            "StorageInitializing",
            f"predictor pod {name}: {STORAGE_INITIALIZER} is downloading {served_uri(pod)}",
        )
    return PodReport(
        False,
        "ModelLoading",
        f"predictor pod {name}: {KSERVE_CONTAINER} is starting or loading the model",
    )


def pod_url(pod: dict[str, Any]) -> str | None:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    containers = (pod.get("spec") or {}).get("containers") or []
    main: dict[str, Any] = next((c for c in containers if c.get("name") == KSERVE_CONTAINER), {})
    return f"http://{ip}:{http_port(list(main.get('env') or []))}"


def conditions(
    previous: list[dict[str, Any]], ready: bool, reason: str, message: str, now: str
) -> list[dict[str, Any]]:
    """``PredictorReady`` and ``Ready``, keeping a condition's ``lastTransitionTime`` while its
    status stays the same."""
    before = {c.get("type"): c for c in previous}
    result = []
    for kind in CONDITION_TYPES:
        status = "True" if ready else "False"
        old = before.get(kind) or {}
        cond: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastTransitionTime": old.get("lastTransitionTime", now)
            if old.get("status") == status
            else now,
        }
        if not ready:
            cond["reason"] = reason
            cond["message"] = message
        result.append(cond)
    return result


@dataclass(frozen=True)
class Outcome:
    """What the status reports: the pod serving (if any), the pod for the current spec (if
    any) and how it is doing, or why the spec cannot be served."""

    generation: int
    deployment_mode: str | None
    runtime: tuple[str, str] | None  # (kind, name)
    serving: dict[str, Any] | None
    target: dict[str, Any] | None
    report: PodReport | None
    refusal: Refusal | None = None


def _failure_info(failure: Failure) -> dict[str, Any]:
    info: dict[str, Any] = {
        "reason": failure.reason,
        "message": failure.message,
        "location": failure.location,
    }
    if failure.exit_code is not None:
        info["exitCode"] = failure.exit_code
    if failure.time:
        info["time"] = failure.time
    return info


def _model_status(outcome: Outcome) -> dict[str, Any]:
    serving = outcome.serving is not None
    report = outcome.report
    if outcome.refusal is not None:
        return {
            "transitionStatus": "InvalidSpec",
            "states": {
                "activeModelState": "Loaded" if serving else "FailedToLoad",
                "targetModelState": "FailedToLoad",
            },
            "lastFailureInfo": {
                "reason": outcome.refusal.failure,
                "message": outcome.refusal.message,
            },
        }
    assert report is not None
    if report.ready:
        return {
            "transitionStatus": "UpToDate",
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "copies": {"failedCopies": 0, "totalCopies": 1},
        }
    if report.failure is not None:
        return {
            "transitionStatus": "BlockedByFailedLoad",
            "states": {
                "activeModelState": "Loaded" if serving else "FailedToLoad",
                "targetModelState": "FailedToLoad",
            },
            "copies": {"failedCopies": 1, "totalCopies": 1},
            "lastFailureInfo": _failure_info(report.failure),
        }
    return {
        "transitionStatus": "InProgress",
        "states": {
            "activeModelState": "Loaded" if serving else "Pending",
            "targetModelState": "Loading",
        },
        "copies": {"failedCopies": 0, "totalCopies": 1},
    }


def build_status(outcome: Outcome, previous: dict[str, Any], now: str) -> dict[str, Any]:
    """The InferenceService's status for ``outcome``; ``previous`` is the status it has."""
    status: dict[str, Any] = {"observedGeneration": outcome.generation}
    if outcome.deployment_mode:
        status["deploymentMode"] = outcome.deployment_mode
    if outcome.runtime is not None:
        kind, name = outcome.runtime
        key = (
            "clusterServingRuntimeName" if kind == "ClusterServingRuntime" else "servingRuntimeName"
        )
        status[key] = name
    predictor: dict[str, Any] = {}
    serving = outcome.serving
    url = pod_url(serving) if serving is not None else None
    if serving is not None and url:
        status["url"] = url
        status["address"] = {"url": url}
        predictor.update(url=url, address={"url": url})
        predictor["latestReadyRevision"] = (serving.get("metadata") or {}).get("name")
        annotations = {STORAGE_URI_STATUS_ANNOTATION: served_uri(serving)}
        artifact = ((serving.get("metadata") or {}).get("annotations") or {}).get(
            ARTIFACT_ANNOTATION
        )
        if artifact:
            annotations[ARTIFACT_ANNOTATION] = artifact
        status["annotations"] = annotations
    if outcome.target is not None:
        predictor["latestCreatedRevision"] = (outcome.target.get("metadata") or {}).get("name")
    if predictor:
        status["components"] = {"predictor": predictor}
    status["modelStatus"] = _model_status(outcome)
    if outcome.refusal is not None:
        ready, reason, message = False, outcome.refusal.reason, outcome.refusal.message
    else:
        assert outcome.report is not None
        ready = outcome.report.ready and serving is not None and serving is outcome.target
        reason, message = outcome.report.reason, outcome.report.message
    status["conditions"] = conditions(
        list(previous.get("conditions") or []), ready, reason, message, now
    )
    return status
