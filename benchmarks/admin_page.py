"""Admin overview benchmark: ``GET /services/mlteams/api/admin/teams`` with 5,000 servers.

The admin pages' teams overview (``TeamsOverviewHandler``, ``AdminWorkflow.overview``) lists the
hub's active users page by page with the viewer's token, lists the pods of every team namespace,
reads the overrides and GPU sessions from the service's database, records the sessions of the
GPU pods it saw, and shapes the answer (``hub_ext.policy.admin_overview``). This benchmark times
that request as a platform admin makes it, with ``--servers`` servers (default 5,000) across
``--teams`` teams (default 20), and prints p50, p95 and max of the service's own time and of the
time the client saw; the aim is p95 <= 200 ms (it does not fail when it is missed).

What is real and what is not:

* The cluster is real: the local platform's control plane (``devenv.cluster.LocalCluster``:
  etcd, kube-apiserver, controller-manager), without the kubelet and the serving controller, and
  with the scheduler stopped once it is up, so nothing touches the pods after they are made.
  The pods, one per server, round robin over the team namespaces, are made through
  ``kubernetes_asyncio`` (32 requests at a time) with the labels, annotations and resources a
  team server's pod has (``hub_ext.policy.pod_settings``, KubeSpawner's own), 0, 1 or 2 GPUs
  each; their status is then patched to ``Running`` with a ``startTime`` through the status
  subresource (32 at a time), since there is no kubelet to run them. The service lists them
  through its own ``AdminCluster`` with a client made from the cluster's kubeconfig
  (``hub_ext.service.kube.kube_client``).
* The service is the real tornado application (``MLTeamsService.make_app``) with its
  ``AdminWorkflow`` over a migrated sqlite ``Store`` in a temporary folder, on a loopback port.
* The hub is a stand-in: a real JupyterHub would need 5,000 users with running servers in its
  database, each spawned through a spawner, which is far more setup than the overview is worth.
  The stand-in, a small tornado application on loopback in a thread of this process, identifies
  the admin's token (``GET /hub/api/user``) and lists the active users (``GET /hub/api/users``),
  one user model per server (groups, a started server with ``started``, ``last_activity`` and
  ``user_options``). It answers from memory, each page encoded once, so the service's time is its
  own work plus its round trips to the hub. By default it pages as JupyterHub 6 does
  (``--hub-pages jupyterhub``): the paginated shape (``items`` and ``_pagination``, 50 a page
  unless ``limit`` says more, at most 200) only to a request whose ``Accept`` names
  ``application/jupyterhub-pagination+json``, and otherwise a plain list of the first 200. With
  ``--hub-pages paginated`` it always answers the paginated shape, 200 a page: the complete
  listing in 200-user pages (25 round trips for 5,000 users). The benchmark says how many of the
  answer's servers carry the hub's start time, that is how many users the service got.

The same request on a small platform (``SMALL_SERVERS`` servers across ``SMALL_TEAMS`` teams, in
the same cluster, served by a second application with its own hub stand-in and database) is
timed interleaved with the large one, and the ratio is printed.

Run: ``.venv/bin/python -m benchmarks.admin_page [--servers 5000] [--teams 20] [--requests 200]
[--budget 900] [--hub-pages jupyterhub|paginated] [--profile N]`` (not part of the test suite;
making 5,000 pods and their status takes well under a minute). A request with 5,000 servers can
take seconds, so the timing stops after ``--budget`` seconds once 10 requests of each are timed;
the output says how many were. ``--profile N`` then makes N more requests of the large platform
under cProfile and prints the functions that took the most time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer

from benchmarks.team_pods import Platform, Server, fill_cluster, iso, stop_scheduler
from devenv.cluster import LocalCluster
from devenv.procs import free_port
from hub_ext.policy import load_config
from hub_ext.service.admin.cluster import AdminCluster
from hub_ext.service.admin.workflow import AdminWorkflow
from hub_ext.service.app import MLTeamsService, tune_gc
from hub_ext.service.kube import kube_client
from hub_ext.service.store import Store
from tests.http_servers import in_thread

ADMIN = "bench-admin"
ADMIN_TOKEN = "bench-admin-token"
SERVICE_TOKEN = "bench-service-token"
OVERVIEW = "/services/mlteams/api/admin/teams"
PAGINATION_TYPE = "application/jupyterhub-pagination+json"
PAGE_DEFAULT = 50  # JupyterHub's api_page_default_limit
PAGE_MAX = 200  # JupyterHub's api_page_max_limit
SMALL_SERVERS = 10
SMALL_TEAMS = 2
WARMUP = 3
MIN_REQUESTS = 10
AIM_P95_MS = 200.0


# -- the platform's contents ----------------------------------------------------------------------


def user_model(server: Server, created: datetime) -> dict[str, Any]:
    """The hub's model of the server's user as ``GET /hub/api/users?state=active`` gives it to an
    admin."""
    user = server.user
    started, active = iso(server.started), iso(server.last_activity)
    return {
        "kind": "user",
        "name": user,
        "admin": False,
        "roles": ["user"],
        "groups": [server.team],
        "server": f"/user/{user}/",
        "pending": None,
        "created": iso(created),
        "last_activity": active,
        "servers": {
            "": {
                "name": "",
                "full_name": f"{user}/",
                "last_activity": active,
                "started": started,
                "pending": None,
                "ready": True,
                "stopped": False,
                "url": f"/user/{user}/",
                "user_options": {"team": server.team, "profile": server.profile},
                "progress_url": f"/hub/api/users/{user}/server/progress",
            }
        },
    }


# -- the hub stand-in ---------------------------------------------------------------------------


class HubStandIn:
    """The admin's token and the active users, answered from memory."""

    def __init__(self, models: list[dict[str, Any]], always_paginated: bool) -> None:
        self.models = models
        self.always_paginated = always_paginated
        self.pages: dict[tuple[int, int, bool], bytes] = {}
        self.lock = threading.Lock()
        self.admin = json.dumps(
            {
                "kind": "user",
                "name": ADMIN,
                "admin": True,
                "groups": [],
                "scopes": ["access:services!service=mlteams", "custom:mlteams:admin"],
            }
        ).encode()

    def page(self, offset: int, limit: int, paginated: bool, url: str) -> bytes:
        key = (offset, limit, paginated)
        with self.lock:
            if key not in self.pages:
                items = self.models[offset : offset + limit]
                if not paginated:
                    self.pages[key] = json.dumps(items).encode()
                else:
                    total = len(self.models)
                    more = offset + limit < total
                    self.pages[key] = json.dumps(
                        {
                            "items": items,
                            "_pagination": {
                                "offset": offset,
                                "limit": limit,
                                "total": total,
                                "next": {
                                    "offset": offset + limit,
                                    "limit": limit,
                                    "url": f"{url}?state=active&offset={offset + limit}"
                                    f"&limit={limit}",
                                }
                                if more
                                else None,
                            },
                        }
                    ).encode()
            return self.pages[key]


