"""Hub memory benchmark: a TeamKubeSpawner hub whose pod reflector holds 5,000 team pods against a
stock KubeSpawner hub whose reflector holds the same 5,000 pods.

Prints each hub's resident memory (``VmRSS`` of the JupyterHub process, ``/proc/<pid>/status``)
before its reflector has listed the pods and after, and the ratio team / stock of the latter (the
aim: at most 1.1; it does not fail when it is missed).

What is real and what is not:

* real: the local platform's control plane (``devenv.cluster.LocalCluster``: etcd,
  kube-apiserver, controller-manager; no kubelet, and the scheduler stopped once it is up, so
  that nothing touches the pods after they are made), and two JupyterHub processes with
  configurable-http-proxy (``devenv.hub.LocalHub``), one with TeamKubeSpawner (and the hub's
  ``MLTeams`` configuration, its start-up provisioning of the team namespaces and the managed
  ``mlteams`` service, which is a process of its own and not counted), one with stock
  KubeSpawner;
* the pods are made through the apiserver (``benchmarks.team_pods``, as the admin page benchmark
  makes them): ``--pods`` team server pods (default 5,000) round robin over ``--teams`` team
  namespaces (default 20), with the labels, annotations and resources TeamKubeSpawner gives a
  pod, status ``Running``. TeamKubeSpawner's reflector watches every namespace for pods with the
  team label; stock KubeSpawner's watches its own namespace only (``KubeSpawner.namespace``, as
  the z2jh chart deploys it, ``enable_user_namespaces`` off). So the stock hub's namespace,
  ``bench-stock``, gets a copy of each pod, the same manifest without the team label (which
  would put it in the team hub's reflector too): the copies are smaller by that one label;
* each hub lists the pods when its first server starts (KubeSpawner starts its reflectors in
  ``_start()``, and creates the pod only once they have listed): so each hub starts one CPU
  server (``bench-warm-up``), the benchmark waits until its pod exists in the apiserver, which
  proves that the reflector has listed every pod, then stops it again (its pod is never
  scheduled);
* the resident memory is read every 0.5 s until it has changed by less than 0.5% over 5 s
  (allocations of the list and the JSON it came from freed or reused), at most 120 s; both hubs
  are read again side by side at the end, and those figures are the ones compared.

Run: ``.venv/bin/python -m benchmarks.hub_memory [--pods 5000] [--teams 20]`` (not part of the
test suite; making 10,000 pods and their status takes a few minutes on a small machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client

from benchmarks.team_pods import Platform, Server, fill_cluster, pod_manifest, stop_scheduler
from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from hub_ext.service.kube import kube_client
from server_ext.contract import TEAM_LABEL

STOCK_NAMESPACE = "bench-stock"
WARM_UP_USER = "bench-warm-up"
SETTLE_SECONDS = 5.0
SETTLE_CHANGE = 0.005
SETTLE_TIMEOUT = 120.0
READ_EVERY = 0.5
SPAWN_TIMEOUT = 300.0
AIM_RATIO = 1.1


def rss(pid: int) -> int:
    """The process's resident memory in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def settled_rss(pid: int) -> int:
    """The resident memory once it has stopped changing (or after ``SETTLE_TIMEOUT``)."""
    window = int(SETTLE_SECONDS / READ_EVERY)
    readings = [rss(pid)]
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(READ_EVERY)
        readings.append(rss(pid))
        last = readings[-window - 1 :]
        if len(last) > window and max(last) - min(last) <= SETTLE_CHANGE * max(last):
            break
    return readings[-1]


def stock_copy(server: Server) -> dict[str, Any]:
    """The server's pod in the stock hub's namespace, without the team label."""
    manifest = pod_manifest(replace(server, namespace=STOCK_NAMESPACE))
    del manifest["metadata"]["labels"][TEAM_LABEL]
    return manifest


def hub_pid(hub: LocalHub) -> int:
    assert hub.child is not None
    return hub.child.popen.pid


async def pod_exists(kubeconfig: Path, namespace: str, name: str) -> bool:
    api = await kube_client(str(kubeconfig))
    async with api:
        listed = await client.CoreV1Api(api).list_namespaced_pod(
            namespace, field_selector=f"metadata.name={name}", _preload_content=False
        )
        return bool(json.loads(await listed.read())["items"])


