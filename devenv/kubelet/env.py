"""A container's declared environment (``env``, ``envFrom``) resolved against the pod and the
fetched Secrets and ConfigMaps, as a kubelet resolves it."""

from __future__ import annotations

import re
from typing import Any

from .quantity import divide_ceil
from .references import Lookups


class ContainerConfigError(Exception):
    """The container cannot be configured yet (kubelet reason ``CreateContainerConfigError``)."""


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")


def field_value(pod: dict[str, Any], field_path: str, pod_ip: str, host_ip: str) -> str:
    """A downward API ``fieldRef`` value."""
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if field_path in simple:
        return simple[field_path]
    match = _SUBSCRIPT.match(field_path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    if field_path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {field_path!r}")


def resource_value(
    pod: dict[str, Any],
    container_name: str,
    resource: str,
    divisor: str | None,
    node_allocatable: dict[str, str],
) -> str:
    """A downward API ``resourceFieldRef`` value; an unset limit reads as node allocatable."""
    containers = list(pod.get("spec", {}).get("containers") or []) + list(
        pod.get("spec", {}).get("initContainers") or []
    )
    container = next((c for c in containers if c.get("name") == container_name), None)
    if container is None:
        raise ContainerConfigError(f"resourceFieldRef names unknown container {container_name!r}")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ContainerConfigError(f"unsupported resourceFieldRef resource {resource!r}")
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    if kind == "limits":
        value = limits.get(name) or node_allocatable.get(name)
    else:
        value = requests.get(name) or limits.get(name) or "0"
    if value is None:
        raise ContainerConfigError(f"no value for resourceFieldRef resource {resource!r}")
    return str(divide_ceil(value, divisor))


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes a ``$``,
    references to undefined names stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def _decode(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _key_ref(
    kind: str, store: dict[str, dict[str, bytes] | None], ref: dict[str, Any]
) -> str | None:
    name = ref.get("name", "")
    key = ref.get("key", "")
    optional = bool(ref.get("optional"))
    data = store.get(name)
    if data is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {name}")
    return _decode(data[key])


def _valid_name(name: str) -> bool:
    return bool(name) and "=" not in name and "\0" not in name


def declared_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    lookups: Lookups,
    *,
    pod_ip: str,
    host_ip: str,
    node_allocatable: dict[str, str],
    base: dict[str, str],
) -> dict[str, str]:
    """``base`` overlaid with the container's ``envFrom`` then ``env`` entries."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            kind, store, ref = "configmap", lookups.config_maps, source["configMapRef"]
        elif "secretRef" in source:
            kind, store, ref = "secret", lookups.secrets, source["secretRef"]
        else:
            continue
        data = store.get(ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'{kind} "{ref.get("name", "")}" not found')
        for key, value in data.items():
            if _valid_name(prefix + key):
                env[prefix + key] = _decode(value)
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            env[name] = expand(var.get("value", ""), env)
            continue
        value: str | None
        if "secretKeyRef" in source:
            value = _key_ref("secret", lookups.secrets, source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _key_ref("configmap", lookups.config_maps, source["configMapKeyRef"])
        elif "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            value = resource_value(
                pod,
                ref.get("containerName") or container["name"],
                ref["resource"],
                ref.get("divisor"),
                node_allocatable,
            )
        else:
            raise ContainerConfigError(f"unsupported valueFrom for environment variable {name}")
        if value is not None:
            env[name] = value
    return env
