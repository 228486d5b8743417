"""Burst benchmark: the same spawn requests all at once, TeamKubeSpawner against stock KubeSpawner.

``--teams`` teams (default 10) of ``--users`` users each (default 20) send one spawn request
each, all at once (``asyncio.gather`` over the hub's REST API with the hub's test service token,
an admin of servers). In each team the first ``--cpu-users`` users (default 1) ask for a CPU
server, the others for a server with 1 GPU. The same burst (the same users, the same choices, at
the same moment) goes once to a hub with TeamKubeSpawner and once to a hub with stock
KubeSpawner, each choice mapped to the spawner's own means:

* TeamKubeSpawner: each team's GPU quota is ``--gpus`` (default 2, at most 1 per user); the GPU
  users ask alternately for ``gpu1-queued`` (1 GPU, waits in the team's queue when the team's
  GPUs are in use) and ``gpu1`` (1 GPU, refused at once when they are). So the CPU servers and as
  many GPU servers as each team's quota allows are admitted, the other ``gpu1-queued`` spawns
  queue, and the other ``gpu1`` spawns are refused. With the defaults: 30 admitted of 200; of the
  other 170, how many queue and how many are refused depends on which of a team's 10
  ``gpu1-queued`` and 9 ``gpu1`` requests got its 2 GPUs.
* stock KubeSpawner: a ``profile_list`` with a CPU profile and a 1-GPU profile
  (``kubespawner_override`` with ``extra_resource_guarantees`` and ``extra_resource_limits``
  ``nvidia.com/gpu: 1`` and the GPU toleration); both 1-GPU choices are its 1-GPU profile (it has
  no queue). Its servers go to one namespace (``bench-stock``) whose ResourceQuota allows the
  sum of the teams' GPU quotas and as many pods as TeamKubeSpawner can admit (defaults: 20 GPUs,
  30 pods), so both runs have the same rig and the same pod count. The requests over the quota
  are refused by the apiserver's ResourceQuota admission when KubeSpawner creates the pod: the
  spawn fails with Kubernetes' 403 and the user sees it as the spawn's error. Which GPU requests
  get a GPU is the order in which their pods reach the apiserver, whatever the team.

For each it prints:

* admitted, queued and refused: refused from the REST answers (4xx and 5xx, with the messages)
  and from the hub's server states (a spawn answered 202 that ended without a server); queued
  from the hub's log (``spawn <user>/ queued``), checked against the hub's states (still pending)
  and the apiserver (no pod); admitted are the others, each of which must become ready;
* the time from the burst until every admitted server is ready (the hub's ``ready`` state, from
  ``GET /hub/api/users?state=active`` every 0.2 s, or the request's 201), and until the first pod
  of the burst exists (sampled from the apiserver): JupyterHub does its own work for every
  request (OAuth client, token, database) in its one event loop before the spawns go on, so the
  first pod waits for the hub to have taken most of the requests; and the ratio of the two times
  until all are ready, team / stock (the aim: at most 1.0);
* why the refused spawns were refused (the hub's log), and what one refused user sees: the first
  100 characters of the message of the spawn's progress events (what the spawn page shows), or
  of the REST answer where the spawn never started;
* the most GPUs in use at any moment, sampled from the apiserver every 0.2 s from the burst until
  every server is gone: the ``nvidia.com/gpu`` requests of the non-terminated pods of each
  namespace (pods being deleted count until they are gone, as for a ResourceQuota), per team
  against the team's quota for TeamKubeSpawner, for the one namespace against its 20-GPU quota for
  stock KubeSpawner (it has no per-team accounting; how its GPUs fell among the teams' users is
  printed from the user names); over-admissions are the GPUs above a quota.

Every server is stopped (queued spawns cancelled first, so that none is admitted as GPUs free up)
and every pod gone before the next part and at the end; before each burst the benchmark waits
until Kubernetes' own ResourceQuotas count nothing in use (the quota controller has recounted the
pods deleted before).

What is real and what is not:

* real: the local platform (``devenv.cluster.LocalCluster``: etcd, kube-apiserver with
  ResourceQuota admission, controller-manager, scheduler, the process kubelet that runs each pod
  as a local process), two JupyterHub processes with configurable-http-proxy
  (``devenv.hub.LocalHub``), TeamKubeSpawner with its queue and the team namespaces'
  ResourceQuotas (applied by the hub at its start), stock KubeSpawner with its ``profile_list``
  and the stock namespace's ResourceQuota, the hub's REST API;
* the rig's nodes are ``cpu-0`` and as many GPU nodes of 8 GPUs as the teams' quotas need
  (``devenv.kubelet --nodes``), so that every admitted server can be scheduled;
* the single-user server is a stand-in: Python's ``http.server`` (as in ``benchmarks.spawn``; the
  hub's readiness check accepts any HTTP answer), with a scratch home (no claims): a real
  Jupyter server costs seconds of CPU each, which on a small machine would time the machine;
* before the burst each hub starts and stops one CPU server (``--cold``: not), so that the
  burst meets running reflectors, as on a hub that has served before;
* what differs: TeamKubeSpawner's servers go to ten team namespaces, stock KubeSpawner's to one;
  TeamKubeSpawner decides before any pod is made (queued and refused spawns make none), stock
  KubeSpawner makes a pod request for every spawn and the apiserver refuses those over the quota.
  Both hubs' ``concurrent_spawn_limit`` is above the number of requests, so every request reaches
  the spawner, and both hubs' ``consecutive_failure_limit`` is 0 (none): JupyterHub counts stock
  KubeSpawner's refused pod creations as spawn errors (not as refusals), and with the z2jh
  chart's limit of 5 the stock hub would exit after 5 of them in a row.

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
# stock KubeSpawner's failed pod creation: the hub logs the Kubernetes error it relays to the user
ERROR_LINE = re.compile(r"Unhandled error starting (\S+)'s server: \((\d+)\)\s+Reason: ([\w ]+)")
# each choice of the burst as stock KubeSpawner's profile: it has no queue
STOCK_PROFILES = {"cpu": "cpu", "gpu1": "gpu1", "gpu1-queued": "gpu1"}
MESSAGE_CHARS = 100


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

    @property
    def admissible(self) -> int:
        """Servers TeamKubeSpawner admits at once: in each team the CPU users and as many GPU
        users as the team's quota has GPUs (1 per user)."""
        gpu_users = self.users - self.cpu_users
        return self.teams * (self.cpu_users + min(self.gpus, gpu_users))

    def stock_quota(self) -> dict[str, str]:
        """The stock namespace's ResourceQuota: the teams' GPU quotas together, and as many pods
        as TeamKubeSpawner admits."""
        return {f"requests.{GPU}": str(self.teams * self.gpus), "pods": str(self.admissible)}

    def stock_profile_list(self) -> list[dict[str, Any]]:
        """Stock KubeSpawner's ``profile_list``: the CPU profile and the 1-GPU profile."""
        return [
            {
                "display_name": "CPU",
                "slug": "cpu",
                "default": True,
                "kubespawner_override": {"image": "mlteams/notebook:dev"},
            },
            {
                "display_name": "1 GPU",
                "slug": "gpu1",
                "kubespawner_override": {
                    "image": "mlteams/pytorch:dev",
                    "extra_resource_guarantees": {GPU: "1"},
                    "extra_resource_limits": {GPU: "1"},
                    "tolerations": [TOLERATION],
                },
            },
        ]

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
    message: str = ""

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
            kinds[f"{status} {answer_message(body)[:70]}"] += 1
        for user in self.failed_later:
            kinds[f"202, then refused: {self.reasons.get(user, 'no reason in the hub log')}"] += 1
        return dict(kinds)


