"""Team datasets in the pod: read-only volumes at ``<root>/<name>`` and secret references.

Pure: takes the validated configuration and returns pod spec fragments. Only the datasets the
team lists are considered, so a server of team A never gets team B's volumes or secrets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub_ext.policy import Dataset, MLTeamsConfig
from server_ext.contract import DATASET_KEY_ID, DATASET_SECRET_KEY, CatalogEntry, Credentials

VOLUME_PREFIX = "mlteams-ds-"
READ_ONLY_SOURCES = ("persistentVolumeClaim", "csi")


@dataclass(frozen=True)
class DatasetPodParts:
    volumes: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]
    environment: dict[str, Any]
    catalog: list[CatalogEntry]


def team_datasets(config: MLTeamsConfig, team: str) -> list[Dataset]:
    """The catalog entries ``team`` lists, in its order."""
    return [config.datasets[name] for name in config.teams[team].datasets]


def volume_name(dataset: str) -> str:
    slug = re.sub(r"[^a-z0-9-]", "-", dataset.lower()).strip("-")
    name = VOLUME_PREFIX + slug
    if len(name) > 63 or slug != dataset:
        digest = hashlib.sha256(dataset.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def secret_env_names(secret: str) -> Credentials:
    slug = re.sub(r"[^A-Z0-9]", "_", secret.upper())
    return Credentials(DATASET_KEY_ID.format(slug=slug), DATASET_SECRET_KEY.format(slug=slug))


def read_only_volume(name: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """The pod volume for a catalog ``volume`` source, with read-only forced where it exists."""
    volume: dict[str, Any] = {"name": name}
    for kind, spec in source.items():
        spec = dict(spec) if isinstance(spec, Mapping) else spec
        if kind in READ_ONLY_SOURCES and isinstance(spec, dict):
            spec["readOnly"] = True
        volume[kind] = spec
    return volume


def dataset_pod_parts(
    config: MLTeamsConfig,
    team: str,
    *,
    mount_root: str,
    endpoint_url: str | None,
    key_id_key: str,
    secret_key_key: str,
) -> DatasetPodParts:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    environment: dict[str, Any] = {}
    catalog: list[CatalogEntry] = []
    root = mount_root.rstrip("/")
    for dataset in team_datasets(config, team):
        mount_path = None
        if dataset.volume:
            name = volume_name(dataset.name)
            mount_path = f"{root}/{dataset.name}"
            volumes.append(read_only_volume(name, dataset.volume))
            mounts.append({"name": name, "mountPath": mount_path, "readOnly": True})
        creds = None
        if dataset.credentials_secret:
            creds = secret_env_names(dataset.credentials_secret)
            environment[creds.key_env] = _secret_ref(dataset.credentials_secret, key_id_key)
            environment[creds.secret_env] = _secret_ref(dataset.credentials_secret, secret_key_key)
        catalog.append(
            CatalogEntry(
                name=dataset.name,
                uri=dataset.uri,
                format=dataset.format,
                description=dataset.description,
                mount_path=mount_path,
                endpoint_url=endpoint_url if dataset.uri.startswith("s3") else None,
                credentials=creds,
            )
        )
    return DatasetPodParts(volumes, mounts, environment, catalog)


def _secret_ref(secret: str, key: str) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
