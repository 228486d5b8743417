"""Burst benchmark: spawn requests all at once, TeamKubeSpawner against stock KubeSpawner.

``--teams`` teams (default 10) of ``--users`` users each (default 20) send one spawn request
each, all at once (``asyncio.gather`` over the hub's REST API with the hub's test service token,
an admin of servers). Each team's GPU quota is ``--gpus`` (default 2, at most 1 per user); in
each team the first ``--cpu-users`` users (default 1) ask for the CPU profile, the others
alternately for ``gpu1-queued`` (1 GPU, waits in the team's queue when the team's GPUs are in
use) and ``gpu1`` (1 GPU, refused at once when they are). So the CPU servers and as many GPU
servers as the quota allows are admitted, the other ``gpu1-queued`` spawns queue, and the other
``gpu1`` spawns are refused. With the defaults: 30 admitted of 200.

For TeamKubeSpawner it prints:

* admitted, queued and refused: refused from the REST answers (4xx, with the messages) and from
  the hub's server states (a spawn answered 202 that ended without a server); queued from the
  hub's log (``spawn <user>/ queued``), checked against the hub's states (still pending) and the
  apiserver (no pod); admitted are the others, each of which must become ready;
* the time from the burst until every admitted server is ready (the hub's ``ready`` state, from
  ``GET /hub/api/users?state=active`` every 0.2 s, or the request's 201), and until the first pod
  of the burst exists (sampled from the apiserver): JupyterHub does its own work for every
  request (OAuth client, token, database) in its one event loop before the spawns go on, so the
  first pod waits for the hub to have taken most of the requests;
* why the spawns answered 202 that ended without a server were refused (the hub's log);
* the most GPUs in use per team at any moment, sampled from the apiserver every 0.2 s from the
  burst until every server is gone: the ``nvidia.com/gpu`` requests of the non-terminated pods of
  each team namespace (pods being deleted count until they are gone, as for a ResourceQuota),
  against the team's quota; over-admissions are the GPUs above the quota.

Then stock KubeSpawner on the same rig spawns as many servers as TeamKubeSpawner admitted (the
same pod count), arriving together, and the time until all are ready is printed with the ratio
team / stock (the aim: at most 1.0, with no over-admission). Every server is stopped (queued
spawns cancelled first, so that none is admitted as GPUs free up) and every pod gone before the
next part and at the end.

What is real and what is not:

* real: the local platform (``devenv.cluster.LocalCluster``: etcd, kube-apiserver with
  ResourceQuota admission, controller-manager, scheduler, the process kubelet that runs each pod
  as a local process), two JupyterHub processes with configurable-http-proxy
  (``devenv.hub.LocalHub``), TeamKubeSpawner with its queue and the team namespaces'
  ResourceQuotas (applied by the hub at its start), stock KubeSpawner, the hub's REST API;
* the rig's nodes are ``cpu-0`` and as many GPU nodes of 8 GPUs as the teams' quotas need
  (``devenv.kubelet --nodes``), so that every admitted server can be scheduled;
* the single-user server is a stand-in: Python's ``http.server`` (as in ``benchmarks.spawn``; the
  hub's readiness check accepts any HTTP answer), with a scratch home (no claims): a real
  Jupyter server costs seconds of CPU each, which on a small machine would time the machine;
* before the burst each hub starts and stops one CPU server (``--cold``: not), so that the
  burst meets running reflectors, as on a hub that has served before;
* stock KubeSpawner has no profiles: its servers ask for no GPU and all go to one namespace
  (``bench-stock``, with a ResourceQuota as the team namespaces have); the request bodies are of
  the same size. Both hubs' ``concurrent_spawn_limit`` is above the number of requests, so every
  request reaches the spawner.

Run: ``.venv/bin/python -m benchmarks.burst [--teams 10] [--users 20] [--gpus 2]
[--cpu-users 1] [--cold] [--logs DIR]`` (not part of the test suite; a few minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from benchmarks.spawn import SERVER_CMD
from benchmarks.team_pods import bounded
from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from devenv.kubeapi import ensure_namespace
from hub_ext.service.kube import kube_client

GPU = "nvidia.com/gpu"
STOCK_NAMESPACE = "bench-stock"
SAMPLE_SECONDS = 0.2
PAGINATION_TYPE = "application/jupyterhub-pagination+json"
GPUS_PER_NODE = 8
QUEUE_WAIT_SECONDS = 900
SETTLE_TIMEOUT = 600.0
STOP_CONCURRENCY = 16
TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
WARM_UP_USER = "bench-warm-up"
QUEUED_LINE = re.compile(r"spawn (\S+)/ queued: ")
REFUSED_LINE = re.compile(r"Not starting (\S+)'s server : (\d+) SpawnException\(reason=([\w-]+)\)")


# -- the teams and the requests ---------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    teams: int
    users: int
    gpus: int
    cpu_users: int

    def team(self, t: int) -> str:
        return f"bench-{t:02d}"

    def user(self, t: int, u: int) -> str:
        return f"bench-{t:02d}-u{u:02d}"

    def profile(self, u: int) -> str:
        if u < self.cpu_users:
            return "cpu"
        return "gpu1-queued" if (u - self.cpu_users) % 2 == 0 else "gpu1"

    def requests(self) -> list[tuple[str, str, str]]:
        """``(user, team, profile)`` of every request, users of different teams interleaved."""
        return [
            (self.user(t, u), self.team(t), self.profile(u))
            for u in range(self.users)
            for t in range(self.teams)
        ]

    def config(self) -> dict[str, Any]:
        """The ``MLTeams`` section: each team's hub group and namespace are its name."""
        return {
            "teams": {
                self.team(t): {
                    "groups": [self.team(t)],
                    "namespace": self.team(t),
                    "quota": {"gpus": self.gpus, "gpus_per_user": min(1, self.gpus)},
                    "profiles": ["cpu", "gpu1", "gpu1-queued"],
                }
                for t in range(self.teams)
            },
            "profiles": {
                "cpu": {"display_name": "CPU", "image": "mlteams/notebook:dev"},
                "gpu1": {
                    "display_name": "1 GPU",
                    "image": "mlteams/pytorch:dev",
                    "gpus": 1,
                    "tolerations": [TOLERATION],
                },
                "gpu1-queued": {
                    "display_name": "1 GPU (waits for a free GPU)",
                    "image": "mlteams/pytorch:dev",
                    "gpus": 1,
                    "tolerations": [TOLERATION],
                    "queue": {"enabled": True, "max_wait_seconds": QUEUE_WAIT_SECONDS},
                },
            },
        }

    def groups(self, prefix: str = "") -> dict[str, dict[str, list[str]]]:
        """Each team's hub group, the first with the warm-up user too."""
        return {
            self.team(t): {
                "users": [prefix + self.user(t, u) for u in range(self.users)]
                + ([prefix + WARM_UP_USER] if t == 0 else [])
            }
            for t in range(self.teams)
        }

    def nodes(self) -> list[dict[str, Any]]:
        """``cpu-0`` and enough GPU nodes for every team's whole quota."""
        gpu_nodes = max(1, math.ceil(self.teams * self.gpus / GPUS_PER_NODE))
        return [
            {"name": "cpu-0", "cpu": "64", "memory": "256Gi", "pods": 250},
            *(
                {"name": f"gpu-{i}", "cpu": "64", "memory": "512Gi", "gpus": GPUS_PER_NODE}
                for i in range(gpu_nodes)
            ),
        ]


