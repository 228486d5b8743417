"""Pod status as a kubelet reports it: phase, conditions and container statuses. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMAGE_ID_SCHEME = "recorded://"


@dataclass(frozen=True)
class Termination:
    exit_code: int
    reason: str
    finished_at: str
    started_at: str | None = None
    container_id: str | None = None
    message: str | None = None
    signal: int | None = None

    def as_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "finishedAt": self.finished_at,
        }
        if self.started_at:
            state["startedAt"] = self.started_at
        if self.container_id:
            state["containerID"] = self.container_id
        if self.message:
            state["message"] = self.message
        if self.signal:
            state["signal"] = self.signal
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Termination:
        return cls(
            exit_code=int(state.get("exitCode", 0)),
            reason=str(state.get("reason", "")),
            finished_at=str(state.get("finishedAt", "")),
            started_at=state.get("startedAt"),
            container_id=state.get("containerID"),
            message=state.get("message"),
            signal=state.get("signal"),
        )


def termination_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


@dataclass
class ContainerView:
    """One container as the kubelet sees it. Current state: running when ``running_since`` is
    set, else terminated when ``terminated`` is set, else waiting."""

    name: str
    image: str
    restart_count: int = 0
    container_id: str | None = None
    running_since: str | None = None
    terminated: Termination | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str | None = None
    last_terminated: Termination | None = None
    ready: bool = False

    @property
    def ever_ran(self) -> bool:
        return bool(self.running_since or self.terminated or self.last_terminated)

    def state(self) -> dict[str, Any]:
        if self.running_since:
            return {"running": {"startedAt": self.running_since}}
        if self.terminated:
            return {"terminated": self.terminated.as_state()}
        waiting: dict[str, Any] = {"reason": self.waiting_reason}
        if self.waiting_message:
            waiting["message"] = self.waiting_message
        return {"waiting": waiting}

    def as_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": IMAGE_ID_SCHEME + self.image if self.image else "",
            "ready": bool(self.ready and self.running_since),
            "restartCount": self.restart_count,
            "started": bool(self.running_since),
            "state": self.state(),
            "lastState": (
                {"terminated": self.last_terminated.as_state()} if self.last_terminated else {}
            ),
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def _will_restart(view: ContainerView, restart_policy: str) -> bool:
    if view.running_since:
        return False
    last = view.terminated or view.last_terminated
    if last is None:
        return True
    if restart_policy == "Always":
        return True
    return restart_policy == "OnFailure" and last.exit_code != 0


def pod_phase(
    restart_policy: str,
    init_done: bool,
    init_failed: bool,
    containers: list[ContainerView],
) -> str:
    """The pod phase from its containers' states, by the rules the kubelet applies."""
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    if any(not c.ever_ran for c in containers):
        return "Pending"
    if any(c.running_since for c in containers):
        return "Running"
    if any(_will_restart(c, restart_policy) for c in containers):
        return "Running"
    finals = [c.terminated or c.last_terminated for c in containers]
    if all(t is not None and t.exit_code == 0 for t in finals):
        return "Succeeded"
    return "Failed"


def _condition(
    kind: str,
    ok: bool,
    previous: dict[str, dict[str, Any]],
    now: str,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = before["lastTransitionTime"] if before and before.get("status") == status else now
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


OWN_CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def pod_conditions(
    pod: dict[str, Any],
    phase: str,
    sandbox_ready: bool,
    init_done: bool,
    init_pending: list[str],
    containers: list[ContainerView],
    now: str,
) -> list[dict[str, Any]]:
    existing = pod.get("status", {}).get("conditions") or []
    previous = {c["type"]: c for c in existing if "type" in c}
    unready = [c.name for c in containers if not (c.ready and c.running_since)]
    terminal = phase in ("Succeeded", "Failed")
    if terminal:
        containers_ready_reason = "PodCompleted"
        containers_ready_message = None
    else:
        containers_ready_reason = "ContainersNotReady"
        containers_ready_message = f"containers with unready status: [{' '.join(unready)}]"
    gates_ok = all(
        previous.get(gate.get("conditionType", ""), {}).get("status") == "True"
        for gate in pod.get("spec", {}).get("readinessGates") or []
    )
    containers_ready = not unready and not terminal
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_ready, previous, now),
        _condition(
            "Initialized",
            init_done,
            previous,
            now,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(init_pending)}]",
        ),
        _condition(
            "Ready",
            containers_ready and gates_ok,
            previous,
            now,
            containers_ready_reason if not containers_ready else "ReadinessGatesNotReady",
            containers_ready_message,
        ),
        _condition(
            "ContainersReady",
            containers_ready,
            previous,
            now,
            containers_ready_reason,
            containers_ready_message,
        ),
        _condition("PodScheduled", True, previous, now),
    ]
    conditions += [c for c in existing if c.get("type") not in OWN_CONDITIONS]
    return conditions


@dataclass(frozen=True)
class PodView:
    """The kubelet's picture of a pod, from which its status is built."""

    phase: str
    pod_ip: str | None
    host_ip: str
    start_time: str
    init_done: bool
    init_containers: list[ContainerView]
    containers: list[ContainerView]
    message: str | None = None
    reason: str | None = None


def pod_status(pod: dict[str, Any], view: PodView, now: str) -> dict[str, Any]:
    """The ``status`` to merge-patch onto the pod."""
    init_pending = [
        c.name for c in view.init_containers if not (c.terminated and c.terminated.exit_code == 0)
    ]
    status: dict[str, Any] = {
        "phase": view.phase,
        "conditions": pod_conditions(
            pod,
            view.phase,
            view.pod_ip is not None,
            view.init_done,
            init_pending,
            view.containers,
            now,
        ),
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "containerStatuses": [c.as_status() for c in view.containers],
        "message": view.message,
        "reason": view.reason,
    }
    generation = pod.get("metadata", {}).get("generation")
    if generation is not None:
        status["observedGeneration"] = generation
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.init_containers:
        status["initContainerStatuses"] = [c.as_status() for c in view.init_containers]
    return status
