"""``GET /api/teams/<team>`` of the mlteams service through real HTTP: the service's own tornado
application, a small hub that identifies tokens and describes users and groups, and a small
Kubernetes API server that serves the team namespace's ResourceQuota and pods (both can be
made to fail); and table tests of the pure shaping (``hub_ext.policy.team_figures``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from hub_ext.policy import load_config
from hub_ext.policy.config import Promotion
from hub_ext.policy.ledger import PodSummary
from hub_ext.policy.team_figures import (
    PendingSpawn,
    gate_list,
    pending_spawns,
    quota_gpus,
    spawn_queue,
)
from hub_ext.service.app import MLTeamsService
from hub_ext.service.handlers import HUB_UNAVAILABLE
from hub_ext.service.promotion_settings import NOT_SET_UP, PromotionConfig
from tests.http_servers import in_thread, listen

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

SERVICE_TOKEN = "service-token-77"
NAMESPACE = "team-vision"
GPU = "requests.nvidia.com/gpu"
CONFIG = {
    "profiles": {
        "cpu": {"image": "mlteams/cpu:1"},
        "gpu1": {"image": "mlteams/pytorch:1", "gpus": 1},
        "flex": {"image": "mlteams/pytorch:1", "gpus": {"min": 1, "max": 4, "default": 1}},
    },
    "teams": {
        "vision": {
            "display_name": "Team Vision",
            "groups": ["vision-engineers"],
            "lead_groups": ["vision-leads"],
            "quota": {"gpus": 8, "gpus_per_user": 2},
            "profiles": ["gpu1", "flex", "cpu"],
            "promotion": {
                "evaluation": {
                    "uri": "s3://governed/evaluation/vision.csv",
                    "label_column": "species",
                    "task": "classification",
                },
                "gates": {"accuracy": {"min": 0.9, "max_regression": 0.02}},
                "approver_groups": ["ml-reviewers"],
            },
        },
        "nlp": {"groups": ["nlp-engineers"], "quota": {"gpus": 4}, "profiles": ["cpu"]},
    },
}
GROUPS = {
    "alice": ["vision-engineers"],
    "lena": ["vision-leads"],
    "dora": ["vision-engineers"],
    "erin": ["vision-engineers"],
    "frank": ["vision-engineers"],
    "gina": ["vision-engineers"],
    "bob": ["nlp-engineers"],
}


def pending(options: dict[str, Any], started: str) -> dict[str, Any]:
    return {"pending": "spawn", "ready": False, "user_options": options, "started": started}


SERVERS: dict[str, dict[str, Any]] = {
    "alice": {"": {"pending": None, "ready": True, "user_options": {"profile": "gpu1"}}},
    "dora": {"": pending({"team": "vision", "profile": "gpu1"}, "2026-03-01T10:00:02.000000Z")},
    "erin": {"big": pending({"profile": "flex", "gpus": 2}, "2026-03-01T10:00:01.000000Z")},
    # admitted: its pod exists, it is starting, not waiting for GPUs
    "frank": {"": pending({"profile": "gpu1"}, "2026-03-01T09:59:00.000000Z")},
    # no GPUs: never waits in the GPU queue
    "gina": {"": pending({"profile": "cpu"}, "2026-03-01T09:58:00.000000Z")},
}


def pod(
    name: str, user: str, gpus: int, phase: str = "Running", server: str = ""
) -> dict[str, Any]:
    resources = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"mlteams.io/team": "vision", "mlteams.io/user": user},
            "annotations": {"mlteams.io/user": user, "mlteams.io/server": f"{user}/{server}"},
        },
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "mlteams/pytorch:1",
                    "resources": {"limits": resources, "requests": resources},
                }
            ]
        },
        "status": {"phase": phase},
    }


PODS = [
    pod("jupyter-alice", "alice", 1),
    pod("jupyter-alice-old", "alice", 1, phase="Succeeded", server="old"),
    pod("jupyter-lena", "lena", 2),
    pod("jupyter-frank", "frank", 1, phase="Pending"),
    pod("jupyter-gina", "gina", 0, phase="Pending"),
]
QUOTA = {
    "apiVersion": "v1",
    "kind": "ResourceQuota",
    "metadata": {"name": "mlteams-quota", "namespace": NAMESPACE},
    "spec": {"hard": {GPU: "8"}},
    "status": {"hard": {GPU: "8"}, "used": {GPU: "4"}},
}


@dataclass
class Hub:
    """What the hub knows; ``failing`` makes its users' API answer 500."""

    show_servers: bool = True
    failing: bool = False
    user_calls: list[str] = field(default_factory=list)


class HubHandler(web.RequestHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def answer(self, status: int, model: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model))

    def token(self) -> str:
        return self.request.headers.get("Authorization", "").removeprefix("token ")


