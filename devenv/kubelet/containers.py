"""One container of a pod as the kubelet tracks it, and the rules for what happens when its
process ends: how the end is reported, whether it restarts, and after how long. The rules are
pure; ``pod_worker`` applies them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clock import rfc3339
from .probes import ReadinessProbe
from .processes import ContainerProcess
from .status import ContainerView, Termination, termination_reason

BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
BACKOFF_RESET_AFTER_SECONDS = 60.0
UNKNOWN_EXIT_CODE = 137


@dataclass
class Container:
    spec: dict[str, Any]
    init: bool
    view: ContainerView
    process: ContainerProcess | None = None
    has_run: bool = False
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: float = 0.0
    probe: ReadinessProbe | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def sidecar(self) -> bool:
        """An init container with ``restartPolicy: Always``: it runs beside the containers."""
        return self.init and self.spec.get("restartPolicy") == "Always"


def new_container(spec: dict[str, Any], init: bool, waiting_reason: str) -> Container:
    view = ContainerView(
        name=spec["name"], image=spec.get("image", ""), waiting_reason=waiting_reason
    )
    container = Container(spec=spec, init=init, view=view)
    probe = spec.get("readinessProbe")
    if probe and (not init or container.sidecar):
        container.probe = ReadinessProbe(probe, spec)
    return container


def termination_from(
    exit_record: dict[str, Any] | None,
    return_code: int | None,
    started_at: str | None,
    container_id: str,
) -> Termination:
    """How a container's process ended: from the entry wrapper's exit record when there is one,
    else from the wrapper's own exit status, else unknown (it ended unobserved)."""
    if exit_record is not None:
        code = int(exit_record.get("exitCode", 0))
        return Termination(
            exit_code=code,
            reason=str(exit_record.get("reason") or termination_reason(code)),
            finished_at=str(exit_record.get("finishedAt") or rfc3339()),
            started_at=started_at,
            container_id=container_id,
            message=exit_record.get("message"),
            signal=exit_record.get("signal"),
        )
    if return_code is None:
        return Termination(
            exit_code=UNKNOWN_EXIT_CODE,
            reason="ContainerStatusUnknown",
            finished_at=rfc3339(),
            started_at=started_at,
            container_id=container_id,
            message="the container's process ended while the kubelet was not watching it",
        )
    code = 128 - return_code if return_code < 0 else return_code
    return Termination(code, termination_reason(code), rfc3339(), started_at, container_id)


def restarts(restart_policy: str, container: Container, exit_code: int) -> bool:
    """Whether a container that ended with ``exit_code`` runs again, by the pod's policy."""
    if container.sidecar:
        return True
    if restart_policy == "Always" and not container.init:
        return True
    return restart_policy in ("Always", "OnFailure") and exit_code != 0


def next_backoff(previous: float, ran_for: float) -> float:
    """Seconds to wait before the next restart: doubling from one second up to a minute, back to
    one second after a run of a minute or more."""
    if previous <= 0 or ran_for >= BACKOFF_RESET_AFTER_SECONDS:
        return BACKOFF_INITIAL_SECONDS
    return min(previous * 2, BACKOFF_MAX_SECONDS)
