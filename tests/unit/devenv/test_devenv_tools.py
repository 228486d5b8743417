"""The local platform's own tooling: build pinning, PKI and the process marker."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest
from cryptography import x509

from devenv import kube_build
from devenv.certs import ensure_pki, write_kubeconfig
from devenv.procs import ProcessGroup, processes_with_marker, wait_until

pytestmark = pytest.mark.unit


def test_pinned_version_is_a_recent_kubernetes_release() -> None:
    version = kube_build.pinned_version()
    major, minor = (int(p) for p in version.lstrip("v").split(".")[:2])
    assert (major, minor) >= (1, 32)


def test_every_staging_module_is_replaced_by_its_published_twin() -> None:
    text = (kube_build.KUBE_MODULE_DIR / "go.mod").read_text()
    minor_patch = kube_build.pinned_version().split(".", 1)[1]
    replaces = [line.split() for line in text.splitlines() if "=>" in line]
    assert len(replaces) >= 25
    for left, _, right, version in replaces:
        assert left == right
        assert version == f"v0.{minor_patch}"


def test_binaries_dir_changes_when_the_pin_changes(tmp_path: Path) -> None:
    for rel in ("go.mod", "go.sum", "tools.go", "cmd/etcd/main.go"):
        dest = tmp_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((kube_build.KUBE_MODULE_DIR / rel).read_bytes())
    before = kube_build.binaries_dir(tmp_path)
    (tmp_path / "go.mod").write_text((tmp_path / "go.mod").read_text() + "\n// changed\n")
    after = kube_build.binaries_dir(tmp_path)
    assert before != after
    assert before.name.startswith(kube_build.pinned_version())


def test_pki_signs_admin_as_system_masters_and_serves_loopback(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    admin = x509.load_pem_x509_certificate(pki.admin_cert.read_bytes())
    orgs = [
        a.value for a in admin.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)
    ]
    assert orgs == ["system:masters"]
    server = x509.load_pem_x509_certificate(pki.apiserver_cert.read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(pki.admin_cert, pki.admin_key)
    first = pki.ca_cert.read_bytes()
    ensure_pki(tmp_path / "pki")
    assert pki.ca_cert.read_bytes() == first, "an existing PKI is kept, not regenerated"


def test_kubeconfig_points_at_the_pki(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, "https://127.0.0.1:6443", pki)
    text = path.read_text()
    assert "server: https://127.0.0.1:6443" in text
    assert f"client-certificate: {pki.admin_cert}" in text
    assert path.stat().st_mode & 0o077 == 0


def test_marker_finds_a_running_child_and_not_a_stopped_one(tmp_path: Path) -> None:
    group = ProcessGroup("unit-marker-test", tmp_path / "logs")
    child = group.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait_until(
            lambda: any(pid == child.pid for pid, _ in processes_with_marker("unit-marker-test")),
            timeout=10,
            what="the child to be visible",
        )
    finally:
        group.stop_all()
    assert not child.alive()
    assert processes_with_marker("unit-marker-test") == []


def test_demo_catalog_is_valid_and_each_team_gets_its_datasets_secret() -> None:
    import yaml

    from devenv.demo import DEMO_TEAMS, demo_team_secrets
    from hub_ext.policy import load_config

    config = load_config(yaml.safe_load(DEMO_TEAMS.read_text()))
    assert demo_team_secrets() == {
        "vision": ("team-vision", "vision-datasets"),
        "nlp": ("team-nlp", "nlp-datasets"),
    }
    for team, (namespace, secret) in demo_team_secrets().items():
        assert config.teams[team].namespace == namespace
        uris = [config.datasets[d].uri for d in config.teams[team].datasets]
        assert uris and all(uri.startswith(f"s3://team-{team}/") for uri in uris)
        assert {config.datasets[d].credentials_secret for d in config.teams[team].datasets} == {
            secret
        }


def test_stop_child_stops_one_process_and_forgets_it(tmp_path: Path) -> None:
    group = ProcessGroup("unit-stop-child", tmp_path)
    first = group.start("first", [sys.executable, "-c", "import time; time.sleep(60)"])
    second = group.start("second", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        group.stop_child(first, timeout=5)
        group.stop_child(None)
        assert not first.alive() and second.alive()
        assert group.children == [second]
    finally:
        group.stop_all()
    assert not second.alive()