class WhoAmI(HubHandler):
    def get(self) -> None:
        name = self.token().removesuffix("-token")
        if name not in GROUPS:
            self.answer(403, {"status": 403, "message": "invalid token"})
            return
        scopes = ["access:services!service=mlteams"]
        self.answer(200, {"kind": "user", "name": name, "groups": GROUPS[name], "scopes": scopes})


class UserModel(HubHandler):
    def get(self, name: str) -> None:
        assert self.token() == SERVICE_TOKEN
        self.hub.user_calls.append(name)
        if self.hub.failing:
            self.answer(500, {"status": 500, "message": "database is locked"})
        elif name not in GROUPS:
            self.answer(404, {"status": 404, "message": "no such user"})
        else:
            model: dict[str, Any] = {"kind": "user", "name": name, "groups": GROUPS[name]}
            if self.hub.show_servers:
                model["servers"] = SERVERS.get(name, {})
            self.answer(200, model)


class GroupModel(HubHandler):
    def get(self, name: str) -> None:
        users = sorted(user for user, groups in GROUPS.items() if name in groups)
        if not users:
            self.answer(404, {"status": 404, "message": "no such group"})
        else:
            self.answer(200, {"kind": "group", "name": name, "users": users})


@dataclass
class Cluster:
    """The apiserver's answers; a status other than 200 is answered as its refusal."""

    quota_status: int = 200
    pods_status: int = 200
    paths: list[str] = field(default_factory=list)


class ApiServer(web.RequestHandler):
    def initialize(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def get(self, namespace: str, kind: str, name: str | None = None) -> None:
        self.cluster.paths.append(self.request.path)
        assert self.request.headers["Authorization"] == "Bearer kube-token"
        status = self.cluster.quota_status if kind == "resourcequotas" else self.cluster.pods_status
        self.set_header("Content-Type", "application/json")
        self.set_status(status)
        if status != 200:
            reason = {403: "Forbidden", 404: "NotFound"}.get(status, "InternalError")
            self.finish(json.dumps({"kind": "Status", "code": status, "reason": reason}))
        elif kind == "resourcequotas":
            assert (namespace, name) == (NAMESPACE, "mlteams-quota")
            self.finish(json.dumps(QUOTA))
        else:
            assert namespace == NAMESPACE
            self.finish(json.dumps({"apiVersion": "v1", "kind": "PodList", "items": PODS}))


Call = Callable[..., Awaitable[HTTPResponse]]


@dataclass
class World:
    hub: Hub
    cluster: Cluster
    call: Call


def kubeconfig(path: Path, port: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "k", "user": {"token": "kube-token"}}],
                "contexts": [{"name": "k", "context": {"cluster": "k", "user": "k"}}],
                "current-context": "k",
            }
        )
    )
    return path


@pytest.fixture
def registry_url() -> str:
    return "http://mlflow.invalid"


@pytest.fixture
def apiserver_up() -> bool:
    return True


@pytest.fixture
def hub() -> Iterator[tuple[Hub, int]]:
    """The hub and the port of its REST API."""
    hub = Hub()
    app = web.Application(
        [
            (r"/hub/api/user", WhoAmI, {"hub": hub}),
            (r"/hub/api/users/([^/]+)", UserModel, {"hub": hub}),
            (r"/hub/api/groups/([^/]+)", GroupModel, {"hub": hub}),
        ]
    )
    with in_thread(app) as port:
        yield hub, port


@pytest.fixture
async def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry_url: str,
    apiserver_up: bool,
    hub: tuple[Hub, int],
) -> AsyncIterator[World]:
    the_hub, hub_port = hub
    cluster = Cluster()
    kube_server, kube_port = listen(
        web.Application(
            [
                (
                    r"/api/v1/namespaces/([^/]+)/(resourcequotas)/([^/]+)",
                    ApiServer,
                    {"cluster": cluster},
                ),
                (r"/api/v1/namespaces/([^/]+)/(pods)", ApiServer, {"cluster": cluster}),
            ]
        )
    )
    if not apiserver_up:
        kube_server.stop()
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", kube_port)))
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "mlteams")
    service = MLTeamsService(
        service_url="http://127.0.0.1:1",
        hub_api_url=f"http://127.0.0.1:{hub_port}/hub/api",
        api_token=SERVICE_TOKEN,
        prefix="/services/mlteams/",
    )
    promotion = PromotionConfig(registry_url=registry_url)
    app_server, app_port = listen(service.make_app(load_config(CONFIG), promotion))

    async def call(team: str, user: str | None = "alice") -> HTTPResponse:
        headers = {"Authorization": f"token {user}-token"} if user else {}
        return await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{app_port}/services/mlteams/api/teams/{team}",
            headers=headers,
            raise_error=False,
        )

    yield World(the_hub, cluster, call)
    for server in (app_server, kube_server):
        server.stop()


