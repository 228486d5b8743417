"""Start and stop the local platform's cluster: control plane, process kubelet and serving
controller.

Usage::

    python -m devenv.cluster up       # build if needed, start in the background, wait until ready
    python -m devenv.cluster down     # stop everything it started, pods included
    python -m devenv.cluster status   # what is running, where the kubeconfig is
    python -m devenv.cluster serve    # the same platform in the foreground (Ctrl-C stops it)

State lives in ``.local/cluster`` (kubeconfig, PKI, etcd data, logs, kubelet state); the
binaries are cached outside the repository (see ``devenv.kube_build``). KServe's CRDs and its
MLServer ClusterServingRuntime are installed at every start (``devenv.serving.crds``); the serving
controller (``python -m devenv.serving``) makes InferenceServices predictor pods.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import notebook_image
from .controlplane import ControlPlane, StartError
from .kube_build import BuildError, ensure_binaries
from .kubeapi import KubeAPI, node_ready
from .kubelet.node_config import load_nodes
from .paths import REPO_ROOT, local_dir
from .procs import MARKER, Child
from .serving import crds

EXPECTED_NODES = ("cpu-0", "gpu-0", "gpu-1")


@dataclass
class LocalCluster:
    """Control plane, process kubelet and serving controller of one platform instance."""

    state_dir: Path
    rig_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    with_kubelet: bool = True
    with_serving: bool = True
    nodes_file: Path | None = None
    """The kubelet's nodes (``python -m devenv.kubelet --nodes``); None: its default nodes."""
    control_plane: ControlPlane | None = None
    kubelet: Child | None = None
    serving: Child | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def api(self) -> KubeAPI:
        assert self.control_plane is not None
        return KubeAPI(self.control_plane.server, self.control_plane.pki)

    def start(self, log=sys.stderr) -> None:
        bin_dir = ensure_binaries(log=log)
        self.control_plane = ControlPlane(self.state_dir, bin_dir, rig_id=self.rig_id)
        self.control_plane.start(log=log)
        try:
            crds.install(self.api)
            if self.with_kubelet:
                self.start_kubelet()
            if self.with_serving:
                self.start_serving()
            if self.with_kubelet:
                self.wait_nodes_ready()
        except BaseException:
            self.stop()
            raise
        print(f"cluster ready (kubeconfig {self.kubeconfig})", file=log, flush=True)

    def start_kubelet(self, on_exit: str = "stop") -> Child:
        """Start the process kubelet; its pods run from the rig's notebook image environment
        (``devenv.notebook_image``), so users' ``pip install`` goes to their home as in the
        notebook image."""
        assert self.control_plane is not None
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), KUBECONFIG=str(self.kubeconfig))
        pod_bin = notebook_image.ensure()
        self.kubelet = self.control_plane.procs.start(
            "kubelet",
            [
                sys.executable,
                "-m",
                "devenv.kubelet",
                "--kubeconfig",
                str(self.kubeconfig),
                "--state-dir",
                str(self.state_dir / "kubelet"),
                "--on-exit",
                on_exit,
                "--pod-bin",
                str(pod_bin),
                *(["--nodes", str(self.nodes_file)] if self.nodes_file else []),
            ],
            env=env,
            cwd=REPO_ROOT,
        )
        return self.kubelet

    def start_serving(self) -> Child:
        """Start the serving controller (``devenv.serving``): InferenceServices become predictor
        pods, whose failed containers' messages it reads from the kubelet's logs."""
        assert self.control_plane is not None
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), KUBECONFIG=str(self.kubeconfig))
        self.serving = self.control_plane.procs.start(
            "serving",
            [
                sys.executable,
                "-m",
                "devenv.serving",
                "--kubeconfig",
                str(self.kubeconfig),
                "--kubelet-state-dir",
                str(self.state_dir / "kubelet"),
            ],
            env=env,
            cwd=REPO_ROOT,
        )
        return self.serving

    def stop_serving(self) -> None:
        if self.serving is not None:
            assert self.control_plane is not None
            self.control_plane.procs.stop_child(self.serving, timeout=15)
            self.serving = None

    def stop_kubelet(self) -> None:
        if self.kubelet is not None:
            assert self.control_plane is not None
            self.control_plane.procs.stop_child(self.kubelet, timeout=60)
            self.kubelet = None

    @property
    def node_names(self) -> tuple[str, ...]:
        """The nodes the kubelet registers."""
        if self.nodes_file is None:
            return EXPECTED_NODES
        return tuple(node.name for node in load_nodes(self.nodes_file))

    def wait_nodes_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        ready: set[str] = set()
        while time.monotonic() < deadline:
            if self.kubelet is not None and not self.kubelet.alive():
                raise StartError(
                    f"kubelet exited with code {self.kubelet.popen.returncode}; "
                    f"log {self.kubelet.log_path}:\n{self.kubelet.log_tail()}"
                )
            nodes = self.api.get("/api/v1/nodes").get("items", [])
            ready = {n["metadata"]["name"] for n in nodes if node_ready(n)}
            if ready.issuperset(self.node_names):
                return
            time.sleep(0.5)
        raise StartError(f"nodes not Ready after {timeout:.0f}s (ready: {sorted(ready)})")

    def stop(self) -> None:
        self.stop_serving()
        self.stop_kubelet()
        if self.control_plane is not None:
            self.control_plane.stop()