# -- the hub's REST API -------------------------------------------------------------------------


class Hub:
    """The hub's REST API, many requests at a time."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.http = AsyncHTTPClient()

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response: HTTPResponse = await self.http.fetch(
            f"{self.hub.url}/hub/api{path}",
            method=method,
            body=None if body is None else json.dumps(body),
            headers={
                "Authorization": f"token {self.hub.api_token}",
                "Accept": f"{PAGINATION_TYPE}, application/json",
                **({"Content-Type": "application/json"} if body is not None else {}),
            },
            allow_nonstandard_methods=True,
            raise_error=False,
            request_timeout=300,
        )
        if response.code == 599:
            raise SystemExit(f"{method} {path}: {response.error}")
        raw = response.body or b""
        try:
            return response.code, json.loads(raw) if raw else None
        except ValueError:
            return response.code, raw.decode(errors="replace")

    async def active(self) -> dict[str, dict[str, Any]]:
        """Each active user's default server model (ready or pending)."""
        found: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            status, page = await self.call("GET", f"/users?state=active&offset={offset}&limit=200")
            if status != 200:
                raise SystemExit(f"listing the hub's active users: {status} {page}")
            for user in page["items"]:
                server = user.get("servers", {}).get("")
                if server:
                    found[user["name"]] = server
            following = page["_pagination"].get("next")
            if not following:
                return found
            offset = following["offset"]


# -- GPUs in use, from the apiserver --------------------------------------------------------------