def body(response: HTTPResponse) -> Any:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


GATES = [
    {
        "gate": "accuracy.min",
        "metric": "accuracy",
        "threshold": 0.9,
        "description": "accuracy measured on the team's held-out set is at least 0.9",
    },
    {
        "gate": "accuracy.max_regression",
        "metric": "accuracy",
        "threshold": 0.02,
        "description": "accuracy is at most 0.02 worse than the current champion's",
    },
    {
        "gate": "evidence.signature",
        "metric": None,
        "threshold": None,
        "description": "the model was logged with a signature (its inputs and outputs)",
    },
]


async def test_a_member_gets_the_live_figures_the_queue_and_the_gates(world: World) -> None:
    response = await world.call("vision")
    assert response.code == 200
    assert body(response) == {
        "team": "vision",
        "display_name": "Team Vision",
        "source": "live",
        "note": None,
        "gpus": {
            "limit": 8,
            "in_use": 4,
            "free": 4,
            "per_user_limit": 2,
            "you_hold": 1,
            "queue": [
                {"user": "erin", "gpus": 2, "position": 1},
                {"user": "dora", "gpus": 1, "position": 2},
            ],
        },
        "promotion": {
            "available": True,
            "reason": None,
            "high_stakes": False,
            "approvers": "a lead of team vision or a member of ml-reviewers",
            "gates": GATES,
        },
        # no admin workflow in this service: no quota requests are kept
        "quota_requests": None,
    }
    assert sorted(world.cluster.paths) == [
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        f"/api/v1/namespaces/{NAMESPACE}/resourcequotas/mlteams-quota",
    ]


async def test_a_lead_is_a_member_and_holds_their_own_gpus(world: World) -> None:
    figures = body(await world.call("vision", user="lena"))
    assert figures["gpus"]["you_hold"] == 2


async def test_a_non_member_is_refused_with_a_plain_message(world: World) -> None:
    response = await world.call("vision", user="bob")
    assert response.code == 403
    assert body(response) == {
        "status": 403,
        "message": "You are not a member of team vision; only its members see its figures.",
    }
    assert world.cluster.paths == []


async def test_an_unknown_team_is_404(world: World) -> None:
    response = await world.call("robotics")
    assert response.code == 404
    assert body(response)["message"] == "There is no team 'robotics'."


async def test_without_a_token_the_caller_is_asked_to_sign_in(world: World) -> None:
    response = await world.call("vision", user=None)
    assert response.code == 401
    assert "JupyterHub token" in body(response)["message"]


@pytest.mark.parametrize("status", [403, 404, 500])
async def test_an_unreadable_quota_falls_back_to_the_configured_limit(
    world: World, status: int
) -> None:
    world.cluster.quota_status = status
    figures = body(await world.call("vision"))
    assert figures["source"] == "config"
    assert figures["note"] == (
        f"The live GPU quota of namespace {NAMESPACE} is unavailable: the limit is the team's "
        "configured one, and the GPUs in use are counted from the team's pods."
    )
    # the configured 8 GPUs; in use: alice 1, lena 2, frank's pending pod 1 (not the finished one)
    assert figures["gpus"] | {"queue": None} == {
        "limit": 8,
        "in_use": 4,
        "free": 4,
        "per_user_limit": 2,
        "you_hold": 1,
        "queue": None,
    }


async def test_unlisted_pods_leave_the_users_gpus_unknown(world: World) -> None:
    world.cluster.pods_status = 403
    figures = body(await world.call("vision"))
    assert figures["source"] == "live"
    assert figures["gpus"]["you_hold"] is None
    assert figures["gpus"]["in_use"] == 4
    assert "The GPUs you hold are unavailable" in figures["note"]


@pytest.mark.parametrize("apiserver_up", [False])
async def test_a_cluster_that_does_not_answer_gives_the_configured_limits(world: World) -> None:
    response = await world.call("vision")
    assert response.code == 200
    figures = body(response)
    assert figures["source"] == "config"
    assert figures["note"].startswith("Live figures are unavailable: the cluster did not answer")
    assert figures["gpus"] | {"queue": None} == {
        "limit": 8,
        "in_use": None,
        "free": None,
        "per_user_limit": 2,
        "you_hold": None,
        "queue": None,
    }


@pytest.mark.parametrize("registry_url", [""])
async def test_promotion_off_is_unavailable_with_the_reason(world: World) -> None:
    promotion = body(await world.call("vision"))["promotion"]
    assert promotion["available"] is False
    assert promotion["reason"] == NOT_SET_UP
    assert promotion["gates"] == GATES


async def test_a_hub_that_shows_no_servers_gives_an_empty_queue_after_one_look(
    world: World,
) -> None:
    world.hub.show_servers = False
    figures = body(await world.call("vision"))
    assert figures["gpus"]["queue"] == []
    assert figures["note"] is None
    # the caller's own groups, then the first member: the role shows no servers, so no more
    assert world.hub.user_calls == ["alice", "alice"]