def answer_message(body: Any) -> str:
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)


async def refusal_message(hub: Hub, result: Result) -> str:
    """What a refused user sees: the failed event of the spawn's progress (what the spawn page
    shows), or the REST answer's message where the spawn left no progress."""
    for user in [*sorted(result.failed_later), *sorted(result.refused_at_once)][:3]:
        status, body = await hub.call("GET", f"/users/{user}/server/progress")
        if status != 200 or not isinstance(body, str):
            continue
        for line in body.splitlines():
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                if event.get("failed"):
                    return str(event.get("message", ""))
    for _, body in result.refused_at_once.values():
        return answer_message(body)
    return ""


def kubernetes_message(message: str) -> str:
    """The apiserver's own message in a relayed Kubernetes error (``HTTP response body: {...}``)."""
    found = re.search(r"HTTP response body: (\{.*\})", message)
    if not found:
        return ""
    try:
        return str(json.loads(found.group(1)).get("message", ""))
    except ValueError:
        return ""


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
                user: f"{status} {reason.strip()}"
                for pattern in (REFUSED_LINE, ERROR_LINE)
                for user, status, reason in pattern.findall(text)
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
    result.message = await refusal_message(hub, result)
    return result


async def quotas_recounted(api: client.ApiClient, namespaces: list[str]) -> None:
    """Wait until Kubernetes' own ResourceQuota in each namespace counts nothing in use: the quota
    controller recounts the pods deleted before (until then the apiserver would refuse pods that
    the quota allows)."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    for namespace in namespaces:
        while True:
            response = await core.list_namespaced_resource_quota(namespace, _preload_content=False)
            quotas = json.loads(await response.read())["items"]
            if all(
                set((q.get("status") or {}).get("used") or {}) >= set(q["spec"].get("hard", {}))
                and all(v == "0" for v in ((q.get("status") or {}).get("used") or {}).values())
                for q in quotas
            ):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the ResourceQuota of {namespace} still counts pods: {quotas}")
            await asyncio.sleep(SAMPLE_SECONDS)


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
            # the same users (in the stock hub's names), the same choices, in the same order
            stock_requests = [
                (f"stock-{user}", {"team": name, "profile": STOCK_PROFILES[profile]})
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
                    {"team": shape.team(0), "profile": "cpu"},
                    stock.child.log_path,
                )
            await quotas_recounted(api, [shape.team(t) for t in range(shape.teams)])
            teamed = await burst(
                "TeamKubeSpawner", team_hub, sampler, team_requests, team.child.log_path
            )
            await stop_all(team_hub, sampler, teamed)
            await quotas_recounted(api, [STOCK_NAMESPACE])
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
            "spec": {"hard": shape.stock_quota()},
        },
    )
    common = {
        "MLTEAMS_HUB_SERVER_CMD": json.dumps(SERVER_CMD),
        "MLTEAMS_HUB_HOME": "scratch",
        "MLTEAMS_HUB_CONCURRENT_SPAWN_LIMIT": str(shape.teams * shape.users + 10),
        "MLTEAMS_HUB_CONSECUTIVE_FAILURE_LIMIT": "0",
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
        extra_env={
            **common,
            "MLTEAMS_HUB_PROFILE_LIST": json.dumps(shape.stock_profile_list()),
            "MLTEAMS_HUB_GROUPS": json.dumps(shape.groups("stock-")),
        },
    )
    for hub in (team, stock):
        hub.start(timeout=300)
        hubs.append(hub)
    return team, stock


def report(shape: Burst, teamed: Result, stocked: Result, sampler: GpuSampler) -> None:
    quota = shape.stock_quota()
    print(
        f"burst: the same {teamed.requests} spawn requests at once to each hub, {shape.teams} "
        f"teams x {shape.users} users ({shape.cpu_users} CPU, {shape.users - shape.cpu_users} "
        f"GPU a team); apiserver sampled {sampler.samples} times"
    )
    print(
        f"  TeamKubeSpawner: {shape.gpus} GPUs per team (1 per user), gpu1-queued waits, gpu1 is "
        "refused"
    )
    print(
        f"  KubeSpawner (stock): profile_list cpu/gpu1, namespace {STOCK_NAMESPACE} with "
        f"ResourceQuota {quota[f'requests.{GPU}']} GPUs, {quota['pods']} pods"
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
    for result in (teamed, stocked):
        print(f"  refusals ({result.name}):")
        for kind, count in sorted(result.refusals().items()):
            print(f"    {count:4d}  {kind}")
        shown = result.message[:MESSAGE_CHARS].encode("unicode_escape").decode()
        print(f"    what a refused user sees, first {MESSAGE_CHARS} characters: {shown}")
        inner = kubernetes_message(result.message)
        if inner:
            print(f"    the apiserver's message in it: {inner}")
    print("  GPUs in use, most at any moment (apiserver) / quota:")
    over = 0
    cells = []
    for t in range(shape.teams):
        most = sampler.most.get(shape.team(t), 0)
        over += max(0, most - shape.gpus)
        cells.append(f"{shape.team(t)} {most}/{shape.gpus}")
    print("    TeamKubeSpawner, per team:")
    for i in range(0, len(cells), 5):
        print("      " + "   ".join(cells[i : i + 5]))
    stock_quota = shape.teams * shape.gpus
    stock_most = sampler.most.get(STOCK_NAMESPACE, 0)
    stock_over = max(0, stock_most - stock_quota)
    print(
        f"    KubeSpawner (stock), its one namespace: {STOCK_NAMESPACE} {stock_most}/{stock_quota}"
    )
    by_team: dict[str, int] = defaultdict(int)
    for user, name, profile in shape.requests():
        if f"stock-{user}" in stocked.admitted and STOCK_PROFILES[profile] != "cpu":
            by_team[name] += 1
    print("      its admitted GPU servers by the users' teams (which stock does not know):")
    cells = [f"{shape.team(t)} {by_team[shape.team(t)]}" for t in range(shape.teams)]
    for i in range(0, len(cells), 5):
        print("        " + "   ".join(cells[i : i + 5]))
    print(
        f"  over-admissions (GPUs above a quota): TeamKubeSpawner {over} (teams' quotas), "
        f"KubeSpawner (stock) {stock_over} (its namespace's quota)"
    )


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
