"""What the spawner adds to a notebook pod for tracking and datasets, computed purely.

``notebook_pod_parts`` returns environment variables (plain values for non-secret settings,
secret references for credentials), dataset volumes and mounts. The tracking URI comes only
from hub configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub_ext.policy import MLTeamsConfig, SpawnOptions
from hub_ext.policy.dataset_mounts import dataset_pod_parts
from server_ext import contract as env
from server_ext.contract import dump_catalog

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class TrackingSettings:
    enabled: bool = True
    tracking_uri: str = ""
    public_url: str = ""
    credentials_secret: str | None = None
    credentials_kind: str = "token"
    http_request_timeout: float = 10.0
    http_request_max_retries: int = 1
    datasets_mount_root: str = "/home/jovyan/datasets"
    notebook_root: str = "/home/jovyan"
    object_store_endpoint: str | None = None
    dataset_key_id_key: str = "AWS_ACCESS_KEY_ID"
    dataset_secret_key_key: str = "AWS_SECRET_ACCESS_KEY"
    service_url: str = ""


@dataclass(frozen=True)
class NotebookPodParts:
    environment: dict[str, Any]
    volumes: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]


def _secret_ref(secret: str, key: str) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def tracking_environment(settings: TrackingSettings) -> dict[str, Any]:
    """``MLFLOW_*`` variables from hub configuration; credentials as secret references."""
    if not settings.tracking_uri:
        return {}
    out: dict[str, Any] = {
        env.TRACKING_URI: settings.tracking_uri,
        env.TRACKING_ENABLED: "1",
        env.HTTP_TIMEOUT: f"{settings.http_request_timeout:g}",
        env.HTTP_MAX_RETRIES: str(settings.http_request_max_retries),
    }
    if settings.public_url:
        out[env.TRACKING_PUBLIC_URL] = settings.public_url
    secret = settings.credentials_secret
    if secret:
        if settings.credentials_kind == "basic":
            out[env.TRACKING_USERNAME] = _secret_ref(secret, "username")
            out[env.TRACKING_PASSWORD] = _secret_ref(secret, "password")
        else:
            out[env.TRACKING_TOKEN] = _secret_ref(secret, "token")
    return out


def hub_token_tracking(settings: TrackingSettings, api_token: str | None) -> dict[str, str]:
    """``MLFLOW_TRACKING_TOKEN`` set to the server's own hub token (``JUPYTERHUB_API_TOKEN``),
    when tracking is on and no ``credentials_secret`` is configured: the MLflow server's mlteams
    plugin takes hub tokens, and the hub user is the MLflow user. Nothing otherwise."""
    if not settings.enabled or not settings.tracking_uri or settings.credentials_secret:
        return {}
    if not api_token:
        return {}
    return {env.TRACKING_TOKEN: api_token}


def notebook_pod_parts(
    config: MLTeamsConfig, options: SpawnOptions, settings: TrackingSettings
) -> NotebookPodParts:
    if not settings.enabled:
        return NotebookPodParts({}, [], [])
    team = config.teams[options.team]
    profile = options.profile
    datasets = dataset_pod_parts(
        config,
        team.name,
        mount_root=settings.datasets_mount_root,
        endpoint_url=settings.object_store_endpoint,
        key_id_key=settings.dataset_key_id_key,
        secret_key_key=settings.dataset_secret_key_key,
    )
    environment: dict[str, Any] = {
        **tracking_environment(settings),
        **datasets.environment,
        env.DATASETS: dump_catalog(datasets.catalog),
        env.NOTEBOOK_ROOT: settings.notebook_root,
        env.QUOTA: json.dumps(
            {
                "team": team.name,
                "display_name": team.display_name,
                "gpus": team.quota.gpus,
                "gpus_per_user": team.quota.gpus_per_user,
                "contact": team.contact,
            },
            sort_keys=True,
        ),
    }
    if settings.service_url:
        environment[env.SERVICE_URL] = settings.service_url
    gpu_type = profile.node_selector.get(GPU_PRODUCT_LABEL, "")
    if gpu_type:
        environment[env.GPU_TYPE] = gpu_type
    return NotebookPodParts(environment, datasets.volumes, datasets.volume_mounts)


HUB_VOLUME_PREFIX = "mlteams-"
"""Every volume (and mount) the hub adds starts so: dataset volumes and the team folder."""


def merge_volumes(
    existing: list[dict[str, Any]], ours: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``existing`` without the hub's volumes of an earlier spawn (a previous team's datasets or
    team folder), then ``ours``."""
    kept = [v for v in existing if not str(v.get("name", "")).startswith(HUB_VOLUME_PREFIX)]
    return kept + ours