async def test_a_failing_hub_is_a_clear_503(world: World) -> None:
    world.hub.failing = True
    response = await world.call("vision")
    assert response.code == 503
    assert body(response) == {"status": 503, "message": HUB_UNAVAILABLE}


# -- the pure shaping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        (QUOTA, (8, 4)),
        ({"status": {"hard": {GPU: 8}, "used": {GPU: 3}}}, (8, 3)),
        ({"status": {"hard": {GPU: "1k"}, "used": {GPU: "0"}}}, (1000, 0)),
        # a quota the controller has not counted yet, or that does not limit GPUs
        ({"status": {"hard": {GPU: "16"}, "used": {}}}, None),
        ({"spec": {"hard": {GPU: "8"}}}, None),
        ({"status": {"hard": {"limits.cpu": "4"}, "used": {"limits.cpu": "1"}}}, None),
        ({"status": {"hard": {GPU: "x"}, "used": {GPU: "1"}}}, None),
        ({"status": {"hard": {GPU: True}, "used": {GPU: "1"}}}, None),
        (None, None),
    ],
)
def test_quota_gpus(quota: Any, expected: tuple[int, int] | None) -> None:
    found = quota_gpus(quota)
    assert (None if found is None else (found.limit, found.in_use)) == expected


TEAM_CONFIG = load_config(CONFIG)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"name": "dora", "groups": ["vision-engineers"]}, None),
        (
            {"name": "dora", "groups": ["vision-engineers"], "servers": SERVERS["dora"]},
            [PendingSpawn("dora", "", 1, "2026-03-01T10:00:02.000000Z")],
        ),
        (
            {"name": "erin", "groups": ["vision-engineers"], "servers": SERVERS["erin"]},
            [PendingSpawn("erin", "big", 2, "2026-03-01T10:00:01.000000Z")],
        ),
        ({"name": "gina", "groups": ["vision-engineers"], "servers": SERVERS["gina"]}, []),
        ({"name": "alice", "groups": ["vision-engineers"], "servers": SERVERS["alice"]}, []),
        # another team's spawn, and options the spawner would refuse, are not this team's queue
        (
            {
                "name": "carol",
                "groups": ["vision-engineers", "nlp-engineers"],
                "servers": {
                    "a": pending({"team": "nlp", "profile": "cpu"}, "t"),
                    "b": pending({"team": "vision", "profile": "nope"}, "t"),
                    "c": pending({"profile": "gpu1"}, "t"),
                },
            },
            [],
        ),
        ({"name": "dora", "servers": SERVERS["dora"]}, []),
    ],
)
def test_pending_spawns(model: dict[str, Any], expected: list[PendingSpawn] | None) -> None:
    assert pending_spawns(TEAM_CONFIG, "vision", model) == expected


@pytest.mark.parametrize(
    ("spawns", "pods", "expected"),
    [
        ([], [], []),
        (
            [PendingSpawn("b", "", 1, "2"), PendingSpawn("a", "", 3, "1")],
            [],
            [{"user": "a", "gpus": 3, "position": 1}, {"user": "b", "gpus": 1, "position": 2}],
        ),
        (
            [PendingSpawn("b", "", 1, "2"), PendingSpawn("a", "x", 3, "1")],
            [PodSummary(NAMESPACE, "p", server="a/x")],
            [{"user": "b", "gpus": 1, "position": 1}],
        ),
        (
            [PendingSpawn("a", "x", 3, "1")],
            [PodSummary(NAMESPACE, "p", server="a/x", phase="Failed")],
            [{"user": "a", "gpus": 3, "position": 1}],
        ),
    ],
)
def test_spawn_queue(
    spawns: list[PendingSpawn], pods: list[PodSummary], expected: list[dict[str, Any]]
) -> None:
    assert spawn_queue(spawns, pods) == expected


@pytest.mark.parametrize(
    ("promotion", "expected"),
    [
        ({}, ["evidence.signature"]),
        ({"evidence": {"signature": False}}, []),
        (
            {
                "evaluation": {
                    "uri": "s3://governed/evaluation/k.csv",
                    "label_column": "y",
                    "task": "regression",
                },
                "gates": {"rmse": {"max": 0.5}, "mae": {"min": 0.0, "max": 1}},
                "evidence": {"signature": False, "dataset_inputs": True},
            },
            ["mae.min", "mae.max", "rmse.max", "evidence.dataset_inputs"],
        ),
    ],
)
def test_gate_list(promotion: dict[str, Any], expected: list[str]) -> None:
    assert [gate["gate"] for gate in gate_list(Promotion.model_validate(promotion))] == expected