def pod_gpus(pod: dict[str, Any]) -> int:
    total = 0
    for container in pod["spec"].get("containers", []):
        resources = container.get("resources", {})
        amount = resources.get("requests", {}).get(GPU) or resources.get("limits", {}).get(GPU)
        total += int(amount or 0)
    return total


@dataclass
class GpuSampler:
    """The most GPUs held at once per namespace, and the pods there, sampled from the apiserver."""

    api: client.ApiClient
    most: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seen: dict[str, float] = field(default_factory=dict)
    samples: int = 0

    async def sample(self) -> int:
        """One sample; returns the number of server pods that exist."""
        response = await client.CoreV1Api(self.api).list_pod_for_all_namespaces(
            label_selector="component=singleuser-server", _preload_content=False
        )
        items = json.loads(await response.read())["items"]
        held: dict[str, int] = defaultdict(int)
        for pod in items:
            namespace = pod["metadata"]["namespace"]
            self.seen.setdefault(f"{namespace}/{pod['metadata']['name']}", time.perf_counter())
            if pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                held[namespace] += pod_gpus(pod)
        for namespace, gpus in held.items():
            self.most[namespace] = max(self.most[namespace], gpus)
        self.samples += 1
        return len(items)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample()
            try:
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
            except TimeoutError:
                pass


# -- one burst ------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)
    queued: set[str] = field(default_factory=set)
    failed_later: set[str] = field(default_factory=set)
    all_ready: float = 0.0
    answered: float = 0.0
    first_pod: float = 0.0
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def refused_at_once(self) -> dict[str, tuple[int, Any]]:
        return {u: a for u, a in self.answers.items() if a[0] >= 400}

    @property
    def admitted(self) -> set[str]:
        return set(self.ready_at)

    def refusals(self) -> dict[str, int]:
        """How many refusals of each kind: status and the message's first words."""
        kinds: dict[str, int] = defaultdict(int)
        for status, body in self.refused_at_once.values():
            message = body.get("message", str(body)) if isinstance(body, dict) else str(body)
            kinds[f"{status} {message[:70]}"] += 1
        for user in self.failed_later:
            kinds[f"202, then refused: {self.reasons.get(user, 'no reason in the hub log')}"] += 1
        return dict(kinds)


def read_log(log: Path, offset: int) -> str:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


async def burst(
    name: str,
    hub: Hub,
    sampler: GpuSampler,
    requests: list[tuple[str, dict[str, Any]]],
    log: Path,
) -> Result:
    """Send every request at once; wait until each accepted spawn is ready, queued or failed."""
    result = Result(name, len(requests))
    log_offset = await asyncio.to_thread(lambda: log.stat().st_size)
    start = time.perf_counter()

    async def spawn(user: str, body: dict[str, Any]) -> None:
        answer = result.answers[user] = await hub.call("POST", f"/users/{user}/server", body)
        if answer[0] == 201:  # the hub answers 201 once the server is ready
            result.ready_at.setdefault(user, time.perf_counter() - start)

    sending = asyncio.gather(*(spawn(user, body) for user, body in requests))
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        # whether every request was answered, taken before the hub's states are
        answered = sending.done()
        active = await hub.active()
        now = time.perf_counter() - start
        for user, server in active.items():
            if server.get("ready") and user not in result.ready_at:
                result.ready_at[user] = now
        if answered:
            if not result.answered:
                sending.result()
                result.answered = now
            text = await asyncio.to_thread(read_log, log, log_offset)
            result.queued = set(QUEUED_LINE.findall(text)) - set(result.ready_at)
            accepted = {u for u, (status, _) in result.answers.items() if status < 400}
            starting = accepted - set(result.ready_at) - result.queued
            # a spawn answered 202 may still end in a refusal (a queued spawn's, or one decided
            # after the hub's answer): it is no longer active
            result.failed_later = {u for u in starting if u not in active}
            result.reasons = {
                user: f"{status} {reason}" for user, status, reason in REFUSED_LINE.findall(text)
            }
            if not starting - result.failed_later:
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: servers not ready within {SETTLE_TIMEOUT:.0f} s")
        await asyncio.sleep(SAMPLE_SECONDS)
    result.all_ready = max(result.ready_at.values(), default=0.0)
    # the pods made by this burst, as the sampler first saw them
    created = [seen - start for seen in sampler.seen.values() if seen >= start]
    result.first_pod = min(created, default=0.0)
    stuck = [u for u in result.queued if u not in active or active[u].get("ready")]
    if stuck:
        raise SystemExit(f"{name}: spawns logged as queued that are not pending: {stuck[:5]}")
    return result


