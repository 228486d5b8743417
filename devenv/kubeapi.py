"""A minimal synchronous JSON client for the local apiserver, for the platform's own tooling.

Product code and tests use ``kubernetes_asyncio``; this exists so that starting and checking the
platform needs nothing but the standard library and the admin certificate.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from .certs import ClusterPKI


class ApiError(RuntimeError):
    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        self.status = status
        self.body = body
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")


@dataclass
class KubeAPI:
    server: str
    pki: ClusterPKI

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        return ctx

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 15,
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            try:
                parsed: dict[str, Any] | str = json.loads(raw)
            except ValueError:
                parsed = raw
            raise ApiError(exc.code, parsed) from None

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)


def create_if_missing(api: KubeAPI, path: str, body: dict[str, Any]) -> None:
    """POST ``body`` to ``path``; an object that already exists is left as it is."""
    try:
        api.request("POST", path, body)
    except ApiError as exc:
        if exc.status != 409:
            raise


def ensure_namespace(api: KubeAPI, name: str) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    create_if_missing(api, "/api/v1/namespaces", namespace)


def node_ready(node: dict[str, Any]) -> bool:
    for cond in node.get("status", {}).get("conditions", []):
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
