"""Spawn-path benchmark: TeamKubeSpawner against stock KubeSpawner, measured in one run.

1. On the local platform (real apiserver, process kubelet), two hubs side by side, one with
   stock KubeSpawner and one with TeamKubeSpawner: the time from the REST spawn request to the
   pod's creation (its ADDED watch event), for N spawns each, interleaved so both see the same
   load. Both hubs get the same request bodies, the same group memberships and the same
   ResourceQuota, so only the spawner differs. Prints the medians and their ratio.
2. The admission decision alone (pure policy on a ledger fed by the reflector's store), with 10
   and with 5,000 pods known: median time per decision and the ratio.

Run: ``.venv/bin/python -m benchmarks.spawn [--spawns 100]`` (not part of the test suite; about
1.5 s per pair of spawns). Medians of fewer than 100 spawns vary by several percent from run to
run: most of the time is JupyterHub's own work (tokens, database commits) before the spawner
starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client, watch

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.kubeapi import ensure_namespace
from hub_ext.policy import Ledger, MirroredPods, SpawnRequest, decide, load_config
from tests.kube_helpers import api_client

TEAMS = {
    "teams": {
        "bench": {
            "groups": ["bench"],
            "namespace": "bench-team",
            "quota": {"gpus": 8, "gpus_per_user": 2},
            "profiles": ["cpu", "gpu1"],
        }
    },
    "profiles": {
        "cpu": {"display_name": "CPU", "image": "mlteams/notebook:dev"},
        "gpu1": {
            "display_name": "1 GPU",
            "image": "mlteams/pytorch:dev",
            "gpus": 1,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
    },
}


SERVER_CMD = [sys.executable, "-m", "http.server", "8888", "--bind", "0.0.0.0"]


def fake_pod(i: int, namespace: str = "bench-team") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"jupyter-u{i}",
            "namespace": namespace,
            "labels": {"mlteams.io/team": "bench", "mlteams.io/profile": "gpu1"},
            "annotations": {"mlteams.io/user": f"u{i}", "mlteams.io/server": f"u{i}/"},
        },
        "spec": {
            "containers": [{"name": "notebook", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
        },
        "status": {"phase": "Running"},
    }


def decision_times(sizes: tuple[int, ...], rounds: int = 31, repeats: int = 2000) -> list[float]:
    """Median seconds per admission decision with each number of pods in the reflector's store.

    The sizes are timed in turn within each round (garbage collection paused, as ``timeit``
    does), so that a change in the machine's speed during the run affects all of them alike.
    """
    config = load_config(TEAMS)
    request = SpawnRequest(user="newcomer", team="bench", profile="gpu1")
    ledgers = []
    for pods in sizes:
        ledger = Ledger(namespace_teams=config.namespace_teams)
        MirroredPods(ledger, {f"bench-team/jupyter-u{i}": fake_pod(i) for i in range(pods)})
        ledgers.append(ledger)
    samples: list[list[float]] = [[] for _ in sizes]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for ledger, times in zip(ledgers, samples, strict=True):
                start = time.perf_counter()
                for _ in range(repeats):
                    decide(config, ledger, request)
                times.append((time.perf_counter() - start) / repeats)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [statistics.median(times) for times in samples]


async def _watch_pods(api: client.ApiClient, seen: dict[str, float], stop: asyncio.Event) -> None:
    core = client.CoreV1Api(api)
    w = watch.Watch()
    async with w.stream(
        core.list_pod_for_all_namespaces,
        label_selector="component=singleuser-server",
        timeout_seconds=3600,
    ) as stream:
        async for event in stream:
            if event["type"] == "ADDED":
                pod = event["object"]
                seen.setdefault(
                    f"{pod.metadata.namespace}/{pod.metadata.name}", time.perf_counter()
                )
            if stop.is_set():
                return


async def spawn_times(
    cluster: LocalCluster, stock: LocalHub, team: LocalHub, n: int
) -> tuple[list[float], list[float]]:
    seen: dict[str, float] = {}
    stop = asyncio.Event()
    api = await api_client(cluster.kubeconfig)
    async with api:
        watcher = asyncio.create_task(_watch_pods(api, seen, stop))
        await asyncio.sleep(1)
        results: dict[str, list[float]] = {"stock": [], "team": []}
        for i in range(n):
            for kind, hub, namespace, body in (
                # a body of the same size for both (JupyterHub stores user_options either way);
                # stock KubeSpawner refuses a "profile" it has no profile_list for
                ("stock", stock, "bench-stock", {"team": "bench", "flavor": "cpu"}),
                ("team", team, "bench-team", {"team": "bench", "profile": "cpu"}),
            ):
                user = f"{kind}-{i:03d}"
                key = f"{namespace}/jupyter-{user}"
                await asyncio.to_thread(hub.call, "POST", f"/users/{user}")
                start = time.perf_counter()
                status, answer = await asyncio.to_thread(
                    hub.call, "POST", f"/users/{user}/server", body
                )
                if status >= 400:
                    raise SystemExit(f"{kind} spawn of {user} failed: {status} {answer}")
                deadline = time.monotonic() + 60
                while key not in seen:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"no pod {key} within 60 s")
                    await asyncio.sleep(0.002)
                results[kind].append(seen[key] - start)
                # stop it again, so every spawn meets the same number of running servers
                await asyncio.to_thread(hub.call, "DELETE", f"/users/{user}/server")
        stop.set()
        watcher.cancel()
    return results["stock"], results["team"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=30, help="spawns per spawner (default 30)")
    args = parser.parse_args(argv)

    small, large = decision_times((10, 5000))
    with tempfile.TemporaryDirectory(prefix="mlteams-bench-") as tmp:
        root = Path(tmp)
        teams_file = root / "teams.yaml"
        teams_file.write_text(yaml.safe_dump(TEAMS))
        cluster = LocalCluster(root / "cluster")
        hubs: list[LocalHub] = []
        try:
            cluster.start()
            assert cluster.control_plane is not None
            ensure_namespace(cluster.api, "bench-stock")
            # the same ResourceQuota as the team namespace gets, so both pay the same admission
            cluster.api.request(
                "POST",
                "/api/v1/namespaces/bench-stock/resourcequotas",
                {
                    "apiVersion": "v1",
                    "kind": "ResourceQuota",
                    "metadata": {"name": "mlteams-quota"},
                    "spec": {"hard": {"requests.nvidia.com/gpu": "8"}},
                },
            )
            # both hubs' users are in a group of the same name: JupyterHub looks up a user's
            # groups on every spawn, and the team hub's users need one to have a team
            n = args.spawns
            groups = {
                kind: json.dumps({"bench": {"users": [f"{kind}-{i:03d}" for i in range(n)]}})
                for kind in ("stock", "team")
            }
            # the servers are Python's http.server, which answers at once: the benchmark measures
            # up to the pod's creation, and servers that start in a tenth of a second keep the
            # machine quiet between spawns; both hubs give each server a scratch home (homes on
            # claims cost the same for both, and the kubelet's claim provisioning is not measured)
            server = {
                "MLTEAMS_HUB_SERVER_CMD": json.dumps(SERVER_CMD),
                "MLTEAMS_HUB_HOME": "scratch",
            }
            stock = LocalHub(
                root / "stock",
                cluster.kubeconfig,
                cluster.control_plane.procs,
                namespace="bench-stock",
                extra_env={**server, "MLTEAMS_HUB_GROUPS": groups["stock"]},
            )
            team = LocalHub(
                root / "team",
                cluster.kubeconfig,
                cluster.control_plane.procs,
                extra_env={
                    **server,
                    "MLTEAMS_HUB_SPAWNER": "mlteams",
                    "MLTEAMS_TEAMS_FILE": str(teams_file),
                    "MLTEAMS_HUB_GROUPS": groups["team"],
                },
            )
            for hub in (stock, team):
                hub.start()
                hubs.append(hub)
            stock_times, team_times = asyncio.run(spawn_times(cluster, stock, team, args.spawns))
        finally:
            for hub in hubs:
                hub.stop()
            cluster.stop()

    stock_median, team_median = statistics.median(stock_times), statistics.median(team_times)
    print(f"spawn request -> pod created, median of {args.spawns} spawns each:")
    print(f"  KubeSpawner (stock)   {stock_median * 1000:8.1f} ms")
    print(f"  TeamKubeSpawner       {team_median * 1000:8.1f} ms")
    print(f"  ratio team/stock      {team_median / stock_median:8.3f}")
    print("admission decision, median per decision:")
    print(f"  10 pods in reflector    {small * 1e6:8.2f} us")
    print(f"  5,000 pods in reflector {large * 1e6:8.2f} us")
    print(f"  ratio 5000/10           {large / small:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