async def stop_one(hub: Hub, user: str) -> None:
    """Stop the user's server or cancel its pending spawn.

    JupyterHub answers 500 ("pending spawn") when a cancelled spawn has not ended within the
    second it waits for it, as happens when many are cancelled at once on a busy hub: the stop
    is asked again once the spawn has ended.
    """
    for _ in range(5):
        status, body = await hub.call("DELETE", f"/users/{user}/server")
        if status in (202, 204):
            return
        if status != 500:
            break
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while (await hub.active()).get(user, {}).get("pending") == "spawn":
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(SAMPLE_SECONDS)
    raise SystemExit(f"stopping {user}: {status} {body}")


async def stop_all(hub: Hub, sampler: GpuSampler, result: Result) -> None:
    """Cancel the queued spawns, then stop the servers; wait until no server or pod is left."""
    for users in (sorted(result.queued), sorted(result.admitted)):
        await bounded((partial(stop_one, hub, user) for user in users), STOP_CONCURRENCY)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while set(users) & set(await hub.active()):
            if time.monotonic() > deadline:
                raise SystemExit(f"{result.name}: servers still active after {SETTLE_TIMEOUT} s")
            await asyncio.sleep(SAMPLE_SECONDS)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while await sampler.sample():
        if time.monotonic() > deadline:
            raise SystemExit(f"{result.name}: pods still there after {SETTLE_TIMEOUT} s")
        await asyncio.sleep(SAMPLE_SECONDS)


async def warm_up(
    hub: Hub, sampler: GpuSampler, user: str, body: dict[str, Any], log: Path
) -> None:
    """One server started and stopped, so that the burst meets a hub whose reflectors run."""
    result = await burst("warm-up", hub, sampler, [(user, body)], log)
    if result.admitted != {user}:
        raise SystemExit(f"the warm-up spawn of {user} failed: {result.answers[user]}")
    await stop_all(hub, sampler, result)


async def run_bursts(
    shape: Burst, cluster: LocalCluster, team: LocalHub, stock: LocalHub, cold: bool
) -> tuple[Result, Result, GpuSampler]:
    api = await kube_client(str(cluster.kubeconfig))
    async with api:
        sampler = GpuSampler(api)
        stop = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(stop))
        try:
            team_hub, stock_hub = Hub(team), Hub(stock)
            team_requests = [
                (user, {"team": name, "profile": profile})
                for user, name, profile in shape.requests()
            ]
            assert team.child is not None and stock.child is not None
            if not cold:
                await warm_up(
                    team_hub,
                    sampler,
                    WARM_UP_USER,
                    {"team": shape.team(0), "profile": "cpu"},
                    team.child.log_path,
                )
                await warm_up(
                    stock_hub,
                    sampler,
                    f"stock-{WARM_UP_USER}",
                    {"team": shape.team(0), "flavor": "cpu"},
                    stock.child.log_path,
                )
            teamed = await burst(
                "TeamKubeSpawner", team_hub, sampler, team_requests, team.child.log_path
            )
            await stop_all(team_hub, sampler, teamed)
            # the same pod count, arriving together; a body of the same size
            stock_requests = [
                (f"stock-{user}", {"team": name, "flavor": "cpu"})
                for user, name, _ in shape.requests()
                if user in teamed.admitted
            ]
            stocked = await burst(
                "KubeSpawner (stock)", stock_hub, sampler, stock_requests, stock.child.log_path
            )
            await stop_all(stock_hub, sampler, stocked)
        finally:
            stop.set()
            await sampling
    return teamed, stocked, sampler


# -- the rig ------------------------------------------------------------------------------------


def start_hubs(
    shape: Burst, cluster: LocalCluster, root: Path, hubs: list[LocalHub]
) -> tuple[LocalHub, LocalHub]:
    assert cluster.control_plane is not None
    teams_file = root / "teams.yaml"
    teams_file.write_text(yaml.safe_dump(shape.config()))
    ensure_namespace(cluster.api, STOCK_NAMESPACE)
    cluster.api.request(
        "POST",
        f"/api/v1/namespaces/{STOCK_NAMESPACE}/resourcequotas",
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "mlteams-quota"},
            "spec": {"hard": {f"requests.{GPU}": str(shape.teams * shape.gpus)}},
        },
    )
    common = {
        "MLTEAMS_HUB_SERVER_CMD": json.dumps(SERVER_CMD),
        "MLTEAMS_HUB_HOME": "scratch",
        "MLTEAMS_HUB_CONCURRENT_SPAWN_LIMIT": str(shape.teams * shape.users + 10),
    }
    team = LocalHub(
        root / "team",
        cluster.kubeconfig,
        cluster.control_plane.procs,
        extra_env={
            **common,
            "MLTEAMS_HUB_SPAWNER": "mlteams",
            "MLTEAMS_TEAMS_FILE": str(teams_file),
            "MLTEAMS_HUB_GROUPS": json.dumps(shape.groups()),
        },
    )
    stock = LocalHub(
        root / "stock",
        cluster.kubeconfig,
        cluster.control_plane.procs,
        namespace=STOCK_NAMESPACE,
        extra_env={**common, "MLTEAMS_HUB_GROUPS": json.dumps(shape.groups("stock-"))},
    )
    for hub in (team, stock):
        hub.start(timeout=300)
        hubs.append(hub)
    return team, stock


