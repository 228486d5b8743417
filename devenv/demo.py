"""``make demo``: the whole platform in the foreground; Ctrl-C stops all of it.

Starts the control plane, the process kubelet (with one CPU node and two 4-GPU nodes), an MLflow
tracking server, the object store with each team's bucket, sample data and read-only keys (kept
in Secrets of the team namespaces), the local OpenID Connect provider with the demo users and
their groups, and JupyterHub with TeamOAuthenticator, TeamKubeSpawner and the teams of
``devenv/demo_teams.yaml``, then prints the URLs and the demo logins. ``--auth dummy`` uses the
hub's own login form and hub groups instead.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import yaml

from .cluster import LocalCluster
from .controlplane import StartError
from .hub import LocalHub
from .kube_build import BuildError
from .kubeapi import ApiError, KubeAPI, ensure_namespace
from .mlflow_server import MLflowServer
from .object_store import ObjectStore, team_bucket
from .oidc import DEMO_PASSWORD, DEMO_USERS, LocalOIDC
from .paths import REPO_ROOT, local_dir
from .procs import ProcessGroup, free_port
from .serving_keys import publish_serving_key
from .team_data import publish_team_keys

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


GOVERNED_BUCKET = "mlteams-governed"
VISION_EVALUATION = "evaluation/vision/iris.csv"


def sso_logins() -> str:
    """The provider's demo users, their groups and what they mean, one per line."""
    return "\n".join(
        f"    {user.name:<6} groups {', '.join(user.groups):<22} {user.description}"
        for user in DEMO_USERS
    )


def demo_team_secrets(teams_file: Path = DEMO_TEAMS) -> dict[str, tuple[str, str]]:
    """team -> (namespace, Secret name) for each team with an object-store dataset."""
    raw = yaml.safe_load(teams_file.read_text())
    out = {}
    for name, team in raw["teams"].items():
        secrets = [
            raw["datasets"][d]["credentials_secret"]
            for d in team.get("datasets", [])
            if raw["datasets"][d].get("credentials_secret")
        ]
        if secrets:
            out[name] = (team.get("namespace", f"team-{name}"), secrets[0])
    return out


def seed_demo_data(api: KubeAPI, store: ObjectStore) -> None:
    """Buckets, read-only keys as Secrets, and the sample datasets of ``demo_teams.yaml``."""
    from sklearn.datasets import load_iris

    publish_team_keys(api, store, demo_team_secrets())
    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns={"target": "species"})
    frame["species"] = frame["species"].map(dict(enumerate(iris.target_names)))
    # one flower in five is held out: the promotion service scores vision's models on it, from
    # a bucket the teams' keys cannot read (docs/admin/promotion.md)
    held_out = frame.index % 5 == 0
    store.upload(team_bucket("vision"), "iris/iris.csv", frame[~held_out].to_csv(index=False))
    store.create_bucket(GOVERNED_BUCKET)
    store.upload(GOVERNED_BUCKET, VISION_EVALUATION, frame[held_out].to_csv(index=False))
    # vision's champions are served: a key that reads only s3://mlteams-governed/vision/, in the
    # Secret of the ServiceAccount its InferenceServices name (docs/admin/serving.md)
    publish_serving_key(
        api,
        store,
        team="vision",
        namespace=demo_team_secrets()["vision"][0],
        bucket=GOVERNED_BUCKET,
    )
    reviews = [
        ("Fast to set up and the GPU notebook started at once", 1),
        ("The training run crashed twice before the deadline", 0),
        ("Experiment tracking saved us hours of bookkeeping", 1),
        ("Could not find last week's model anywhere", 0),
    ]
    lines = "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in reviews)
    store.upload(team_bucket("nlp"), "reviews/part-0.jsonl", lines)


def start_data_plane(
    state: Path, procs: ProcessGroup, api: KubeAPI, hub_api_url: str = ""
) -> dict[str, str]:
    """MLflow (taking the tokens of the hub at ``hub_api_url``) and the object store with the
    demo data; the hub environment that points at them, the registry as MLflow's admin."""
    mlflow = MLflowServer(state / "mlflow", procs, hub_api_url=hub_api_url)
    mlflow.start()
    store = ObjectStore(state / "objectstore", procs)
    store.start()
    seed_demo_data(api, store)
    return {
        "MLTEAMS_TRACKING_URI": mlflow.url,
        "MLTEAMS_OBJECT_STORE_URL": store.endpoint_url,
        "MLTEAMS_REGISTRY_URL": mlflow.url,
        "MLTEAMS_REGISTRY_USERNAME": mlflow.admin_username,
        "MLTEAMS_REGISTRY_PASSWORD": mlflow.admin_password,
        "MLTEAMS_OBJECT_STORE_ENDPOINT": store.endpoint_url,
        "MLTEAMS_OBJECT_STORE_KEY_ID": store.root_credentials.access_key,
        "MLTEAMS_OBJECT_STORE_SECRET_KEY": store.root_credentials.secret_key,
        "MLTEAMS_GOVERNED_ROOT": f"s3://{GOVERNED_BUCKET}",
    }


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
        hub_port = free_port()  # MLflow checks hub tokens there: known before the hub starts
        hub_api_url = f"http://127.0.0.1:{hub_port}/hub/api"
        env.update(start_data_plane(state, cluster.control_plane.procs, cluster.api, hub_api_url))
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
            hub_port=hub_port,
            extra_env=env,
        )
        hub.start()
        print(
            f"""
  JupyterHub is running: {hub.url}
{logins}
  Servers run as pods on the local cluster: KUBECONFIG={cluster.kubeconfig}
  Each user's home is a volume claim in their team's namespace, kept when the server stops;
  every team's members also share the folder ~/team
  Notebooks are tracked in MLflow: {env["MLTEAMS_TRACKING_URI"]} (servers sign in with their
  hub token; its UI takes the admin {env["MLTEAMS_REGISTRY_USERNAME"]}, password
  {env["MLTEAMS_REGISTRY_PASSWORD"]})
  Team datasets live in the object store: {env["MLTEAMS_OBJECT_STORE_URL"]}
  Promote a run's model from a notebook: POST /user/<you>/mlteams/promote with
  {{"model": "iris", "run_id": "<run id>"}} (docs/user/promotion.md); vision's models are scored
  on held-out flowers and become governed.vision.<model> in MLflow, served through a KServe
  InferenceService in team-vision; once it is Ready,
  .venv/bin/python -m devenv.serving_curl --model <model>
  prints a curl that gets predictions from it (docs/admin/serving.md)
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
