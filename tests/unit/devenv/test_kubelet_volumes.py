"""The process kubelet's volumes: which local path backs each pod volume, and the files of
ConfigMap, Secret, downward API and projected volumes."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from devenv.kubelet.references import Lookups, TokenRequest, pod_references
from devenv.kubelet.volume_setup import materialise
from devenv.kubelet.volumes import (
    VolumeContext,
    VolumeError,
    VolumeFile,
    VolumeSource,
    plan_volume,
    plan_volumes,
)

pytestmark = pytest.mark.unit

POD: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "ns1", "uid": "u-1", "labels": {"app": "web"}},
    "spec": {
        "nodeName": "cpu-0",
        "serviceAccountName": "runner",
        "containers": [{"name": "main", "resources": {"limits": {"memory": "1Gi"}}}],
    },
}
CTX = VolumeContext(
    pod_volumes_dir=Path("/state/pods/ns1_web_u-1/volumes"),
    pvc_root=Path("/state/pvc"),
    pod_ip="127.10.0.9",
    host_ip="127.0.0.1",
    node_allocatable={"cpu": "16", "memory": "64Gi"},
)
TOKEN = TokenRequest(audience="", expiration_seconds=3607)
LOOKUPS = Lookups(
    secrets={"tls": {"tls.crt": b"CERT", "tls.key": b"KEY"}, "missing": None},
    config_maps={
        "kube-root-ca.crt": {"ca.crt": b"CA"},
        "app": {"a.yaml": b"a: 1", "b.yaml": b"b: 2"},
        "absent": None,
    },
    tokens={TOKEN: "jwt-token"},
    claim_paths={"static": "/exports/shared"},
)


def plan(volume: dict[str, Any], lookups: Lookups = LOOKUPS) -> VolumeSource:
    return plan_volume(POD, volume, lookups, CTX)


@pytest.mark.parametrize(
    ("volume", "path", "read_only"),
    [
        ({"name": "cache", "emptyDir": {}}, "/state/pods/ns1_web_u-1/volumes/cache", False),
        (
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}},
            "/state/pvc/ns1/claim-alice",
            False,
        ),
        (
            {"name": "data", "persistentVolumeClaim": {"claimName": "shared", "readOnly": True}},
            "/state/pvc/ns1/shared",
            True,
        ),
        (
            # a claim bound to a statically provisioned hostPath volume mounts that folder
            {"name": "ds", "persistentVolumeClaim": {"claimName": "static", "readOnly": True}},
            "/exports/shared",
            True,
        ),
        ({"name": "host", "hostPath": {"path": "/srv/data"}}, "/srv/data", False),
        (
            {"name": "odd", "nfs": {"server": "x", "path": "/"}},
            "/state/pods/ns1_web_u-1/volumes/odd",
            False,
        ),
    ],
)
def test_volume_paths(volume: dict[str, Any], path: str, read_only: bool) -> None:
    source = plan(volume)
    assert str(source.path) == path
    assert source.read_only is read_only
    assert source.files is None


def test_unsupported_volume_type_is_noted() -> None:
    assert "not supported" in plan({"name": "odd", "nfs": {}}).notes[0]


def test_config_map_volume_all_keys_read_only() -> None:
    source = plan({"name": "cfg", "configMap": {"name": "app"}})
    assert source.read_only
    assert source.files == {
        "a.yaml": VolumeFile(b"a: 1", 0o644),
        "b.yaml": VolumeFile(b"b: 2", 0o644),
    }


def test_config_map_items_and_modes() -> None:
    source = plan(
        {
            "name": "cfg",
            "configMap": {
                "name": "app",
                "defaultMode": 0o600,
                "items": [
                    {"key": "a.yaml", "path": "conf/a.yaml"},
                    {"key": "b.yaml", "path": "b", "mode": 0o400},
                ],
            },
        }
    )
    assert source.files == {
        "conf/a.yaml": VolumeFile(b"a: 1", 0o600),
        "b": VolumeFile(b"b: 2", 0o400),
    }


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "s", "secret": {"secretName": "missing"}}, 'secret "missing" not found'),
        ({"name": "c", "configMap": {"name": "absent"}}, 'configmap "absent" not found'),
        (
            {"name": "c", "configMap": {"name": "app", "items": [{"key": "zz", "path": "zz"}]}},
            "has no key zz",
        ),
        (
            {
                "name": "c",
                "configMap": {"name": "app", "items": [{"key": "a.yaml", "path": "../x"}]},
            },
            "invalid volume item path",
        ),
    ],
)
def test_volume_errors(volume: dict[str, Any], message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        plan(volume)


def test_optional_missing_secret_is_an_empty_volume() -> None:
    source = plan({"name": "s", "secret": {"secretName": "missing", "optional": True}})
    assert source.files == {}


def test_projected_service_account_volume() -> None:
    volume = {
        "name": "kube-api-access-abcde",
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                            {
                                "path": "mem",
                                "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"},
                            },
                        ]
                    }
                },
                {"secret": {"name": "tls", "items": [{"key": "tls.crt", "path": "tls/crt"}]}},
            ],
        },
    }
    source = plan(volume)
    assert source.files == {
        "token": VolumeFile(b"jwt-token", 0o600),
        "ca.crt": VolumeFile(b"CA", 0o644),
        "namespace": VolumeFile(b"ns1", 0o644),
        "labels": VolumeFile(b'app="web"', 0o644),
        "mem": VolumeFile(b"1024", 0o644),
        "tls/crt": VolumeFile(b"CERT", 0o644),
    }
    assert pod_references({**POD, "spec": {**POD["spec"], "volumes": [volume]}}).tokens == {TOKEN}


def test_projected_token_without_token_is_skipped_with_a_note() -> None:
    volume = {
        "name": "t",
        "projected": {"sources": [{"serviceAccountToken": {"path": "token", "audience": "vault"}}]},
    }
    source = plan(volume)
    assert source.files == {}
    assert "no service account token" in source.notes[0]


def test_references_cover_env_env_from_and_volumes() -> None:
    pod = {
        "metadata": POD["metadata"],
        "spec": {
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s-init"}}]}],
            "containers": [
                {
                    "name": "c",
                    "env": [
                        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
                        {
                            "name": "B",
                            "valueFrom": {"configMapKeyRef": {"name": "c-env", "key": "k"}},
                        },
                    ],
                    "envFrom": [{"configMapRef": {"name": "c-from"}}],
                }
            ],
            "volumes": [
                {"name": "v1", "secret": {"secretName": "s-vol"}},
                {"name": "v2", "configMap": {"name": "c-vol"}},
                {"name": "v3", "persistentVolumeClaim": {"claimName": "data"}},
            ],
        },
    }
    refs = pod_references(pod)
    assert refs.secrets == {"s-init", "s-env", "s-vol"}
    assert refs.config_maps == {"c-env", "c-from", "c-vol"}
    assert refs.claims == {"data"}


def test_materialise_writes_files_and_dirs(tmp_path: Path) -> None:
    ctx = VolumeContext(tmp_path / "pod", tmp_path / "pvc", "127.10.0.9", "127.0.0.1", {})
    pod = {
        **POD,
        "spec": {
            **POD["spec"],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "home", "persistentVolumeClaim": {"claimName": "c1"}},
                {
                    "name": "cfg",
                    "configMap": {"name": "app", "items": [{"key": "a.yaml", "path": "d/a"}]},
                },
                {
                    "name": "hp",
                    "hostPath": {
                        "path": str(tmp_path / "host" / "new"),
                        "type": "DirectoryOrCreate",
                    },
                },
            ],
        },
    }
    sources = plan_volumes(pod, LOOKUPS, ctx)
    stale = tmp_path / "pod" / "cfg" / "old.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale")
    materialise(sources)
    assert (tmp_path / "pod" / "cache").is_dir()
    assert (tmp_path / "pvc" / "ns1" / "c1").is_dir()
    assert (tmp_path / "host" / "new").is_dir()
    written = tmp_path / "pod" / "cfg" / "d" / "a"
    assert written.read_bytes() == b"a: 1"
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert not stale.exists()


def test_host_path_type_checked(tmp_path: Path) -> None:
    source = VolumeSource("hp", tmp_path / "nope", create=False, host_type="Directory")
    with pytest.raises(VolumeError, match="does not exist"):
        materialise({"hp": source})
    (tmp_path / "file").write_text("x")
    source = VolumeSource("hp", tmp_path / "file", create=False, host_type="Directory")
    with pytest.raises(VolumeError, match="is not a Directory"):
        materialise({"hp": source})