def report(shape: Burst, teamed: Result, stocked: Result, sampler: GpuSampler) -> None:
    print(
        f"burst: {teamed.requests} spawn requests at once, {shape.teams} teams x {shape.users} "
        f"users; quota {shape.gpus} GPUs per team (1 per user); apiserver sampled "
        f"{sampler.samples} times"
    )
    print(
        f"  {'':22}{'requests':>9}{'admitted':>9}{'queued':>8}{'refused':>8}{'first pod':>11}"
        f"{'all ready':>11}"
    )
    for result in (teamed, stocked):
        refused = len(result.refused_at_once) + len(result.failed_later)
        print(
            f"  {result.name:<22}{result.requests:>9}{len(result.admitted):>9}"
            f"{len(result.queued):>8}{refused:>8}{result.first_pod:>9.2f} s"
            f"{result.all_ready:>9.2f} s"
        )
    if stocked.all_ready:
        ratio = teamed.all_ready / stocked.all_ready
        print(f"  ratio team/stock (time until all ready)    {ratio:.3f}")
    print("  refusals (TeamKubeSpawner):")
    for kind, count in sorted(teamed.refusals().items()):
        print(f"    {count:4d}  {kind}")
    print("  GPUs in use per team, most at any moment (apiserver) / quota:")
    over = 0
    cells = []
    for t in range(shape.teams):
        most = sampler.most.get(shape.team(t), 0)
        over += max(0, most - shape.gpus)
        cells.append(f"{shape.team(t)} {most}/{shape.gpus}")
    for i in range(0, len(cells), 5):
        print("    " + "   ".join(cells[i : i + 5]))
    print(f"  over-admissions (GPUs above a team's quota): {over}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=10, help="teams (default 10)")
    parser.add_argument("--users", type=int, default=20, help="users per team (default 20)")
    parser.add_argument("--gpus", type=int, default=2, help="GPU quota per team (default 2)")
    parser.add_argument(
        "--cpu-users",
        type=int,
        default=1,
        help="users per team who ask for the CPU profile (default 1)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the burst meets hubs that have not spawned yet (whose first spawn "
        "starts the pod and event reflectors); by default each hub starts and stops one server "
        "first",
    )
    parser.add_argument(
        "--logs", type=Path, help="copy the cluster's and the hubs' logs into this folder"
    )
    args = parser.parse_args(argv)
    if args.teams < 1 or args.users < 1 or args.gpus < 0 or not 0 <= args.cpu_users <= args.users:
        parser.error("--teams and --users must be at least 1, --cpu-users at most --users")
    shape = Burst(args.teams, args.users, args.gpus, args.cpu_users)
    AsyncHTTPClient.configure(None, max_clients=args.teams * args.users + 10)

    with tempfile.TemporaryDirectory(prefix="mlteams-bench-") as tmp:
        root = Path(tmp)
        nodes = root / "nodes.json"
        nodes.write_text(json.dumps(shape.nodes()))
        cluster = LocalCluster(root / "cluster", with_serving=False, nodes_file=nodes)
        hubs: list[LocalHub] = []
        try:
            cluster.start()
            team, stock = start_hubs(shape, cluster, root, hubs)
            teamed, stocked, sampler = asyncio.run(
                run_bursts(shape, cluster, team, stock, args.cold)
            )
        except BaseException:
            for hub in hubs:
                if hub.child is not None:
                    print(f"--- {hub.child.log_path}:\n{hub.child.log_tail(150)}", file=sys.stderr)
            raise
        finally:
            for hub in hubs:
                hub.stop()
            cluster.stop()
            if args.logs:
                shutil.copytree(cluster.state_dir / "logs", args.logs, dirs_exist_ok=True)
    report(shape, teamed, stocked, sampler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
