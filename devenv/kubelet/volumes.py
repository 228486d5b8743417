"""Pod volumes as local paths: which directory (or file) backs each volume, and which files a
ConfigMap, Secret, downward API or projected volume holds. Pure: writing is ``volume_setup``."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import ContainerConfigError, field_value, resource_value
from .references import Lookups, token_request

DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up yet (kubelet event reason ``FailedMount``)."""


@dataclass(frozen=True)
class VolumeFile:
    data: bytes
    mode: int = DEFAULT_MODE


@dataclass
class VolumeSource:
    """The local path backing one pod volume.

    ``files`` is set for volumes whose content the kubelet writes (ConfigMap, Secret, downward
    API, projected); ``create`` says the path is a directory to create when missing;
    ``host_type`` carries a hostPath ``type`` to check or honour.
    """

    name: str
    path: Path
    read_only: bool = False
    create: bool = True
    files: dict[str, VolumeFile] | None = None
    host_type: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VolumeContext:
    pod_volumes_dir: Path
    pvc_root: Path
    pod_ip: str
    host_ip: str
    node_allocatable: dict[str, str]


def _safe_relative(path: str) -> str:
    norm = posixpath.normpath(path)
    if norm.startswith(("/", "../")) or norm in ("..", ".", ""):
        raise VolumeError(f"invalid volume item path {path!r}")
    return norm


def _key_files(
    kind: str,
    name: str,
    data: dict[str, bytes] | None,
    source: dict[str, Any],
    default_mode: int,
) -> dict[str, VolumeFile]:
    optional = bool(source.get("optional"))
    if data is None:
        if optional:
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    items = source.get("items")
    files: dict[str, VolumeFile] = {}
    if not items:
        for key, value in data.items():
            files[_safe_relative(key)] = VolumeFile(value, default_mode)
        return files
    for item in items:
        key = item["key"]
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"configuration of {kind} {name} has no key {key}")
        files[_safe_relative(item["path"])] = VolumeFile(
            data[key], int(item.get("mode", default_mode))
        )
    return files


def _downward_files(
    pod: dict[str, Any], items: list[dict[str, Any]], default_mode: int, ctx: VolumeContext
) -> dict[str, VolumeFile]:
    files: dict[str, VolumeFile] = {}
    first_container = (pod.get("spec", {}).get("containers") or [{}])[0].get("name", "")
    for item in items:
        try:
            if "fieldRef" in item:
                text = field_value(pod, item["fieldRef"]["fieldPath"], ctx.pod_ip, ctx.host_ip)
            elif "resourceFieldRef" in item:
                ref = item["resourceFieldRef"]
                text = resource_value(
                    pod,
                    ref.get("containerName") or first_container,
                    ref["resource"],
                    ref.get("divisor"),
                    ctx.node_allocatable,
                )
            else:
                continue
        except ContainerConfigError as exc:
            raise VolumeError(str(exc)) from exc
        files[_safe_relative(item["path"])] = VolumeFile(
            text.encode(), int(item.get("mode", default_mode))
        )
    return files


def _projected_files(
    pod: dict[str, Any], projected: dict[str, Any], lookups: Lookups, ctx: VolumeContext
) -> tuple[dict[str, VolumeFile], list[str]]:
    default_mode = int(projected.get("defaultMode", DEFAULT_MODE))
    files: dict[str, VolumeFile] = {}
    notes: list[str] = []
    for source in projected.get("sources") or []:
        if "configMap" in source:
            ref = source["configMap"]
            data = lookups.config_maps.get(ref["name"])
            files.update(_key_files("configmap", ref["name"], data, ref, default_mode))
        elif "secret" in source:
            ref = source["secret"]
            data = lookups.secrets.get(ref["name"])
            files.update(_key_files("secret", ref["name"], data, ref, default_mode))
        elif "downwardAPI" in source:
            items = source["downwardAPI"].get("items") or []
            files.update(_downward_files(pod, items, default_mode, ctx))
        elif "serviceAccountToken" in source:
            ref = source["serviceAccountToken"]
            token = lookups.tokens.get(token_request(ref))
            if token is None:
                notes.append(f"no service account token for {ref['path']}: skipped")
                continue
            files[_safe_relative(ref["path"])] = VolumeFile(token.encode(), 0o600)
        else:
            notes.append(f"unsupported projected source {sorted(source)}: skipped")
    return files, notes


def plan_volume(
    pod: dict[str, Any], volume: dict[str, Any], lookups: Lookups, ctx: VolumeContext
) -> VolumeSource:
    name = volume["name"]
    own_dir = ctx.pod_volumes_dir / name
    if "emptyDir" in volume:
        return VolumeSource(name, own_dir)
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]
        bound = lookups.claim_paths.get(claim["claimName"])
        namespace = pod["metadata"]["namespace"]
        path = Path(bound) if bound else ctx.pvc_root / namespace / claim["claimName"]
        return VolumeSource(name, path, read_only=bool(claim.get("readOnly")))
    if "hostPath" in volume:
        host = volume["hostPath"]
        return VolumeSource(name, Path(host["path"]), create=False, host_type=host.get("type", ""))
    if "configMap" in volume:
        ref = volume["configMap"]
        mode = int(ref.get("defaultMode", DEFAULT_MODE))
        data = lookups.config_maps.get(ref["name"])
        files = _key_files("configmap", ref["name"], data, ref, mode)
        return VolumeSource(name, own_dir, read_only=True, files=files)
    if "secret" in volume:
        ref = volume["secret"]
        mode = int(ref.get("defaultMode", DEFAULT_MODE))
        data = lookups.secrets.get(ref["secretName"])
        files = _key_files("secret", ref["secretName"], data, ref, mode)
        return VolumeSource(name, own_dir, read_only=True, files=files)
    if "downwardAPI" in volume:
        ref = volume["downwardAPI"]
        mode = int(ref.get("defaultMode", DEFAULT_MODE))
        files = _downward_files(pod, ref.get("items") or [], mode, ctx)
        return VolumeSource(name, own_dir, read_only=True, files=files)
    if "projected" in volume:
        files, notes = _projected_files(pod, volume["projected"], lookups, ctx)
        return VolumeSource(name, own_dir, read_only=True, files=files, notes=notes)
    kinds = sorted(k for k in volume if k != "name")
    return VolumeSource(
        name, own_dir, notes=[f"volume type {kinds} is not supported: an empty directory stands in"]
    )


def plan_volumes(
    pod: dict[str, Any], lookups: Lookups, ctx: VolumeContext
) -> dict[str, VolumeSource]:
    return {
        volume["name"]: plan_volume(pod, volume, lookups, ctx)
        for volume in pod.get("spec", {}).get("volumes") or []
    }
