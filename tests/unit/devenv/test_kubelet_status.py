"""Pod status as the process kubelet reports it: phase, conditions, container statuses."""

from __future__ import annotations

from typing import Any

import pytest

from devenv.kubelet.status import ContainerView, PodView, Termination, pod_phase, pod_status

pytestmark = pytest.mark.unit

T0 = "2030-01-01T00:00:00Z"
T1 = "2030-01-01T00:00:05Z"
NOW = "2030-01-01T00:01:00Z"


def ok(code: int = 0) -> Termination:
    return Termination(code, "Completed" if code == 0 else "Error", T1, T0, "process://42")


def running(name: str = "c", ready: bool = True) -> ContainerView:
    return ContainerView(name, "img", container_id="process://42", running_since=T0, ready=ready)


def ended(code: int, name: str = "c") -> ContainerView:
    return ContainerView(name, "img", terminated=ok(code))


def backing_off(code: int, name: str = "c") -> ContainerView:
    return ContainerView(
        name, "img", restart_count=1, waiting_reason="CrashLoopBackOff", last_terminated=ok(code)
    )


def creating(name: str = "c") -> ContainerView:
    return ContainerView(name, "img")


@pytest.mark.parametrize(
    ("policy", "init_done", "init_failed", "views", "phase"),
    [
        ("Always", False, False, [creating()], "Pending"),
        ("Always", True, True, [creating()], "Failed"),
        ("Always", True, False, [creating()], "Pending"),
        ("Always", True, False, [running(), creating("d")], "Pending"),
        ("Always", True, False, [running()], "Running"),
        ("Never", True, False, [running(), ended(1, "d")], "Running"),
        ("Always", True, False, [backing_off(1)], "Running"),
        ("Always", True, False, [backing_off(0)], "Running"),
        ("OnFailure", True, False, [backing_off(2)], "Running"),
        ("OnFailure", True, False, [ended(0)], "Succeeded"),
        ("Never", True, False, [ended(0), ended(0, "d")], "Succeeded"),
        ("Never", True, False, [ended(0), ended(3, "d")], "Failed"),
        ("Never", True, False, [ended(137)], "Failed"),
    ],
)
def test_pod_phase(
    policy: str, init_done: bool, init_failed: bool, views: list[ContainerView], phase: str
) -> None:
    assert pod_phase(policy, init_done, init_failed, views) == phase


def test_container_status_shapes() -> None:
    status = running().as_status()
    assert status == {
        "name": "c",
        "image": "img",
        "imageID": "recorded://img",
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": T0}},
        "lastState": {},
        "containerID": "process://42",
    }
    waiting = backing_off(1).as_status()
    assert waiting["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert waiting["lastState"]["terminated"]["exitCode"] == 1
    assert waiting["ready"] is False
    done = ended(0).as_status()["state"]["terminated"]
    assert done == {
        "exitCode": 0,
        "reason": "Completed",
        "finishedAt": T1,
        "startedAt": T0,
        "containerID": "process://42",
    }
    assert Termination.from_state(done) == ok(0)


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def view(phase: str, containers: list[ContainerView], **kwargs: Any) -> PodView:
    values: dict[str, Any] = {
        "phase": phase,
        "pod_ip": "127.10.0.5",
        "host_ip": "127.0.0.1",
        "start_time": T0,
        "init_done": True,
        "init_containers": [],
        "containers": containers,
    }
    values.update(kwargs)
    return PodView(**values)


def test_running_ready_pod_status() -> None:
    pod = {"spec": {}, "status": {"conditions": [{"type": "DisruptionTarget", "status": "True"}]}}
    status = pod_status(pod, view("Running", [running()]), NOW)
    assert status["phase"] == "Running"
    assert status["podIP"] == "127.10.0.5"
    assert status["podIPs"] == [{"ip": "127.10.0.5"}]
    assert status["hostIP"] == "127.0.0.1"
    assert status["startTime"] == T0
    assert conditions(status) == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
        "DisruptionTarget": "True",
    }
    assert "initContainerStatuses" not in status


def test_observed_generation_follows_pod() -> None:
    pod = {"metadata": {"generation": 3}, "spec": {}}
    assert pod_status(pod, view("Running", [running()]), NOW)["observedGeneration"] == 3


def test_unready_container_makes_pod_unready_with_reason() -> None:
    status = pod_status({"spec": {}}, view("Running", [running(ready=False)]), NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [c]"


def test_completed_pod_is_not_ready() -> None:
    status = pod_status({"spec": {}}, view("Succeeded", [ended(0)]), NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")


def test_init_containers_reported_and_pending_listed() -> None:
    init = [ended(0, "fetch"), running("setup")]
    status = pod_status(
        {"spec": {}},
        view("Pending", [creating()], init_done=False, init_containers=init),
        NOW,
    )
    assert [s["name"] for s in status["initContainerStatuses"]] == ["fetch", "setup"]
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False"
    assert initialized["message"] == "containers with incomplete status: [setup]"


def test_transition_times_kept_while_status_unchanged() -> None:
    pod: dict[str, Any] = {"spec": {}}
    first = pod_status(pod, view("Running", [running()]), T1)
    pod["status"] = first
    second = pod_status(pod, view("Running", [running()]), NOW)
    assert second == first
    third = pod_status(pod, view("Running", [running(ready=False)]), NOW)
    ready = next(c for c in third["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == NOW


def test_readiness_gates() -> None:
    pod = {
        "spec": {"readinessGates": [{"conditionType": "example.com/ok"}]},
        "status": {"conditions": [{"type": "example.com/ok", "status": "False"}]},
    }
    status = pod_status(pod, view("Running", [running()]), NOW)
    assert conditions(status)["ContainersReady"] == "True"
    assert conditions(status)["Ready"] == "False"
