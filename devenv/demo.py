"""``make demo``: the whole platform in the foreground; Ctrl-C stops all of it.

Starts the control plane, the process kubelet (with one CPU node and two 4-GPU nodes), the local
OpenID Connect provider with the demo users and their groups, and JupyterHub with
TeamOAuthenticator, TeamKubeSpawner and the teams of ``devenv/demo_teams.yaml``, then prints the
URL and the demo logins. ``--auth dummy`` uses the hub's own login form and hub groups instead.
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
from .kubeapi import ApiError, ensure_namespace
from .oidc import DEMO_PASSWORD, DEMO_USERS, LocalOIDC
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


def sso_logins() -> str:
    """The provider's demo users, their groups and what they mean, one per line."""
    return "\n".join(
        f"    {user.name:<6} groups {', '.join(user.groups):<22} {user.description}"
        for user in DEMO_USERS
    )


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
    parser.add_argument(
        "--auth",
        choices=("oidc", "dummy"),
        default=os.environ.get("MLTEAMS_DEMO_AUTH", "oidc"),
        help="sign in through the local OIDC provider (default) or the hub's own form",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    state = local_dir() / "demo"
    cluster = LocalCluster(state / "cluster")
    hub: LocalHub | None = None
    oidc: LocalOIDC | None = None
    try:
        cluster.start()
        assert cluster.control_plane is not None
        ensure_namespace(cluster.api, "jupyterhub")
        port = args.port if _port_free(args.port) else free_port()
        env = {"MLTEAMS_HUB_SPAWNER": "mlteams", "MLTEAMS_TEAMS_FILE": str(DEMO_TEAMS)}
        if args.auth == "oidc":
            oidc = LocalOIDC(
                state / "oidc",
                cluster.control_plane.procs,
                [f"http://127.0.0.1:{port}/hub/oauth_callback"],
            )
            oidc.start()
            env.update(oidc.hub_env())
            logins = f"""  Sign in through the local SSO ({oidc.issuer}) with the password
  "{DEMO_PASSWORD}" as:
{sso_logins()}"""
        else:
            env["MLTEAMS_HUB_GROUPS"] = json.dumps(DEMO_GROUPS)
            logins = f"""  Log in with the password "{DEMO_PASSWORD}" as:
{DEMO_LOGINS}"""
        hub = LocalHub(
            state / "hub",
            cluster.kubeconfig,
            cluster.control_plane.procs,
            public_port=port,
            extra_env=env,
        )
        hub.start()
        print(
            f"""
  JupyterHub is running: {hub.url}
{logins}
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
        if oidc is not None:
            oidc.stop()
        cluster.stop()
        print("stopped; no process left running", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