def wait_for(condition: Any, what: str, timeout: float = SPAWN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not within {timeout:.0f} s")
        time.sleep(0.2)


def load_reflector(hub: LocalHub, kubeconfig: Path, namespace: str, body: dict[str, Any]) -> None:
    """Start a server, wait for its pod (the reflector has listed once), and stop it again."""
    status, answer = hub.call("POST", f"/users/{WARM_UP_USER}/server", body, timeout=120)
    if status not in (201, 202):
        raise SystemExit(f"the warm-up spawn failed: {status} {answer}")
    pod = f"jupyter-{WARM_UP_USER}"
    wait_for(
        lambda: asyncio.run(pod_exists(kubeconfig, namespace, pod)),
        f"the warm-up pod {namespace}/{pod}",
    )
    status, answer = hub.call("DELETE", f"/users/{WARM_UP_USER}/server", timeout=120)
    if status not in (202, 204):
        raise SystemExit(f"stopping the warm-up server failed: {status} {answer}")

    def stopped() -> bool:
        user = hub.api("GET", f"/users/{WARM_UP_USER}")
        return not user.get("servers")

    wait_for(stopped, "the warm-up server's stop")
    wait_for(
        lambda: not asyncio.run(pod_exists(kubeconfig, namespace, pod)),
        f"the warm-up pod {namespace}/{pod} gone",
    )


def mib(size: int) -> str:
    return f"{size / 2**20:8.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000, help="team pods (default 5000)")
    parser.add_argument("--teams", type=int, default=20, help="teams (default 20)")
    args = parser.parse_args(argv)
    if args.teams < 1 or args.pods < args.teams:
        parser.error("--teams must be at least 1 and --pods at least --teams")

    now = datetime.now(timezone.utc)
    platform = Platform.make("team", args.teams, args.pods, now)
    stock_pods = Platform(
        "stock",
        1,
        [replace(s, namespace=STOCK_NAMESPACE) for s in platform.servers],
    )
    config = platform.config()
    with tempfile.TemporaryDirectory(prefix="mlteams-bench-") as tmp:
        root = Path(tmp)
        teams_file = root / "teams.yaml"
        teams_file.write_text(yaml.safe_dump(config))
        cluster = LocalCluster(root / "cluster", with_kubelet=False, with_serving=False)
        hubs: list[LocalHub] = []
        try:
            start = time.perf_counter()
            cluster.start()
            stop_scheduler(cluster)
            assert cluster.control_plane is not None
            procs = cluster.control_plane.procs
            asyncio.run(fill_cluster(cluster.kubeconfig, [platform]))
            asyncio.run(fill_cluster(cluster.kubeconfig, [stock_pods], stock_copy))
            filled = time.perf_counter()
            common = {"MLTEAMS_HUB_HOME": "scratch"}
            first_team = platform.team_names[0]
            team = LocalHub(
                root / "team",
                cluster.kubeconfig,
                procs,
                extra_env={
                    **common,
                    "MLTEAMS_HUB_SPAWNER": "mlteams",
                    "MLTEAMS_TEAMS_FILE": str(teams_file),
                    "MLTEAMS_HUB_GROUPS": json.dumps({first_team: {"users": [WARM_UP_USER]}}),
                },
            )
            stock = LocalHub(
                root / "stock",
                cluster.kubeconfig,
                procs,
                namespace=STOCK_NAMESPACE,
                extra_env={
                    **common,
                    "MLTEAMS_HUB_GROUPS": json.dumps({first_team: {"users": [WARM_UP_USER]}}),
                },
            )
            for hub in (team, stock):
                hub.start(timeout=300)
                hubs.append(hub)
            idle = {
                name: settled_rss(hub_pid(hub)) for name, hub in (("team", team), ("stock", stock))
            }
            load_reflector(
                team,
                cluster.kubeconfig,
                config["teams"][first_team]["namespace"],
                {"team": first_team, "profile": "cpu"},
            )
            load_reflector(stock, cluster.kubeconfig, STOCK_NAMESPACE, {"team": first_team})
            loaded = {
                name: settled_rss(hub_pid(hub)) for name, hub in (("team", team), ("stock", stock))
            }
        finally:
            for hub in hubs:
                hub.stop()
            cluster.stop()

    print(
        f"setup: {2 * args.pods} pods made and running ({args.pods} in {args.teams} team "
        f"namespaces, a copy of each in {STOCK_NAMESPACE}) in {filled - start:.0f} s with the "
        "control plane"
    )
    print(f"hub resident memory (VmRSS), {args.pods} pods in each hub's pod reflector:")
    print(f"  {'':24}{'before listing':>16}{'pods listed':>14}{'increase':>14}")
    for name, label in (("team", "TeamKubeSpawner"), ("stock", "KubeSpawner (stock)")):
        print(
            f"  {label:<24}{mib(idle[name]):>16}{mib(loaded[name]):>14}"
            f"{mib(loaded[name] - idle[name]):>14}"
        )
    ratio = loaded["team"] / loaded["stock"]
    met = "yes" if ratio <= AIM_RATIO else "no"
    print(f"  ratio team/stock, pods listed    {ratio:.3f}   (aim <= {AIM_RATIO}: {met})")
    per_pod = {name: (loaded[name] - idle[name]) / args.pods for name in loaded}
    print(
        f"  increase / pods (the first spawn's own cost included): team "
        f"{per_pod['team'] / 1024:.1f} KiB, stock {per_pod['stock'] / 1024:.1f} KiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
