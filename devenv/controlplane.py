"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager, scheduler.

Authorization is Node,RBAC; ResourceQuota admission, scheduling, namespace finalisation and the
node lifecycle are Kubernetes' own. The process kubelet (``devenv.kubelet``) provides the nodes.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .certs import ClusterPKI, ensure_pki, write_kubeconfig
from .procs import Child, ProcessGroup, free_port

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIT_POLICY = {
    # every pod as the apiserver received it (created or replaced), one JSON line each: what the
    # security tests search for secret values; nothing else is audited (no Secret's data)
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted", "Panic"],
    "rules": [
        {
            "level": "Request",
            "resources": [{"group": "", "resources": ["pods"]}],
            "verbs": ["create", "update", "patch"],
        },
        {"level": "None"},
    ],
}


class StartError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


@dataclass
class ControlPlane:
    """The four control-plane processes of one local cluster, with its state under ``state_dir``."""

    state_dir: Path
    bin_dir: Path
    rig_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    api_port: int = 0
    procs: ProcessGroup = field(init=False)
    pki: ClusterPKI = field(init=False)
    # where kube-apiserver was in the stop order when a test stopped it alone
    _apiserver_slot: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.procs = ProcessGroup(self.rig_id, self.state_dir / "logs")
        self.pki = ClusterPKI(self.state_dir / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def start(self, log=sys.stderr) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pki = ensure_pki(self.state_dir / "pki")
        try:
            self._start_etcd()
            self._start_apiserver()
            write_kubeconfig(self.kubeconfig, self.server, self.pki)
            self._start_controllers()
        except BaseException:
            self.stop()
            raise
        print(
            f"control plane up: {self.server} (kubeconfig {self.kubeconfig})", file=log, flush=True
        )

    def stop(self) -> None:
        self.procs.stop_all()

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone (a fault to inject): etcd, the controllers, the kubelet and
        the hub keep running and see the API go away."""
        child = self._apiserver()
        self._apiserver_slot = self.procs.children.index(child)
        self.procs.stop_child(child, timeout=30)

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port and etcd, in its place in the stop order
        (before the processes that need it)."""
        self._start_apiserver()
        slot, self._apiserver_slot = self._apiserver_slot, None
        if slot is not None:
            child = self._apiserver()
            self.procs.children.remove(child)
            self.procs.children.insert(slot, child)

    def _apiserver(self) -> Child:
        found = [c for c in self.procs.children if c.name == "kube-apiserver"]
        assert found, "kube-apiserver is not running"
        return found[0]

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        data = self.state_dir / "etcd"
        child = self.procs.start(
            "etcd",
            [
                self._bin("etcd"),
                "--name=local",
                f"--data-dir={data}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=local=http://127.0.0.1:{peer}",
                "--log-level=warn",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=2147483648",
            ],
        )
        self._wait_http(child, f"{self.etcd_url}/health", timeout=60)

    @property
    def audit_log(self) -> Path:
        """The pods the apiserver received, one audit event (JSON) a line."""
        return self.state_dir / "audit" / "pods.jsonl"

    def _start_apiserver(self) -> None:
        self.api_port = self.api_port or free_port()
        pki = self.pki
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        audit_policy = self.audit_log.parent / "policy.json"
        audit_policy.write_text(json.dumps(AUDIT_POLICY))
        child = self.procs.start(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={pki.apiserver_cert}",
                f"--tls-private-key-file={pki.apiserver_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--requestheader-client-ca-file={pki.ca_cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction,ResourceQuota",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--v=1",
            ],
        )
        self._wait_http(child, f"{self.server}/readyz", timeout=120)

    def _start_controllers(self) -> None:
        kc, pki = str(self.kubeconfig), self.pki
        common = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        cm_port = free_port()
        cm = self.procs.start(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                *common,
                f"--secure-port={cm_port}",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--v=1",
            ],
        )
        sched_port = free_port()
        sched = self.procs.start(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                *common,
                f"--secure-port={sched_port}",
                "--v=1",
            ],
        )
        self._wait_http(cm, f"https://127.0.0.1:{cm_port}/healthz", timeout=90)
        self._wait_http(sched, f"https://127.0.0.1:{sched_port}/healthz", timeout=90)

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if self.pki.complete():
            ctx.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        return ctx

    def _wait_http(self, child: Child, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not child.alive():
                raise StartError(
                    f"{child.name} exited with code {child.popen.returncode}; "
                    f"log {child.log_path}:\n{child.log_tail()}"
                )
            try:
                ctx = self._ssl_context() if url.startswith("https") else None
                with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
                    if resp.status == 200:
                        return
            except Exception as exc:
                last = str(exc)
            time.sleep(0.3)
        raise StartError(
            f"{child.name} not healthy at {url} after {timeout:.0f}s ({last}); "
            f"log {child.log_path}:\n{child.log_tail()}"
        )

    def describe(self) -> dict:
        return {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "rig_id": self.rig_id,
            "pids": {c.name: c.pid for c in self.procs.children},
        }

    def write_state(self, path: Path) -> None:
        path.write_text(json.dumps(self.describe(), indent=2))
