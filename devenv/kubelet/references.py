"""What a pod refers to outside itself (Secrets, ConfigMaps, service account tokens), and the
fetched values that the pure translation of a pod into processes is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class TokenRequest:
    audience: str
    expiration_seconds: int


@dataclass
class Lookups:
    """Fetched objects by name; ``None`` marks one the API said does not exist.

    Secret and ConfigMap data are decoded to bytes (``binaryData`` merged into ConfigMap data).
    """

    secrets: dict[str, dict[str, bytes] | None] = field(default_factory=dict)
    config_maps: dict[str, dict[str, bytes] | None] = field(default_factory=dict)
    tokens: dict[TokenRequest, str] = field(default_factory=dict)
    # claim name -> host folder of the hostPath PersistentVolume bound to it
    claim_paths: dict[str, str] = field(default_factory=dict)


@dataclass
class References:
    secrets: set[str] = field(default_factory=set)
    config_maps: set[str] = field(default_factory=set)
    tokens: set[TokenRequest] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec", {})
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def token_request(source: dict[str, Any]) -> TokenRequest:
    return TokenRequest(
        audience=source.get("audience") or "",
        expiration_seconds=int(source.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
    )


def pod_references(pod: dict[str, Any]) -> References:
    refs = References()
    for container in _all_containers(pod):
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "secretKeyRef" in source:
                refs.secrets.add(source["secretKeyRef"]["name"])
            if "configMapKeyRef" in source:
                refs.config_maps.add(source["configMapKeyRef"]["name"])
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                refs.secrets.add(source["secretRef"]["name"])
            if "configMapRef" in source:
                refs.config_maps.add(source["configMapRef"]["name"])
    for volume in pod.get("spec", {}).get("volumes") or []:
        if "secret" in volume:
            refs.secrets.add(volume["secret"]["secretName"])
        if "configMap" in volume:
            refs.config_maps.add(volume["configMap"]["name"])
        if "persistentVolumeClaim" in volume:
            refs.claims.add(volume["persistentVolumeClaim"]["claimName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                refs.secrets.add(source["secret"]["name"])
            if "configMap" in source:
                refs.config_maps.add(source["configMap"]["name"])
            if "serviceAccountToken" in source:
                refs.tokens.add(token_request(source["serviceAccountToken"]))
    return refs