class _HubHandler(web.RequestHandler):
    def initialize(self, hub: HubStandIn) -> None:
        self.hub = hub

    def known(self) -> bool:
        if self.request.headers.get("Authorization", "") == f"token {ADMIN_TOKEN}":
            return True
        self.set_status(403)
        self.finish(json.dumps({"status": 403, "message": "invalid token"}))
        return False

    def answer(self, body: bytes) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(body)


class _WhoAmI(_HubHandler):
    def get(self) -> None:
        if self.known():
            self.answer(self.hub.admin)


class _ActiveUsers(_HubHandler):
    def get(self) -> None:
        if not self.known():
            return
        if self.get_query_argument("state", None) != "active":
            raise web.HTTPError(400, "the benchmark's hub lists active users only")
        accepts = {s.strip().lower() for s in self.request.headers.get("Accept", "").split(",")}
        paginated = self.hub.always_paginated or PAGINATION_TYPE in accepts
        # JupyterHub's get_api_pagination: a client that does not ask for the paginated shape
        # gets the largest page by default, so that it misses fewer users
        default = PAGE_MAX if self.hub.always_paginated or not paginated else PAGE_DEFAULT
        offset = abs(int(self.get_query_argument("offset", "0")))
        limit = min(max(abs(int(self.get_query_argument("limit", str(default)))), 1), PAGE_MAX)
        url = f"{self.request.protocol}://{self.request.host}{self.request.path}"
        self.answer(self.hub.page(offset, limit, paginated, url))


def hub_app(hub: HubStandIn) -> web.Application:
    args = {"hub": hub}
    return web.Application(
        [(r"/hub/api/user", _WhoAmI, args), (r"/hub/api/users", _ActiveUsers, args)]
    )


# -- the cluster ------------------------------------------------------------------------------


# -- the service ------------------------------------------------------------------------------


@dataclass
class Service:
    """One service application with its own database and hub stand-in, and the server times
    of its overview answers."""

    name: str
    platform: Platform
    port: int
    app: web.Application
    server: HTTPServer
    store: Store
    cluster: AdminCluster
    timing: bool = False
    server_times: list[float] = field(default_factory=list)
    client_times: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{OVERVIEW}"

    async def close(self) -> None:
        self.server.stop()
        await self.cluster.close()
        self.store.close()


