"""``make demo``: the whole platform in the foreground; Ctrl-C stops all of it.

Starts the control plane, the process kubelet (with one CPU node and two 4-GPU nodes),
and JupyterHub with TeamKubeSpawner and the teams of ``devenv/demo_teams.yaml``, then prints
the URL and the demo logins.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading

from .cluster import LocalCluster
from .controlplane import StartError
from .hub import LocalHub
from .kube_build import BuildError
from .kubeapi import ApiError, KubeAPI
from .paths import REPO_ROOT, local_dir
from .procs import free_port

DEMO_TEAMS = REPO_ROOT / "devenv" / "demo_teams.yaml"
DEMO_GROUPS = {
    "vision": {"users": ["alice", "carol"]},
    "vision-leads": {"users": ["lena"]},
    "nlp": {"users": ["bob", "carol"]},
}
DEMO_LOGINS = """\
    alice  team vision            bob    team nlp
    carol  teams vision and nlp   lena   lead of team vision
    dave   no team (sees whom to ask)   admin  hub admin"""


def ensure_namespace(api: KubeAPI, name: str) -> None:
    try:
        api.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
    except ApiError as exc:
        if exc.status != 409:
            raise


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("MLTEAMS_DEMO_PORT", "8000")),
        help="port of the hub's public URL (default 8000, or a free one if taken)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    state = local_dir() / "demo"
    cluster = LocalCluster(state / "cluster")
    hub: LocalHub | None = None
    try:
        cluster.start()
        assert cluster.control_plane is not None
        ensure_namespace(cluster.api, "jupyterhub")
        port = args.port if _port_free(args.port) else free_port()
        hub = LocalHub(
            state / "hub",
            cluster.kubeconfig,
            cluster.control_plane.procs,
            public_port=port,
            extra_env={
                "MLTEAMS_HUB_SPAWNER": "mlteams",
                "MLTEAMS_TEAMS_FILE": str(DEMO_TEAMS),
                "MLTEAMS_HUB_GROUPS": json.dumps(DEMO_GROUPS),
            },
        )
        hub.start()
        print(
            f"""
  JupyterHub is running: {hub.url}
  Log in with the password "{hub.password}" as:
{DEMO_LOGINS}
  Servers run as pods on the local cluster: KUBECONFIG={cluster.kubeconfig}
  Logs: {cluster.control_plane.procs.log_dir}
  Press Ctrl-C to stop everything.
""",
            flush=True,
        )
        while not stop.wait(1):
            dead = [c.name for c in cluster.control_plane.procs.children if not c.alive()]
            if dead:
                print(f"error: {', '.join(dead)} exited unexpectedly; stopping", file=sys.stderr)
                return 1
        return 0
    except (StartError, BuildError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping the platform...", file=sys.stderr, flush=True)
        if hub is not None:
            hub.stop()
        cluster.stop()
        print("stopped; no process left running", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
