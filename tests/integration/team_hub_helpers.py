"""Helpers for driving the team hub's REST API from tests."""

from __future__ import annotations

import asyncio
import json
import urllib.error
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


async def spawn(hub: LocalHub, user: str, options: dict[str, Any]) -> dict[str, Any]:
    """Start ``user``'s default server with ``options`` and wait until it is ready."""
    status, body = await call(hub, "POST", f"/users/{user}/server", options)
    assert status in (201, 202), body
    return await wait_ready(hub, user)


async def stop(hub: LocalHub, user: str) -> None:
    """Stop ``user``'s default server and wait until the hub says it is gone."""
    status, body = await call(hub, "DELETE", f"/users/{user}/server")
    assert status in (202, 204), body
    await wait_stopped(hub, user)


async def restart_hub(hub: LocalHub) -> None:
    """Stop the hub process and start it again with the same state (database, ports)."""
    await asyncio.to_thread(hub.stop)
    await asyncio.to_thread(hub.start)


def _server_request(
    hub: LocalHub, user: str, method: str, path: str, body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    return hub.request(method, f"/user/{user}/api/{path.lstrip('/')}", body, timeout)


async def server_api(
    hub: LocalHub, user: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """Call ``user``'s running Jupyter server's REST API (``/user/<user>/api/<path>``) through
    the proxy with the test service's token; returns ``(status, parsed body)``."""
    return await asyncio.to_thread(_server_request, hub, user, method, path, body)


async def write_file(hub: LocalHub, user: str, path: str, text: str) -> None:
    """Write a text file at ``path`` (relative to the server's root) with the contents API."""
    model = {"type": "file", "format": "text", "content": text}
    status, body = await server_api(hub, user, "PUT", f"contents/{path}", model)
    assert status in (200, 201), (status, body)


async def read_file(hub: LocalHub, user: str, path: str) -> str | None:
    """The text of the file at ``path`` in ``user``'s server, or ``None`` when there is none."""
    status, body = await server_api(hub, user, "GET", f"contents/{path}?type=file&format=text")
    if status == 404:
        return None
    assert status == 200, (status, body)
    return str(body["content"])
