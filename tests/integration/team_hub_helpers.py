"""Helpers for driving the team hub's REST API from tests."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from devenv.hub import LocalHub
from tests.kube_helpers import eventually, wait_for


async def call(hub: LocalHub, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(hub.call, method, path, body)


async def server(hub: LocalHub, user: str) -> dict[str, Any] | None:
    status, model = await call(hub, "GET", f"/users/{user}")
    assert status == 200, model
    return model.get("servers", {}).get("")


async def wait_ready(hub: LocalHub, user: str, timeout: float = 180) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        found = await server(hub, user)
        return found if found and found.get("ready") else None

    return await eventually(ready, timeout=timeout, interval=1, what=f"{user}'s server ready")


async def wait_stopped(hub: LocalHub, user: str, timeout: float = 120) -> None:
    async def stopped() -> bool:
        return await server(hub, user) is None

    await eventually(stopped, timeout=timeout, interval=1, what=f"{user}'s server stopped")


def progress_message(hub: LocalHub, user: str, contains: str, timeout: float = 30) -> str:
    """The first message of the server's progress event stream that contains ``contains``."""
    req = urllib.request.Request(
        f"{hub.url}/hub/api/users/{user}/server/progress",
        headers={"Authorization": f"token {hub.api_token}"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if contains in event.get("message", ""):
                    return event["message"]
    raise AssertionError(f"no progress message with {contains!r} for {user}")


def wait_server_sync(hub: LocalHub, user: str, *, ready: bool, timeout: float = 180) -> None:
    """Blocking wait for a server to be ready (``ready=True``) or gone, for synchronous tests."""

    def reached() -> bool:
        status, model = hub.call("GET", f"/users/{user}")
        assert status == 200, model
        found = model.get("servers", {}).get("")
        return bool(found and found.get("ready")) if ready else found is None

    wait_for(
        reached,
        timeout=timeout,
        interval=1,
        what=f"{user}'s server {'ready' if ready else 'stopped'}",
    )
