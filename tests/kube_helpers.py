"""Small helpers for tests: waits on a condition, and the rig's apiserver (kubernetes_asyncio)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes_asyncio import client, config

T = TypeVar("T")
U = TypeVar("U")


async def api_client(kubeconfig: Path) -> client.ApiClient:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return client.ApiClient(configuration=cfg)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float = 60,
    interval: float = 0.3,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def poll(
    probe: Callable[[], U],
    done: Callable[[U], bool] = bool,
    timeout: float = 60,
    interval: float = 0.3,
) -> U:
    """Call ``probe`` until ``done`` holds for its result or ``timeout`` passes; the last result.

    For synchronous code; the caller decides what a result that never got ``done`` means.
    """
    deadline = time.monotonic() + timeout
    last = probe()
    while not done(last) and time.monotonic() < deadline:
        time.sleep(interval)
        last = probe()
    return last


def wait_for(
    probe: Callable[[], T | None],
    timeout: float = 60,
    interval: float = 0.3,
    what: str = "condition",
) -> T:
    """Synchronous ``eventually``: poll ``probe`` until it returns something truthy."""
    last = poll(probe, bool, timeout, interval)
    if not last:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
    return last


def sleeper_pod(
    name: str, gpus: int = 0, tolerate_gpu: bool = False, command: list[str] | None = None
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "mlteams/test:dev",
        "command": command or ["python", "-c", "import time\nwhile True: time.sleep(1)"],
    }
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 5,
        "restartPolicy": "Never",
    }
    if tolerate_gpu:
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
