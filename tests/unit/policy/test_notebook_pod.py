"""What the spawner adds to a notebook pod, as whole parts: environment, volumes and mounts."""

from __future__ import annotations

from typing import Any

import pytest

from hub_ext.policy import MLTeamsConfig, load_config, validate_user_options
from hub_ext.policy.notebook_pod import (
    NotebookPodParts,
    TrackingSettings,
    notebook_pod_parts,
    tracking_environment,
)
from tests.unit.policy.sample import sample_raw

pytestmark = pytest.mark.unit

QUOTA = (
    '{"contact": "#ml-vision", "display_name": "Computer Vision", "gpus": 8, '
    '"gpus_per_user": 2, "team": "vision"}'
)
CATALOG = (
    '[{"credentials":{"key_env":"MLTEAMS_S3_LAKE_READONLY_KEY_ID",'
    '"secret_env":"MLTEAMS_S3_LAKE_READONLY_SECRET_KEY"},"description":"",'
    '"endpoint_url":"http://minio:9000","format":"parquet","mount_path":null,'
    '"name":"imagenet","uri":"s3://lake/imagenet/"},'
    '{"credentials":null,"description":"","endpoint_url":null,"format":"csv",'
    '"mount_path":"/data/coco","name":"coco","uri":"pvc://coco"}]'
)


def _config() -> MLTeamsConfig:
    raw = sample_raw()
    raw["teams"]["vision"]["display_name"] = "Computer Vision"
    raw["datasets"]["coco"] = {
        "uri": "pvc://coco",
        "format": "csv",
        "volume": {"persistentVolumeClaim": {"claimName": "coco"}},
    }
    raw["teams"]["vision"]["datasets"] = ["imagenet", "coco"]
    return load_config(raw)


def _parts(profile: str, settings: TrackingSettings) -> NotebookPodParts:
    config = _config()
    options = validate_user_options(
        config, {"team": "vision", "profile": profile}, groups=["vision-engineers"]
    )
    return notebook_pod_parts(config, options, settings)


def _secret_ref(name: str, key: str) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


COCO_VOLUMES = [
    {"name": "mlteams-ds-coco", "persistentVolumeClaim": {"claimName": "coco", "readOnly": True}}
]
COCO_MOUNTS = [{"name": "mlteams-ds-coco", "mountPath": "/data/coco", "readOnly": True}]


def test_a_gpu_server_with_basic_tracking_credentials_gets_every_part() -> None:
    settings = TrackingSettings(
        tracking_uri="http://mlflow:5000",
        public_url="https://mlflow.example.com",
        credentials_secret="mlflow-basic",
        credentials_kind="basic",
        http_request_timeout=2.5,
        http_request_max_retries=3,
        datasets_mount_root="/data/",
        notebook_root="/home/ada",
        object_store_endpoint="http://minio:9000",
        dataset_key_id_key="access-key",
        dataset_secret_key_key="secret-key",
        service_url="http://hub:8081/services/mlteams",
    )
    assert _parts("pytorch-1gpu", settings) == NotebookPodParts(
        environment={
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLTEAMS_TRACKING": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "2.5",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
            "MLTEAMS_TRACKING_PUBLIC_URL": "https://mlflow.example.com",
            "MLFLOW_TRACKING_USERNAME": _secret_ref("mlflow-basic", "username"),
            "MLFLOW_TRACKING_PASSWORD": _secret_ref("mlflow-basic", "password"),
            "MLTEAMS_S3_LAKE_READONLY_KEY_ID": _secret_ref("lake-readonly", "access-key"),
            "MLTEAMS_S3_LAKE_READONLY_SECRET_KEY": _secret_ref("lake-readonly", "secret-key"),
            "MLTEAMS_DATASETS": CATALOG,
            "MLTEAMS_NOTEBOOK_ROOT": "/home/ada",
            "MLTEAMS_QUOTA": QUOTA,
            "MLTEAMS_SERVICE_URL": "http://hub:8081/services/mlteams",
            "MLTEAMS_GPU_TYPE": "A100",
        },
        volumes=COCO_VOLUMES,
        volume_mounts=COCO_MOUNTS,
    )


def test_a_cpu_server_with_a_token_secret_and_default_settings() -> None:
    settings = TrackingSettings(
        tracking_uri="http://mlflow:5000",
        credentials_secret="mlflow-token",
        datasets_mount_root="/data",
        object_store_endpoint="http://minio:9000",
    )
    assert _parts("cpu", settings) == NotebookPodParts(
        environment={
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLTEAMS_TRACKING": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
            "MLFLOW_TRACKING_TOKEN": _secret_ref("mlflow-token", "token"),
            "MLTEAMS_S3_LAKE_READONLY_KEY_ID": _secret_ref("lake-readonly", "AWS_ACCESS_KEY_ID"),
            "MLTEAMS_S3_LAKE_READONLY_SECRET_KEY": _secret_ref(
                "lake-readonly", "AWS_SECRET_ACCESS_KEY"
            ),
            "MLTEAMS_DATASETS": CATALOG,
            "MLTEAMS_NOTEBOOK_ROOT": "/home/jovyan",
            "MLTEAMS_QUOTA": QUOTA,
        },
        volumes=COCO_VOLUMES,
        volume_mounts=COCO_MOUNTS,
    )


def test_without_a_tracking_uri_only_the_team_parts_remain() -> None:
    parts = _parts(
        "cpu",
        TrackingSettings(datasets_mount_root="/data", object_store_endpoint="http://minio:9000"),
    )
    assert parts.environment == {
        "MLTEAMS_S3_LAKE_READONLY_KEY_ID": _secret_ref("lake-readonly", "AWS_ACCESS_KEY_ID"),
        "MLTEAMS_S3_LAKE_READONLY_SECRET_KEY": _secret_ref(
            "lake-readonly", "AWS_SECRET_ACCESS_KEY"
        ),
        "MLTEAMS_DATASETS": CATALOG,
        "MLTEAMS_NOTEBOOK_ROOT": "/home/jovyan",
        "MLTEAMS_QUOTA": QUOTA,
    }


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (TrackingSettings(), {}),
        (
            TrackingSettings(tracking_uri="http://m", http_request_timeout=0.25),
            {
                "MLFLOW_TRACKING_URI": "http://m",
                "MLTEAMS_TRACKING": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "0.25",
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
            },
        ),
        (
            TrackingSettings(
                tracking_uri="http://m", credentials_secret="creds", credentials_kind="basic"
            ),
            {
                "MLFLOW_TRACKING_URI": "http://m",
                "MLTEAMS_TRACKING": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                "MLFLOW_TRACKING_USERNAME": {
                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "username"}}
                },
                "MLFLOW_TRACKING_PASSWORD": {
                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}
                },
            },
        ),
    ],
    ids=["no tracking uri", "no credentials", "basic credentials"],
)
def test_tracking_environment(settings: TrackingSettings, expected: dict[str, Any]) -> None:
    assert tracking_environment(settings) == expected
