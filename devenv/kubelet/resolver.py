"""Fetching the Secrets, ConfigMaps and service account tokens a pod refers to."""

from __future__ import annotations

import base64
import logging
from typing import Any

from .api import Kube, KubeError
from .references import Lookups, TokenRequest, pod_references

log = logging.getLogger(__name__)


def secret_data(secret: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def config_map_data(config_map: dict[str, Any]) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()})
    return data


async def _token(kube: Kube, pod: dict[str, Any], request: TokenRequest) -> str | None:
    meta = pod["metadata"]
    account = pod.get("spec", {}).get("serviceAccountName") or "default"
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [request.audience] if request.audience else [],
            "expirationSeconds": max(request.expiration_seconds, 600),
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
    try:
        response = await kube.create(path, body)
    except KubeError as exc:
        log.warning(
            "pod %s/%s: no token for service account %s: %s",
            meta["namespace"],
            meta["name"],
            account,
            exc,
        )
        return None
    return response.get("status", {}).get("token")


async def _bound_host_path(kube: Kube, namespace: str, claim: str) -> str | None:
    """The folder of the hostPath volume bound to ``claim``, if it is bound to one."""
    found = await kube.get_or_none(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
    volume_name = (found or {}).get("spec", {}).get("volumeName")
    if not volume_name:
        return None
    volume = await kube.get_or_none(f"/api/v1/persistentvolumes/{volume_name}")
    return (volume or {}).get("spec", {}).get("hostPath", {}).get("path") or None


async def fetch_lookups(kube: Kube, pod: dict[str, Any]) -> Lookups:
    """Everything the pod refers to; a missing object is ``None``, other API errors raise."""
    namespace = pod["metadata"]["namespace"]
    refs = pod_references(pod)
    lookups = Lookups()
    for name in sorted(refs.secrets):
        secret = await kube.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        lookups.secrets[name] = secret_data(secret) if secret is not None else None
    for name in sorted(refs.config_maps):
        found = await kube.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        lookups.config_maps[name] = config_map_data(found) if found is not None else None
    for name in sorted(refs.claims):
        path = await _bound_host_path(kube, namespace, name)
        if path:
            lookups.claim_paths[name] = path
    for request in refs.tokens:
        token = await _token(kube, pod, request)
        if token is not None:
            lookups.tokens[request] = token
    return lookups
