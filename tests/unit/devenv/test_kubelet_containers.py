"""The process kubelet's rules for ended containers: reporting, restarting, backoff."""

from __future__ import annotations

from typing import Any

import pytest

from devenv.kubelet.containers import (
    Container,
    new_container,
    next_backoff,
    restarts,
    termination_from,
)

pytestmark = pytest.mark.unit


def container(init: bool = False, **spec: Any) -> Container:
    return new_container({"name": "c", "image": "img", **spec}, init, "ContainerCreating")


@pytest.mark.parametrize(
    ("policy", "init", "spec", "code", "expected"),
    [
        ("Always", False, {}, 0, True),
        ("Always", False, {}, 1, True),
        ("OnFailure", False, {}, 0, False),
        ("OnFailure", False, {}, 2, True),
        ("Never", False, {}, 2, False),
        ("Always", True, {}, 0, False),
        ("Always", True, {}, 1, True),
        ("Never", True, {}, 1, False),
        ("Never", True, {"restartPolicy": "Always"}, 0, True),
    ],
)
def test_restarts(policy: str, init: bool, spec: dict[str, Any], code: int, expected: bool) -> None:
    assert restarts(policy, container(init, **spec), code) is expected


@pytest.mark.parametrize(
    ("previous", "ran_for", "delay"),
    [(0, 0, 1), (1, 0.5, 2), (16, 3, 32), (32, 3, 60), (60, 3, 60), (60, 61, 1)],
)
def test_next_backoff(previous: float, ran_for: float, delay: float) -> None:
    assert next_backoff(previous, ran_for) == delay


def test_termination_from_exit_record() -> None:
    record = {
        "exitCode": 143,
        "reason": "Error",
        "signal": 15,
        "finishedAt": "2030-01-01T00:00:09Z",
    }
    end = termination_from(record, 143, "2030-01-01T00:00:00Z", "process://7")
    assert (end.exit_code, end.reason, end.signal) == (143, "Error", 15)
    assert (end.started_at, end.finished_at) == ("2030-01-01T00:00:00Z", "2030-01-01T00:00:09Z")
    assert end.container_id == "process://7"
    start_error = termination_from(
        {"exitCode": 128, "reason": "StartError", "message": "exec: nope"}, 128, None, "x"
    )
    assert (start_error.reason, start_error.message) == ("StartError", "exec: nope")


@pytest.mark.parametrize(
    ("return_code", "exit_code", "reason"),
    [
        (0, 0, "Completed"),
        (2, 2, "Error"),
        (-9, 137, "Error"),
        (None, 137, "ContainerStatusUnknown"),
    ],
)
def test_termination_without_exit_record(
    return_code: int | None, exit_code: int, reason: str
) -> None:
    end = termination_from(None, return_code, None, "process://7")
    assert (end.exit_code, end.reason) == (exit_code, reason)


def test_new_container() -> None:
    plain = container(readinessProbe={"tcpSocket": {"port": 80}})
    assert plain.probe is not None and not plain.sidecar
    assert plain.view.state() == {"waiting": {"reason": "ContainerCreating"}}
    init = container(True, readinessProbe={"tcpSocket": {"port": 80}})
    assert init.probe is None
    sidecar = container(True, restartPolicy="Always", readinessProbe={"tcpSocket": {"port": 80}})
    assert sidecar.sidecar and sidecar.probe is not None