def _state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def _read_state(state_dir: Path) -> dict | None:
    try:
        state = json.loads(_state_file(state_dir).read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(state["pid"], 0)
    except (OSError, KeyError, TypeError):
        return None
    return state


def serve(state_dir: Path) -> int:
    """Run the cluster in the foreground until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    cluster = LocalCluster(state_dir, rig_id=os.environ.get(MARKER) or uuid.uuid4().hex[:12])
    try:
        cluster.start()
    except (StartError, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert cluster.control_plane is not None
    state = dict(cluster.control_plane.describe(), pid=os.getpid(), ready=True)
    _state_file(state_dir).write_text(json.dumps(state, indent=2))
    try:
        while not stop.wait(2):
            dead = [c.name for c in cluster.control_plane.procs.children if not c.alive()]
            if dead:
                print(f"error: {', '.join(dead)} exited; stopping the cluster", file=sys.stderr)
                return 1
        return 0
    finally:
        cluster.stop()
        _state_file(state_dir).unlink(missing_ok=True)
        print("cluster stopped", file=sys.stderr)


def up(state_dir: Path, timeout: float = 3600) -> int:
    state = _read_state(state_dir)
    if state:
        print(f"cluster already running (pid {state['pid']}); kubeconfig {state['kubeconfig']}")
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    _state_file(state_dir).unlink(missing_ok=True)
    log_path = state_dir / "cluster.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devenv.cluster", "serve", "--state-dir", str(state_dir)],
            cwd=REPO_ROOT,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    print(f"starting cluster in the background (pid {proc.pid}, log {log_path})", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"error: cluster failed to start; last lines of {log_path}:", file=sys.stderr)
            print(
                "\n".join(log_path.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr
            )
            return 1
        state = _read_state(state_dir)
        if state and state.get("ready"):
            print(f"cluster ready: {state['server']}\n  export KUBECONFIG={state['kubeconfig']}")
            return 0
        time.sleep(1)
    print("error: cluster did not become ready in time", file=sys.stderr)
    return 1


def down(state_dir: Path, timeout: float = 90) -> int:
    state = _read_state(state_dir)
    if not state:
        print("cluster is not running")
        return 0
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(state["pid"], 0)
        except OSError:
            print("cluster stopped")
            return 0
        time.sleep(0.5)
    print(
        f"error: cluster (pid {state['pid']}) did not stop within {timeout:.0f}s", file=sys.stderr
    )
    return 1


def status(state_dir: Path) -> int:
    state = _read_state(state_dir)
    if not state:
        print("cluster is not running")
        return 3
    print(json.dumps(state, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.cluster", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "serve"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=local_dir() / "cluster",
        help="where kubeconfig, PKI, etcd data and logs live (default .local/cluster)",
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    return {"up": up, "down": down, "status": status, "serve": serve}[args.command](state_dir)


if __name__ == "__main__":
    sys.exit(main())
