"""Readiness probes (httpGet, tcpSocket) against a pod's own address.

An exec or gRPC probe is not run: exec would need the container's mount namespace, so such a
container counts as ready while it runs, and a gRPC probe is checked as a TCP connect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


def resolve_port(port: int | str, container: dict[str, Any]) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"container {container.get('name')!r} has no port named {port!r}")


async def http_get(url: str, headers: dict[str, str], timeout: float) -> bool:
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            async with session.get(url, headers=headers, ssl=False, allow_redirects=False) as resp:
                return 200 <= resp.status < 400
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


async def tcp_connect(host: str, port: int, timeout: float) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def run_probe(probe: dict[str, Any], container: dict[str, Any], pod_ip: str) -> bool:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "httpGet" in probe:
            action = probe["httpGet"]
            host = action.get("host") or pod_ip
            port = resolve_port(action["port"], container)
            scheme = (action.get("scheme") or "HTTP").lower()
            path = action.get("path") or "/"
            if not path.startswith("/"):
                path = "/" + path
            headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
            return await http_get(f"{scheme}://{host}:{port}{path}", headers, timeout)
        if "tcpSocket" in probe:
            action = probe["tcpSocket"]
            port = resolve_port(action["port"], container)
            return await tcp_connect(action.get("host") or pod_ip, port, timeout)
        if "grpc" in probe:
            return await tcp_connect(pod_ip, int(probe["grpc"]["port"]), timeout)
    except ValueError as exc:
        log.warning("readiness probe of %s: %s", container.get("name"), exc)
        return False
    return True


class ReadinessProbe:
    """The readiness of one running container, following the probe's timing and thresholds."""

    def __init__(self, probe: dict[str, Any], container: dict[str, Any]) -> None:
        self._probe = probe
        self._container = container
        self._initial_delay = float(probe.get("initialDelaySeconds") or 0)
        self._period = float(probe.get("periodSeconds") or 10)
        self._success_threshold = int(probe.get("successThreshold") or 1)
        self._failure_threshold = int(probe.get("failureThreshold") or 3)
        self.ready = False
        self._next_at = 0.0
        self._successes = 0
        self._failures = 0

    def restart(self) -> None:
        self.ready = False
        self._successes = self._failures = 0
        self._next_at = time.monotonic() + self._initial_delay

    def resume(self, ready: bool) -> None:
        """Carry on probing a container adopted from a previous kubelet, from its last readiness."""
        self.ready = ready
        self._successes = self._failures = 0
        self._next_at = time.monotonic()

    async def poll(self, pod_ip: str) -> bool:
        """Probe when due; the current readiness."""
        if time.monotonic() < self._next_at:
            return self.ready
        ok = await run_probe(self._probe, self._container, pod_ip)
        self._next_at = time.monotonic() + self._period
        if ok:
            self._successes += 1
            self._failures = 0
            if self._successes >= self._success_threshold:
                self.ready = True
        else:
            self._failures += 1
            self._successes = 0
            if self._failures >= self._failure_threshold or not self.ready:
                self.ready = False
        return self.ready
