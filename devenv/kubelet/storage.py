"""Dynamic provisioning for PersistentVolumeClaims, so that claims bind as on a real cluster.

The kubelet registers the StorageClass ``process-kubelet-local`` (the cluster default unless
another class already is) and provisions every pending claim of that class with a hostPath
PersistentVolume for the claim's directory ``<state>/pvc/<namespace>/<claim>``, the directory
the kubelet bind-mounts for that claim. When a claim is deleted its volume is released; the
kubelet that provisioned the volume then removes the directory and the PersistentVolume
(reclaim policy Delete).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import aiohttp

from .api import Kube, KubeError

log = logging.getLogger(__name__)

STORAGE_CLASS = "process-kubelet-local"
PROVISIONER = "mlteams.dev/process-kubelet"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
POLL_SECONDS = 2.0


def storage_class_body(default: bool) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {DEFAULT_CLASS: "true" if default else "false"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def claim_path(pvc_root: Path, namespace: str, claim: str) -> Path:
    return pvc_root / namespace / claim


def wants_volume(claim: dict[str, Any]) -> bool:
    """A claim of our class that no volume has been provisioned for yet."""
    spec = claim.get("spec", {})
    return (
        spec.get("storageClassName") == STORAGE_CLASS
        and not spec.get("volumeName")
        and claim.get("status", {}).get("phase", "Pending") == "Pending"
        and not claim["metadata"].get("deletionTimestamp")
    )


def volume_for_claim(claim: dict[str, Any], path: Path) -> dict[str, Any]:
    meta = claim["metadata"]
    spec = claim.get("spec", {})
    size = (spec.get("resources") or {}).get("requests", {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {PROVISIONED_BY: PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }


def released(volume: dict[str, Any]) -> bool:
    annotations = volume["metadata"].get("annotations") or {}
    return (
        annotations.get(PROVISIONED_BY) == PROVISIONER
        and volume.get("status", {}).get("phase") in ("Released", "Failed")
        and not volume["metadata"].get("deletionTimestamp")
    )


class Provisioner:
    def __init__(self, kube: Kube, pvc_root: Path) -> None:
        self._kube = kube
        self._pvc_root = pvc_root

    async def ensure_storage_class(self) -> None:
        classes = await self._kube.get("/apis/storage.k8s.io/v1/storageclasses")
        names = {c["metadata"]["name"] for c in classes.get("items") or []}
        if STORAGE_CLASS in names:
            return
        has_default = any(
            (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
            for c in classes.get("items") or []
        )
        try:
            await self._kube.create(
                "/apis/storage.k8s.io/v1/storageclasses", storage_class_body(not has_default)
            )
            log.info("storage class %s registered", STORAGE_CLASS)
        except KubeError as exc:
            if exc.status != 409:
                raise

    async def provision(self) -> None:
        claims = await self._kube.get("/api/v1/persistentvolumeclaims")
        for claim in claims.get("items") or []:
            if not wants_volume(claim):
                continue
            meta = claim["metadata"]
            path = claim_path(self._pvc_root, meta["namespace"], meta["name"])
            path.mkdir(parents=True, exist_ok=True)
            try:
                await self._kube.create("/api/v1/persistentvolumes", volume_for_claim(claim, path))
                log.info("claim %s/%s: provisioned %s", meta["namespace"], meta["name"], path)
            except KubeError as exc:
                if exc.status != 409:
                    raise

    async def reclaim(self) -> None:
        volumes = await self._kube.get("/api/v1/persistentvolumes")
        for volume in volumes.get("items") or []:
            if not released(volume):
                continue
            path = Path(volume["spec"].get("hostPath", {}).get("path", ""))
            if not path.is_relative_to(self._pvc_root) or path == self._pvc_root:
                continue
            shutil.rmtree(path, ignore_errors=True)
            try:
                await self._kube.delete(f"/api/v1/persistentvolumes/{volume['metadata']['name']}")
                log.info("volume %s released: removed %s", volume["metadata"]["name"], path)
            except KubeError as exc:
                if exc.status != 404:
                    raise

    async def run(self, interval: float = POLL_SECONDS) -> None:
        while True:
            try:
                await self.ensure_storage_class()
                await self.provision()
                await self.reclaim()
            except (KubeError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                log.warning("storage provisioning: %s", exc)
            await asyncio.sleep(interval)