def start_service(
    name: str, platform: Platform, hub_port: int, kubeconfig: Path, db: Path
) -> Service:
    config = load_config(platform.config())
    store = Store(f"sqlite:///{db}")
    store.migrate()
    cluster = AdminCluster(connect=lambda: kube_client(str(kubeconfig)))
    admin = AdminWorkflow(config, store, cluster)  # type: ignore[arg-type]
    service = MLTeamsService(
        service_url="http://127.0.0.1:1",
        hub_api_url=f"http://127.0.0.1:{hub_port}/hub/api",
        api_token=SERVICE_TOKEN,
        prefix="/services/mlteams/",
    )
    app = service.make_app(config, admin=admin)  # type: ignore[arg-type]
    port = free_port()
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    found = Service(name, platform, port, app, server, store, cluster)

    def log_request(handler: web.RequestHandler) -> None:
        # instead of the access log: the same request_time, kept
        if found.timing and handler.request.path == OVERVIEW and handler.get_status() == 200:
            found.server_times.append(handler.request.request_time())

    app.settings["log_function"] = log_request
    return found


@dataclass
class Answer:
    teams: int
    members: int
    servers: int
    with_hub_start: int
    size: int


async def overview(service: Service) -> Answer:
    start = time.perf_counter()
    response = await AsyncHTTPClient().fetch(
        service.url,
        headers={"Authorization": f"token {ADMIN_TOKEN}"},
        raise_error=False,
        request_timeout=300,
    )
    elapsed = time.perf_counter() - start
    if response.code != 200:
        raise SystemExit(f"{service.name}: {response.code} {response.body[:500]!r}")
    if service.timing:
        service.client_times.append(elapsed)
    teams = json.loads(response.body)["teams"]
    members = [m for t in teams for m in t["members"]]
    servers = [s for m in members for s in m["servers"]]
    return Answer(
        teams=len(teams),
        members=len(members),
        servers=len(servers),
        with_hub_start=sum(1 for s in servers if s["started"]),
        size=len(response.body),
    )


def check(service: Service, answer: Answer, always_paginated: bool) -> None:
    """Every answer must hold every team and every server, so that the figures are honest
    (a namespace the service could not list in time would leave its servers out)."""
    platform = service.platform
    if answer.teams != platform.teams or answer.servers != len(platform.servers):
        raise SystemExit(
            f"{service.name}: the answer has {answer.teams} teams and {answer.servers} servers, "
            f"not {platform.teams} and {len(platform.servers)}"
        )
    if always_paginated and answer.with_hub_start != answer.servers:
        raise SystemExit(
            f"{service.name}: only {answer.with_hub_start} of {answer.servers} servers carry the "
            "hub's start time"
        )


# -- measuring ----------------------------------------------------------------------------------


