"""A team's datasets in its notebook pods: volume names, read-only volumes, secret references
and the catalog the server reads."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from hub_ext.policy import MLTeamsConfig, load_config
from hub_ext.policy.dataset_mounts import (
    DatasetPodParts,
    dataset_pod_parts,
    read_only_volume,
    secret_env_names,
    volume_name,
)
from server_ext.contract import CatalogEntry, Credentials
from tests.unit.policy.sample import sample_raw

pytestmark = pytest.mark.unit


def _config() -> MLTeamsConfig:
    raw = sample_raw()
    raw["datasets"]["imagenet"]["description"] = "ImageNet 2012, train and val"
    raw["datasets"]["coco"] = {
        "uri": "pvc://coco",
        "format": "imagefolder",
        "volume": {"persistentVolumeClaim": {"claimName": "coco"}},
        "credentials_secret": "coco.keys",
    }
    raw["datasets"]["nlp-corpus"] = {"uri": "s3://nlp/corpus/", "credentials_secret": "nlp"}
    raw["teams"]["vision"]["datasets"] = ["imagenet", "coco"]
    raw["teams"]["nlp"]["datasets"] = ["nlp-corpus"]
    return load_config(raw)


def _secret_ref(name: str, key: str) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def test_a_teams_datasets_become_volumes_secret_references_and_catalog_entries() -> None:
    parts = dataset_pod_parts(
        _config(),
        "vision",
        mount_root="/data/",
        endpoint_url="http://minio:9000",
        key_id_key="access-key",
        secret_key_key="secret-key",
    )
    assert parts == DatasetPodParts(
        volumes=[
            {
                "name": "mlteams-ds-coco",
                "persistentVolumeClaim": {"claimName": "coco", "readOnly": True},
            }
        ],
        volume_mounts=[{"name": "mlteams-ds-coco", "mountPath": "/data/coco", "readOnly": True}],
        environment={
            "MLTEAMS_S3_LAKE_READONLY_KEY_ID": _secret_ref("lake-readonly", "access-key"),
            "MLTEAMS_S3_LAKE_READONLY_SECRET_KEY": _secret_ref("lake-readonly", "secret-key"),
            "MLTEAMS_S3_COCO_KEYS_KEY_ID": _secret_ref("coco.keys", "access-key"),
            "MLTEAMS_S3_COCO_KEYS_SECRET_KEY": _secret_ref("coco.keys", "secret-key"),
        },
        catalog=[
            CatalogEntry(
                name="imagenet",
                uri="s3://lake/imagenet/",
                format="parquet",
                description="ImageNet 2012, train and val",
                mount_path=None,
                endpoint_url="http://minio:9000",
                credentials=Credentials(
                    "MLTEAMS_S3_LAKE_READONLY_KEY_ID", "MLTEAMS_S3_LAKE_READONLY_SECRET_KEY"
                ),
            ),
            CatalogEntry(
                name="coco",
                uri="pvc://coco",
                format="imagefolder",
                description="",
                mount_path="/data/coco",
                endpoint_url=None,
                credentials=Credentials(
                    "MLTEAMS_S3_COCO_KEYS_KEY_ID", "MLTEAMS_S3_COCO_KEYS_SECRET_KEY"
                ),
            ),
        ],
    )


def test_another_team_gets_only_its_own_datasets() -> None:
    parts = dataset_pod_parts(
        _config(),
        "nlp",
        mount_root="/home/jovyan/datasets",
        endpoint_url=None,
        key_id_key="AWS_ACCESS_KEY_ID",
        secret_key_key="AWS_SECRET_ACCESS_KEY",
    )
    assert parts == DatasetPodParts(
        volumes=[],
        volume_mounts=[],
        environment={
            "MLTEAMS_S3_NLP_KEY_ID": _secret_ref("nlp", "AWS_ACCESS_KEY_ID"),
            "MLTEAMS_S3_NLP_SECRET_KEY": _secret_ref("nlp", "AWS_SECRET_ACCESS_KEY"),
        },
        catalog=[
            CatalogEntry(
                name="nlp-corpus",
                uri="s3://nlp/corpus/",
                format=None,
                description="",
                mount_path=None,
                endpoint_url=None,
                credentials=Credentials("MLTEAMS_S3_NLP_KEY_ID", "MLTEAMS_S3_NLP_SECRET_KEY"),
            )
        ],
    )
    assert dataset_pod_parts(
        _config(),
        "research",
        mount_root="/data",
        endpoint_url=None,
        key_id_key="k",
        secret_key_key="s",
    ) == DatasetPodParts([], [], {}, [])


@pytest.mark.parametrize(
    ("mount_root", "mount_path"),
    [
        ("/data", "/data/coco"),
        ("/data/", "/data/coco"),
        ("/data//", "/data/coco"),
        ("/mnt/X/", "/mnt/X/coco"),
    ],
)
def test_only_trailing_slashes_of_the_mount_root_are_dropped(
    mount_root: str, mount_path: str
) -> None:
    parts = dataset_pod_parts(
        _config(),
        "vision",
        mount_root=mount_root,
        endpoint_url=None,
        key_id_key="k",
        secret_key_key="s",
    )
    assert parts.volume_mounts == [
        {"name": "mlteams-ds-coco", "mountPath": mount_path, "readOnly": True}
    ]
    assert [entry.mount_path for entry in parts.catalog] == [None, mount_path]


@pytest.mark.parametrize(
    ("secret", "key_env", "secret_env"),
    [
        ("lake-readonly", "MLTEAMS_S3_LAKE_READONLY_KEY_ID", "MLTEAMS_S3_LAKE_READONLY_SECRET_KEY"),
        ("lake.keys2", "MLTEAMS_S3_LAKE_KEYS2_KEY_ID", "MLTEAMS_S3_LAKE_KEYS2_SECRET_KEY"),
    ],
)
def test_secret_variables_are_named_after_the_secret_in_upper_case(
    secret: str, key_env: str, secret_env: str
) -> None:
    assert secret_env_names(secret) == Credentials(key_env, secret_env)


@pytest.mark.parametrize(
    ("dataset", "name"),
    [
        ("coco", "mlteams-ds-coco"),
        ("a" * 52, "mlteams-ds-" + "a" * 52),
        ("a" * 53, "mlteams-ds-" + "a" * 43 + "-abe346a7"),
        ("a" * 42 + "-" + "b" * 20, "mlteams-ds-" + "a" * 42 + "-ef8d7b62"),
        ("My.Data", "mlteams-ds-my-data-c804ecec"),
        ("_private", "mlteams-ds-private-3ce6c249"),
    ],
    ids=[
        "a short label",
        "63 characters in all",
        "64 characters in all",
        "cut at a dash",
        "not a label",
        "leading underscore",
    ],
)
def test_volume_names_are_labels_and_long_or_odd_names_get_a_digest(
    dataset: str, name: str
) -> None:
    assert volume_name(dataset) == name
    assert len(name) <= 63


def test_read_only_is_forced_on_claims_and_csi_only() -> None:
    source: dict[str, Any] = {
        "persistentVolumeClaim": {"claimName": "coco"},
        "csi": MappingProxyType({"driver": "s3.csi.example.com"}),
        "configMap": {"name": "index"},
        "emptyDir": None,
    }
    assert read_only_volume("mlteams-ds-coco", source) == {
        "name": "mlteams-ds-coco",
        "persistentVolumeClaim": {"claimName": "coco", "readOnly": True},
        "csi": {"driver": "s3.csi.example.com", "readOnly": True},
        "configMap": {"name": "index"},
        "emptyDir": None,
    }
    assert source["persistentVolumeClaim"] == {"claimName": "coco"}
