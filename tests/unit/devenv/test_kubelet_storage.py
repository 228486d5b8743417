"""The process kubelet's provisioning of PersistentVolumeClaims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devenv.kubelet.storage import (
    PROVISIONED_BY,
    PROVISIONER,
    STORAGE_CLASS,
    claim_path,
    released,
    storage_class_body,
    volume_for_claim,
    wants_volume,
)

pytestmark = pytest.mark.unit


def claim(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "claim-alice", "namespace": "team-a", "uid": "c-1"},
        "spec": {"storageClassName": STORAGE_CLASS, "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Pending"},
    }
    body["spec"].update(spec)
    return body


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        (claim(), True),
        (claim(storageClassName="other"), False),
        (claim(storageClassName=None), False),
        (claim(volumeName="pv-1"), False),
        ({**claim(), "status": {"phase": "Bound"}}, False),
        ({**claim(), "metadata": {**claim()["metadata"], "deletionTimestamp": "x"}}, False),
    ],
)
def test_wants_volume(body: dict[str, Any], wanted: bool) -> None:
    assert wants_volume(body) is wanted


def test_volume_for_claim() -> None:
    path = claim_path(Path("/state/pvc"), "team-a", "claim-alice")
    assert path == Path("/state/pvc/team-a/claim-alice")
    volume = volume_for_claim(claim(resources={"requests": {"storage": "10Gi"}}), path)
    assert volume["metadata"] == {"name": "pvc-c-1", "annotations": {PROVISIONED_BY: PROVISIONER}}
    spec = volume["spec"]
    assert spec["capacity"] == {"storage": "10Gi"}
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["storageClassName"] == STORAGE_CLASS
    assert spec["hostPath"]["path"] == "/state/pvc/team-a/claim-alice"
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["claimRef"]["uid"] == "c-1"
    assert spec["claimRef"]["namespace"] == "team-a"


@pytest.mark.parametrize(
    ("annotations", "phase", "expected"),
    [
        ({PROVISIONED_BY: PROVISIONER}, "Released", True),
        ({PROVISIONED_BY: PROVISIONER}, "Bound", False),
        ({PROVISIONED_BY: "someone-else"}, "Released", False),
        ({}, "Released", False),
    ],
)
def test_released(annotations: dict[str, str], phase: str, expected: bool) -> None:
    volume = {"metadata": {"name": "pv", "annotations": annotations}, "status": {"phase": phase}}
    assert released(volume) is expected


@pytest.mark.parametrize(("default", "value"), [(True, "true"), (False, "false")])
def test_storage_class(default: bool, value: str) -> None:
    body = storage_class_body(default)
    assert body["provisioner"] == PROVISIONER
    assert body["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == value