def percentile(samples: Iterable[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def measure(
    large: Service, small: Service, requests: int, budget: float, always_paginated: bool
) -> dict[str, Answer]:
    answers = {}
    for service in (large, small):
        for _ in range(WARMUP):
            answers[service.name] = await overview(service)
        check(service, answers[service.name], always_paginated)
    large.timing = small.timing = True
    deadline = time.monotonic() + budget
    for i in range(requests):
        if i >= MIN_REQUESTS and time.monotonic() > deadline:
            break
        # interleaved, the order alternating, so both see the same load
        for service in (large, small) if i % 2 == 0 else (small, large):
            check(service, await overview(service), always_paginated)
    large.timing = small.timing = False
    return answers


async def profiled(service: Service, requests: int) -> str:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        await overview(service)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


async def benchmark(
    args: argparse.Namespace, root: Path, kubeconfig: Path, large_p: Platform, small_p: Platform
) -> tuple[dict[str, Answer], Service, Service, str]:
    always = args.hub_pages == "paginated"
    created = datetime.now(timezone.utc) - timedelta(days=90)
    large_hub = HubStandIn([user_model(s, created) for s in large_p.servers], always)
    small_hub = HubStandIn([user_model(s, created) for s in small_p.servers], always)
    with (
        in_thread(hub_app(large_hub)) as large_hub_port,
        in_thread(hub_app(small_hub)) as small_hub_port,
    ):
        large = start_service("large", large_p, large_hub_port, kubeconfig, root / "large.sqlite")
        small = start_service("small", small_p, small_hub_port, kubeconfig, root / "small.sqlite")
        if args.pods == "watched":
            # as the service does at its start: the servers' pods kept in memory by a watch
            for service in (large, small):
                if not await service.cluster.watch():
                    raise SystemExit("the pods could not be watched")
            # as the service does after its watch has listed once (MLTeamsService.gc_threshold)
            tune_gc(MLTeamsService.gc_threshold.default_value)
        try:
            answers = await measure(large, small, args.requests, args.budget, always)
            report = await profiled(large, args.profile) if args.profile else ""
        finally:
            await large.close()
            await small.close()
    return answers, large, small, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=5000, help="servers (default 5000)")
    parser.add_argument("--teams", type=int, default=20, help="teams (default 20)")
    parser.add_argument(
        "--requests", type=int, default=200, help="timed requests of each platform (default 200)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help=f"stop timing after this long, once {MIN_REQUESTS} requests of each are timed "
        "(default 900); the table says how many were",
    )
    parser.add_argument(
        "--hub-pages",
        choices=("jupyterhub", "paginated"),
        default="jupyterhub",
        help="how the hub stand-in pages its users: as JupyterHub 6 does (default), or always "
        "the paginated shape, 200 a page",
    )
    parser.add_argument(
        "--pods",
        choices=("watched", "listed"),
        default="watched",
        help="the servers' pods kept in memory by a watch, as the service does (default), or "
        "listed from the API on every request",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="afterwards, N requests of the large platform under cProfile (default 0: none)",
    )
    args = parser.parse_args(argv)
    if args.teams < 1 or args.servers < args.teams or args.requests < 2:
        parser.error("--teams must be at least 1, --servers at least --teams, --requests >= 2")

    # as the hub starts a managed service named mlteams
    for name in ("JUPYTERHUB_BASE_URL", "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"):
        os.environ.pop(name, None)
    os.environ["JUPYTERHUB_SERVICE_NAME"] = "mlteams"
    os.environ["JUPYTERHUB_CLIENT_ID"] = "service-mlteams"

    now = datetime.now(timezone.utc)
    large_p = Platform.make("team", args.teams, args.servers, now)
    small_p = Platform.make("small", SMALL_TEAMS, SMALL_SERVERS, now)
    with tempfile.TemporaryDirectory(prefix="mlteams-bench-") as tmp:
        root = Path(tmp)
        cluster = LocalCluster(root / "cluster", with_kubelet=False, with_serving=False)
        try:
            start = time.perf_counter()
            cluster.start()
            stop_scheduler(cluster)
            started = time.perf_counter()
            asyncio.run(fill_cluster(cluster.kubeconfig, [large_p, small_p]))
            filled = time.perf_counter()
            answers, large, small, report = asyncio.run(
                benchmark(args, root, cluster.kubeconfig, large_p, small_p)
            )
        finally:
            cluster.stop()

    pods = args.servers + SMALL_SERVERS
    print(
        f"setup: control plane {started - start:.1f} s; {pods} pods made and running in "
        f"{filled - started:.1f} s ({pods / (filled - started):.0f} pods/s)"
    )
    print(
        f"GET {OVERVIEW} as a platform admin, {len(large.server_times)} requests each "
        f"(of {args.requests}; {WARMUP} before them untimed), interleaved; hub stand-in paging: "
        f"{args.hub_pages}; pods {args.pods}"
    )
    for service in (large, small):
        answer = answers[service.name]
        print(
            f"  {service.name}: {answer.teams} teams, {answer.members} members, {answer.servers} "
            f"servers ({answer.with_hub_start} with the hub's start time), answer "
            f"{answer.size:,} bytes"
        )
        if answer.with_hub_start < answer.servers:
            print(
                f"    note: the service got {answer.with_hub_start} of {answer.servers} users "
                "from the hub"
            )
    print(f"  {'':28}{'p50':>11}{'p95':>11}{'max':>11}")
    for service in (large, small):
        for kind, samples in (("server", service.server_times), ("client", service.client_times)):
            label = f"{service.name} ({len(service.platform.servers)} servers) {kind}"
            print(
                f"  {label:<28}{ms(percentile(samples, 50))}{ms(percentile(samples, 95))}"
                f"{ms(max(samples))}"
            )
    r50 = percentile(large.server_times, 50) / percentile(small.server_times, 50)
    r95 = percentile(large.server_times, 95) / percentile(small.server_times, 95)
    print(f"  ratio large/small server    p50 {r50:7.1f}     p95 {r95:7.1f}")
    p95 = percentile(large.server_times, 95) * 1000
    print(f"  server p95 <= {AIM_P95_MS:.0f} ms: {'yes' if p95 <= AIM_P95_MS else 'no'}")
    if report:
        print(f"cProfile of {args.profile} more requests of the large platform:")
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
