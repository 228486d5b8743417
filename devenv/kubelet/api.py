"""A small JSON-in, JSON-out layer over ``kubernetes_asyncio``'s configured API client.

The kubelet works with plain dicts (as the API serves them) rather than generated models, so that
its translation of pods into processes stays pure and easy to test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio import client, config

MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._client = api_client

    @classmethod
    async def from_kubeconfig(cls, path: str) -> Kube:
        api_client = await config.new_client_from_config(config_file=path)
        return cls(api_client)

    @property
    def server(self) -> str:
        return str(self._client.configuration.host)

    def service_endpoint(self) -> tuple[str, str]:
        """Host and port of the API server, as in-cluster clients would find them."""
        parts = urlsplit(self.server)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "127.0.0.1", str(parts.port or default)

    async def close(self) -> None:
        await self._client.close()

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str,
        timeout: float | None,
    ) -> Any:
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        return await self._client.call_api(
            path,
            method,
            query_params=query_params,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> dict[str, Any]:
        response = await self._send(method, path, query, body, content_type, timeout)
        try:
            raw = await response.read()
        finally:
            response.release()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = raw.decode(errors="replace")
        if not 200 <= response.status <= 299:
            raise KubeError(response.status, data)
        return data

    async def get(self, path: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("GET", path, query=query)

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.get(path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("DELETE", path, body=body)

    async def watch(
        self, path: str, query: dict[str, Any], timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (``{"type", "object"}``) from ``resourceVersion`` in ``query``; ends when
        the server closes the watch, raises ``WatchExpired`` on HTTP 410."""
        params = dict(
            query, watch="true", timeoutSeconds=timeout_seconds, allowWatchBookmarks="true"
        )
        response = await self._send(
            "GET", path, params, None, "application/json", timeout_seconds + 30
        )
        try:
            if response.status == 410:
                raise WatchExpired(path)
            if not 200 <= response.status <= 299:
                raw = await response.read()
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                raise KubeError(response.status, body)
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    if status.get("code") == 410:
                        raise WatchExpired(status.get("message", path))
                    raise KubeError(int(status.get("code") or 500), status)
                yield event
        except asyncio.CancelledError:
            response.close()
            raise
        finally:
            response.release()
