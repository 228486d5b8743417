"""The admin JSON API (``/services/mlteams/api/admin/...``, ``/api/quota-requests``) and the admin
pages (``/services/mlteams-admin/...``) of the mlteams service through real HTTP: the service's
own tornado application over a sqlite store, a small hub that identifies tokens, lists the users
a token may see and records the servers stopped, and a small cluster that lists pods and records
the ResourceQuotas it was given.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from hub_ext.policy import load_config
from hub_ext.policy.config import MLTeamsSection, Quota
from hub_ext.policy.ledger import PROFILE_LABEL, SERVER_ANNOTATION, TEAM_LABEL, USER_ANNOTATION
from hub_ext.service.admin.handlers import TeamsOverviewHandler
from hub_ext.service.admin.pages import QuotaRequestPage, TeamsPage
from hub_ext.service.admin.workflow import AdminWorkflow
from hub_ext.service.app import MLTeamsService
from hub_ext.service.store import Store
from tests.http_servers import in_thread, listen

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

SERVICE_TOKEN = "service-token-4711"
PAGES_TOKEN = "pages-token-0815"
API = "/services/mlteams/api"
PAGES = "/services/mlteams-admin"
CONFIG = {
    "profiles": {
        "cpu": {"image": "mlteams/cpu:1"},
        "gpu1": {"image": "mlteams/pytorch:1", "gpus": 1},
    },
    "teams": {
        "vision": {
            "groups": ["vision-engineers"],
            "lead_groups": ["vision-leads"],
            "quota": {"gpus": 4, "gpus_per_user": 2},
            "profiles": ["gpu1", "cpu"],
        },
        "nlp": {
            "groups": ["nlp-engineers"],
            "quota": {"gpus": 2, "gpus_per_user": 1},
            "profiles": ["gpu1", "cpu"],
        },
    },
}
# every user may open both services (a hub whose users' role holds `access:services`), so that
# the service itself, not the hub's OAuth, decides who sees what
ACCESS = ["access:services!service=mlteams", "access:services!service=mlteams-admin"]


def user(groups: list[str], scopes: Iterable[str] = (), admin: bool = False) -> dict[str, Any]:
    return {"groups": groups, "scopes": [*ACCESS, *scopes], "admin": admin}


def users() -> dict[str, dict[str, Any]]:
    """The hub's users; a fresh copy for each test, which may change them."""
    return {
        # a hub admin's token holds the hub's admin reach (as the hub expands admin:users)
        "root": user(
            [], ["list:users", "read:users", "read:servers", "delete:servers"], admin=True
        ),
        "lena": user(["vision-leads"], ["custom:mlteams:lead!group=vision"]),
        "alice": user(["vision-engineers"]),
        "bob": user(["nlp-engineers"]),
    }


def server(profile: str) -> dict[str, Any]:
    return {
        "name": "",
        "ready": True,
        "pending": None,
        "started": "2026-03-01T09:00:00.000000Z",
        "last_activity": "2026-03-01T10:30:00.000000Z",
        "user_options": {"profile": profile},
    }


SERVERS = {"alice": {"": server("gpu1")}, "bob": {"": server("gpu1")}}


def pod(team: str, who: str, gpus: int, uid: str) -> dict[str, Any]:
    resources = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {
            "name": f"jupyter-{who}",
            "namespace": f"team-{team}",
            "uid": uid,
            "labels": {TEAM_LABEL: team, PROFILE_LABEL: "gpu1"},
            "annotations": {USER_ANNOTATION: who, SERVER_ANNOTATION: f"{who}/"},
        },
        "spec": {"containers": [{"name": "notebook", "resources": {"limits": resources}}]},
        "status": {"phase": "Running", "startTime": "2026-03-01T09:00:05Z"},
    }


PODS = {
    "team-vision": [pod("vision", "alice", 1, "uid-alice")],
    "team-nlp": [pod("nlp", "bob", 1, "uid-bob")],
}

# every answer of every test: none may hold a token (no_secret_in_this_test)
BODIES: list[str] = []
SECRETS = [SERVICE_TOKEN, PAGES_TOKEN, *(f"{name}-token" for name in users())]


# -- the hub ----------------------------------------------------------------------------------


@dataclass
class Hub:
    users: dict[str, dict[str, Any]] = field(default_factory=users)
    # (user, server, token) of each DELETE of a server
    deleted: list[tuple[str, str, str]] = field(default_factory=list)

    def caller(self, token: str) -> str | None:
        name = token.removesuffix("-token")
        return name if token.endswith("-token") and name in self.users else None

    def visible(self, viewer: str) -> list[str]:
        """The users a token of ``viewer`` lists: all for an admin, the team for a lead."""
        model = self.users[viewer]
        if model["admin"]:
            return sorted(self.users)
        if "custom:mlteams:lead!group=vision" in model["scopes"]:
            vision = {"vision-engineers", "vision-leads"}
            return sorted(n for n, m in self.users.items() if vision & set(m["groups"]))
        return [viewer]


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
        name = self.hub.caller(self.token())
        if name is None:
            self.answer(403, {"status": 403, "message": "invalid token"})
            return
        self.answer(200, {"kind": "user", "name": name, **self.hub.users[name]})


class UserList(HubHandler):
    """As JupyterHub lists: pages only for a caller that accepts its pagination media type,
    else one plain page (here of ``PAGE`` users, to make several pages)."""

    PAGE = 2

    def get(self) -> None:
        name = self.hub.caller(self.token())
        assert name is not None, "the users are listed with the viewer's own token"
        assert self.get_query_argument("state") == "active"
        items = [
            {"kind": "user", "name": n, "groups": self.hub.users[n]["groups"]}
            | {"servers": SERVERS.get(n, {})}
            for n in self.hub.visible(name)
        ]
        offset = int(self.get_query_argument("offset", "0"))
        page = items[offset : offset + self.PAGE]
        if "application/jupyterhub-pagination+json" not in self.request.headers.get("Accept", ""):
            self.answer(200, page)
            return
        more = offset + self.PAGE < len(items)
        following = {"offset": offset + self.PAGE, "limit": self.PAGE} if more else None
        pagination = {"offset": offset, "limit": self.PAGE, "total": len(items), "next": following}
        self.answer(200, {"items": page, "_pagination": pagination})


class UserModel(HubHandler):
    def get(self, name: str) -> None:
        assert self.token() == SERVICE_TOKEN
        if name not in self.hub.users:
            self.answer(404, {"status": 404, "message": "no such user"})
        else:
            self.answer(
                200, {"kind": "user", "name": name, "groups": self.hub.users[name]["groups"]}
            )


class ServerOf(HubHandler):
    def delete(self, name: str, server_name: str = "") -> None:
        self.hub.deleted.append((name, server_name, self.token()))
        self.set_status(204)
        self.finish()


# -- the cluster --------------------------------------------------------------------------------


@dataclass
class FakeCluster:
    """Lists the pods of ``PODS``; records each set of ResourceQuotas it is given."""

    applied: list[dict[str, Quota]] = field(default_factory=list)

    async def pods(
        self, namespaces: Iterable[str], *, fresh: bool = False
    ) -> dict[str, list[dict[str, Any]] | None]:
        return {ns: list(PODS.get(ns, [])) for ns in namespaces}

    async def apply_quotas(self, config: MLTeamsSection, quotas: Any) -> list[str]:
        self.applied.append(dict(quotas))
        return []

    async def close(self) -> None:
        pass


# -- the world ----------------------------------------------------------------------------------


@dataclass
class World:
    hub: Hub
    cluster: FakeCluster
    store: Store
    app: web.Application
    port: int

    async def call(
        self,
        method: str,
        path: str,
        user: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> HTTPResponse:
        """``path`` on the service, with ``user``'s token, a JSON ``body`` or a ``form``."""
        sent = dict(headers or {})
        if user:
            sent["Authorization"] = f"token {user}-token"
        data = None
        if form is not None:
            data = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif method == "POST":
            data = json.dumps(body if body is not None else {})
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            headers=sent,
            body=data,
            follow_redirects=False,
            raise_error=False,
        )
        BODIES.append((response.body or b"").decode(errors="replace"))
        return response

    def hub_auth(self, handler: type[web.RequestHandler]) -> HubOAuth:
        """The ``HubOAuth`` that ``handler``'s routes sign callers in with."""
        for rule in self.app.wildcard_router.rules:
            if rule.target is handler:
                auth: HubOAuth = rule.target_kwargs["context"].hub_auth
                return auth
        raise AssertionError(f"no route of {handler.__name__}")

    def cookie(self, handler: type[web.RequestHandler], user: str) -> str:
        """The sign-in cookie ``HubOAuth`` sets after OAuth: the token, signed by the app."""
        name = self.hub_auth(handler).cookie_name
        value = web.create_signed_value(self.app.settings["cookie_secret"], name, f"{user}-token")
        return f"{name}={value.decode()}"

    def xsrf(self, handler: type[web.RequestHandler], user: str, session: str) -> str:
        """The hub's XSRF token of a cookie session: signed ``<session id>:<sha256 of token>``."""
        token_hash = hashlib.sha256(f"{user}-token".encode()).hexdigest()
        signed = web.create_signed_value(
            self.app.settings["cookie_secret"], "_xsrf", f"{session}:{token_hash}"
        )
        return base64.urlsafe_b64encode(signed).rstrip(b"=").decode()


@pytest.fixture
def hub() -> Iterator[tuple[Hub, int]]:
    the_hub = Hub()
    app = web.Application(
        [
            (r"/hub/api/user", WhoAmI, {"hub": the_hub}),
            (r"/hub/api/users", UserList, {"hub": the_hub}),
            (r"/hub/api/users/([^/]+)", UserModel, {"hub": the_hub}),
            (r"/hub/api/users/([^/]+)/server", ServerOf, {"hub": the_hub}),
            (r"/hub/api/users/([^/]+)/servers/([^/]+)", ServerOf, {"hub": the_hub}),
        ]
    )
    with in_thread(app) as port:
        yield the_hub, port


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The service's database: sqlite here, PostgreSQL in test_admin_api_postgres.py."""
    opened = Store(f"sqlite:///{tmp_path}/s.sqlite")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
async def world(
    store: Store, monkeypatch: pytest.MonkeyPatch, hub: tuple[Hub, int]
) -> AsyncIterator[World]:
    the_hub, hub_port = hub
    for name in ("JUPYTERHUB_BASE_URL", "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "mlteams")
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-mlteams")
    config = load_config(CONFIG)
    cluster = FakeCluster()
    service = MLTeamsService(
        service_url="http://127.0.0.1:1",
        hub_api_url=f"http://127.0.0.1:{hub_port}/hub/api",
        api_token=SERVICE_TOKEN,
        prefix="/services/mlteams/",
        pages_token=PAGES_TOKEN,
    )
    admin = AdminWorkflow(config, store, cluster)  # type: ignore[arg-type]
    app = service.make_app(config, admin=admin)
    server, port = listen(app)
    yield World(the_hub, cluster, store, app, port)
    server.stop()


@pytest.fixture(autouse=True)
def no_secret_in_this_test() -> Iterator[None]:
    """Each test's answers hold no token (the service's, the pages', any user's): checked after
    every test of this module, whichever tests run and in which order."""
    first = len(BODIES)
    yield
    for text in BODIES[first:]:
        assert not [secret for secret in SECRETS if secret in text]


def body(response: HTTPResponse) -> Any:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


def actions(world: World) -> list[str]:
    return [row.action for row in world.store.audit()]


# -- 1. the overview ----------------------------------------------------------------------------


async def test_an_admin_sees_every_team_with_its_quota_use_and_members(world: World) -> None:
    response = await world.call("GET", f"{API}/admin/teams", "root")
    assert response.code == 200
    teams = {team["team"]: team for team in body(response)["teams"]}
    assert sorted(teams) == ["nlp", "vision"]
    vision = teams["vision"]
    assert vision["quota"]["gpus"] == 4
    assert vision["quota"]["gpus_per_user"] == 2
    assert vision["gpus_in_use"] == 1
    [alice] = vision["members"]
    assert alice["user"] == "alice"
    assert alice["gpus"] == 1
    assert alice["servers"][0]["started"] == "2026-03-01T09:00:00.000000Z"
    assert alice["last_activity"] == "2026-03-01T10:30:00.000000Z"
    assert teams["nlp"]["quota"]["gpus"] == 2
    assert [m["user"] for m in teams["nlp"]["members"]] == ["bob"]


async def test_a_lead_sees_only_their_team(world: World) -> None:
    teams = body(await world.call("GET", f"{API}/admin/teams", "lena"))["teams"]
    assert [team["team"] for team in teams] == ["vision"]
    assert [m["user"] for m in teams[0]["members"]] == ["alice"]


async def test_a_member_who_leads_nothing_is_refused_with_a_message(world: World) -> None:
    response = await world.call("GET", f"{API}/admin/teams", "alice")
    assert response.code == 403
    assert "team leads and platform admins" in body(response)["message"]


@pytest.mark.parametrize("path", ["/admin/overrides?team=nlp", "/admin/audit?team=nlp"])
async def test_a_lead_asking_for_another_team_is_refused(world: World, path: str) -> None:
    response = await world.call("GET", API + path, "lena")
    assert response.code == 403
    assert "not team nlp" in body(response)["message"]


async def test_the_overview_as_csv(world: World) -> None:
    response = await world.call("GET", f"{API}/admin/teams?format=csv", "lena")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows[0][:5] == ["team", "user", "server", "profile", "gpus"]
    assert rows[1][:6] == ["vision", "alice", "", "gpu1", "1", "Running"]
    assert len(rows) == 2


# -- 2. and 3. a team's quota override ----------------------------------------------------------


async def override(world: World, who: str = "root", **change: Any) -> HTTPResponse:
    payload = {"gpus": 6, "hours": 1, "reason": "deadline"} | change
    return await world.call("POST", f"{API}/admin/teams/vision/override", who, payload)


async def test_an_admin_overrides_a_quota_and_the_cluster_and_audit_follow(world: World) -> None:
    response = await override(world)
    assert response.code == 201
    made = body(response)["override"]
    assert (made["team"], made["gpus"], made["created_by"]) == ("vision", 6, "root")

    listed = body(await world.call("GET", f"{API}/admin/overrides", "root"))["overrides"]
    assert [(o["id"], o["gpus"], o["reason"]) for o in listed] == [(made["id"], 6, "deadline")]
    assert world.cluster.applied[-1]["vision"].gpus == 6
    assert list(world.cluster.applied[-1]) == ["vision"]  # the other teams' are not touched

    [entry] = body(await world.call("GET", f"{API}/admin/audit", "root"))["audit"]
    assert (entry["action"], entry["actor"], entry["team"]) == ("quota-override", "root", "vision")
    assert entry["reason"] == "deadline"
    assert (entry["before"]["gpus"], entry["after"]["gpus"]) == (4, 6)


async def test_a_lead_raising_gpus_is_refused_and_nothing_is_half_done(world: World) -> None:
    response = await override(world, "lena")
    assert response.code == 403
    assert "platform admin" in body(response)["message"]
    assert world.store.overrides() == []
    assert world.store.audit() == []
    assert world.cluster.applied == []


async def test_an_override_without_a_reason_is_400(world: World) -> None:
    response = await override(world, reason="")
    assert response.code == 400
    assert "reason" in body(response)["message"]
    assert world.store.overrides() == []


async def test_revoking_an_override_restores_the_quota_once(world: World) -> None:
    made = body(await override(world))["override"]
    revoke = f"{API}/admin/overrides/{made['id']}/revoke"

    response = await world.call("POST", revoke, "root", {"reason": "done"})
    assert response.code == 200
    assert body(response)["override"]["revoked_by"] == "root"
    assert body(await world.call("GET", f"{API}/admin/overrides", "root"))["overrides"] == []
    assert [quotas["vision"].gpus for quotas in world.cluster.applied] == [6, 4]
    assert actions(world) == ["override-revoked", "quota-override"]

    again = await world.call("POST", revoke, "root", {"reason": "done"})
    assert again.code == 409
    assert len(world.cluster.applied) == 2
    assert actions(world) == ["override-revoked", "quota-override"]


# -- 4. quota requests --------------------------------------------------------------------------


async def request_gpus(world: World, who: str = "alice") -> HTTPResponse:
    payload = {"team": "vision", "gpus": 2, "hours": 2, "reason": "paper"}
    return await world.call("POST", f"{API}/quota-requests", who, payload)


async def test_a_member_asks_for_gpus_and_a_lead_approves(world: World) -> None:
    response = await request_gpus(world)
    assert response.code == 201
    filed = body(response)
    assert (filed["user"], filed["state"]) == ("alice", "pending")
    assert (await request_gpus(world)).code == 409

    pending = body(await world.call("GET", f"{API}/admin/quota-requests", "lena"))["requests"]
    assert [(r["id"], r["user"], r["gpus"]) for r in pending] == [(filed["id"], "alice", 2)]

    approved_at = time.time()
    decision = f"{API}/admin/quota-requests/{filed['id']}/decision"
    response = await world.call("POST", decision, "lena", {"decision": "approve"})
    assert response.code == 200
    decided = body(response)["request"]
    assert (decided["state"], decided["decided_by"]) == ("approved", "lena")
    assert decided["override_id"]

    [grant] = body(await world.call("GET", f"{API}/admin/overrides", "lena"))["overrides"]
    assert (grant["id"], grant["user"], grant["extra_gpus"]) == (decided["override_id"], "alice", 2)
    expires = datetime.fromisoformat(grant["expires_at"]).timestamp()
    assert abs(expires - (approved_at + 2 * 3600)) < 60
    assert {"quota-requested", "quota-request-approved"} <= set(actions(world))
    assert world.cluster.applied, "the ResourceQuotas follow the grant"


async def test_a_lead_cannot_decide_their_own_request(world: World) -> None:
    world.hub.users["lena"]["groups"].append("vision-engineers")
    filed = body(await request_gpus(world, "lena"))
    decision = f"{API}/admin/quota-requests/{filed['id']}/decision"
    response = await world.call("POST", decision, "lena", {"decision": "approve"})
    assert response.code == 403
    assert "your own" in body(response)["message"]
    assert world.store.quota_request(filed["id"]).state == "pending"  # type: ignore[union-attr]
    assert world.store.overrides() == []


async def test_rejecting_needs_a_comment(world: World) -> None:
    filed = body(await request_gpus(world))
    decision = f"{API}/admin/quota-requests/{filed['id']}/decision"
    response = await world.call("POST", decision, "lena", {"decision": "reject"})
    assert response.code == 400
    assert "comment" in body(response)["message"]
    assert world.store.quota_request(filed["id"]).state == "pending"  # type: ignore[union-attr]

    response = await world.call(
        "POST", decision, "lena", {"decision": "reject", "comment": "not this week"}
    )
    assert response.code == 200
    assert body(response)["request"]["state"] == "rejected"


# -- 5. stopping a server -----------------------------------------------------------------------


async def test_a_lead_stops_a_members_server_with_their_own_token(world: World) -> None:
    stop = f"{API}/admin/teams/vision/servers/alice/stop"
    response = await world.call("POST", stop, "lena", {"reason": "idle"})
    assert response.code == 200
    assert body(response) == {"team": "vision", "user": "alice", "server": "", "stopped": True}
    # the viewer's own token, so that the hub's own permissions apply, not the service's
    assert world.hub.deleted == [("alice", "", "lena-token")]

    [entry] = body(await world.call("GET", f"{API}/admin/audit?action=server-stopped", "lena"))[
        "audit"
    ]
    assert (entry["actor"], entry["subject"], entry["reason"]) == ("lena", "alice/", "idle")


async def test_a_server_without_a_pod_in_the_team_is_404(world: World) -> None:
    # bob's pod runs in team nlp, not vision
    stop = f"{API}/admin/teams/vision/servers/bob/stop"
    response = await world.call("POST", stop, "lena", {"reason": "idle"})
    assert response.code == 404
    assert world.hub.deleted == []
    assert world.store.audit() == []


async def test_a_lead_cannot_stop_servers_of_another_team(world: World) -> None:
    stop = f"{API}/admin/teams/nlp/servers/bob/stop"
    response = await world.call("POST", stop, "lena", {"reason": "idle"})
    assert response.code == 403
    assert world.hub.deleted == []
    assert world.store.audit() == []


# -- 6. XSRF on the API -------------------------------------------------------------------------


async def test_a_cookie_post_without_xsrf_is_refused_and_stores_nothing(world: World) -> None:
    cookie = world.cookie(TeamsOverviewHandler, "root")
    # the cookie signs root in: reading needs no XSRF token
    response = await world.call("GET", f"{API}/admin/overrides", headers={"Cookie": cookie})
    assert response.code == 200

    path = f"{API}/admin/teams/vision/override"
    payload = {"gpus": 6, "reason": "deadline"}
    response = await world.call("POST", path, body=payload, headers={"Cookie": cookie})
    assert response.code == 403
    assert "_xsrf" in body(response)["message"]
    assert world.store.overrides() == []
    assert world.store.audit() == []

    # the same request with the hub's XSRF token of that session is taken
    xsrf = world.xsrf(TeamsOverviewHandler, "root", "session-1")
    headers = {
        "Cookie": f"{cookie}; jupyterhub-session-id=session-1; _xsrf={xsrf}",
        "X-XSRFToken": xsrf,
    }
    response = await world.call("POST", path, body=payload, headers=headers)
    assert response.code == 201
    assert len(world.store.overrides()) == 1


# -- 7. the pages -------------------------------------------------------------------------------


def set_cookies(response: HTTPResponse) -> list[str]:
    """The ``name=value`` of each cookie the response set."""
    return [line.split(";", 1)[0] for line in response.headers.get_list("Set-Cookie")]


async def test_a_lead_gets_their_team_in_the_hubs_page(world: World) -> None:
    cookie = world.cookie(TeamsPage, "lena")
    response = await world.call("GET", f"{PAGES}/", headers={"Cookie": cookie})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert 'id="jupyterhub-logo"' in html  # the hub's own navigation bar (page.html)
    assert 'data-testid="team-vision"' in html
    assert "team-nlp" not in html


async def test_a_member_who_leads_nothing_gets_a_403_page_that_says_why(world: World) -> None:
    cookie = world.cookie(TeamsPage, "alice")
    response = await world.call("GET", f"{PAGES}/", headers={"Cookie": cookie})
    assert response.code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert 'data-testid="admin-error"' in html
    assert "for team leads and platform admins" in html
    assert "team-vision" not in html


async def test_a_page_form_needs_the_xsrf_token_it_was_rendered_with(world: World) -> None:
    cookie = world.cookie(TeamsPage, "lena")
    target = f"{PAGES}/teams/vision/override"
    form = {"gpus_per_user": "1", "reason": "too many idle GPUs"}

    refused = await world.call("POST", target, headers={"Cookie": cookie}, form=form)
    assert refused.code == 403
    assert world.store.overrides() == []

    page = await world.call("GET", f"{PAGES}/teams/vision", headers={"Cookie": cookie})
    assert page.code == 200
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode())
    assert xsrf is not None
    cookies = "; ".join([cookie, *set_cookies(page)])
    done = await world.call(
        "POST", target, headers={"Cookie": cookies}, form=form | {"_xsrf": xsrf.group(1)}
    )
    assert done.code == 303
    assert done.headers["Location"] == f"{PAGES}/teams/vision"
    [row] = world.store.overrides()
    assert (row.team, row.gpus_per_user, row.created_by) == ("vision", 1, "lena")


async def test_the_members_team_figures_show_their_grant_and_their_requests(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # no cluster for the team figures here: their GPU figures are the configured ones
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    figures = body(await world.call("GET", f"{API}/teams/vision", "alice"))
    assert figures["gpus"]["per_user_limit"] == 2
    assert figures["quota_requests"] == []

    filed = body(await request_gpus(world))
    decision = f"{API}/admin/quota-requests/{filed['id']}/decision"
    assert (await world.call("POST", decision, "lena", {"decision": "approve"})).code == 200

    figures = body(await world.call("GET", f"{API}/teams/vision", "alice"))
    assert figures["gpus"]["per_user_limit"] == 4  # 2, and 2 granted
    assert [(r["id"], r["state"]) for r in figures["quota_requests"]] == [(filed["id"], "approved")]
    # another member's cap is the team's
    world.hub.users["dora"] = user(["vision-engineers"])
    others = body(await world.call("GET", f"{API}/teams/vision", "dora"))
    assert others["gpus"]["per_user_limit"] == 2 and others["quota_requests"] == []


async def test_a_member_withdraws_their_own_pending_request_once(world: World) -> None:
    filed = body(await request_gpus(world))
    path = f"{API}/quota-requests/{filed['id']}"
    assert (await world.call("DELETE", path, "lena")).code == 404  # not lena's
    response = await world.call("DELETE", path, "alice")
    assert response.code == 200
    assert body(response)["state"] == "withdrawn"
    again = await world.call("DELETE", path, "alice")
    assert again.code == 409 and "withdrawn" in body(again)["message"]
    assert "quota-request-withdrawn" in actions(world)
    # a withdrawn request no longer blocks a new one
    assert (await request_gpus(world)).code == 201


async def test_a_member_asks_for_gpus_on_their_page_and_sees_the_outcome(world: World) -> None:
    cookie = world.cookie(QuotaRequestPage, "alice")
    page = await world.call(
        "GET", "/services/mlteams/quota-request?team=vision", headers={"Cookie": cookie}
    )
    assert page.code == 200
    html = page.body.decode()
    assert 'id="jupyterhub-logo"' in html  # the hub's own page.html
    assert '<option value="vision" selected>vision</option>' in html and "nlp" not in html
    assert "mlteams-admin" not in html  # no admin link for a member
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert xsrf is not None
    cookies = "; ".join([cookie, *set_cookies(page)])
    form = {"team": "vision", "gpus": "2", "hours": "0.5", "reason": "one more sweep"}

    forged = await world.call(
        "POST", "/services/mlteams/quota-request", headers={"Cookie": cookie}, form=form
    )
    assert forged.code == 403 and world.store.quota_requests() == []

    done = await world.call(
        "POST",
        "/services/mlteams/quota-request",
        headers={"Cookie": cookies},
        form=form | {"_xsrf": xsrf.group(1)},
    )
    assert done.code == 303
    [row] = world.store.quota_requests()
    assert (row.user, row.team, row.gpus, row.minutes, row.state) == (
        "alice",
        "vision",
        2,
        30,
        "pending",
    )
    # the lead rejects it; the member's page says so, with the comment
    decision = f"{API}/admin/quota-requests/{row.id}/decision"
    rejected = await world.call(
        "POST", decision, "lena", {"decision": "reject", "comment": "use the queue instead"}
    )
    assert rejected.code == 200
    again = await world.call("GET", "/services/mlteams/quota-request", headers={"Cookie": cookies})
    html = again.body.decode()
    assert "rejected" in html and "use the queue instead" in html and "30 min" in html


async def test_the_periodic_check_applies_every_quota_at_start_then_only_what_changed(
    world: World,
) -> None:
    admin = AdminWorkflow(load_config(CONFIG), world.store, world.cluster)  # type: ignore[arg-type]
    seen = await admin.expire_due(None)
    assert seen == {} and sorted(world.cluster.applied[-1]) == ["nlp", "vision"]
    assert (
        await world.call(
            "POST",
            f"{API}/admin/teams/nlp/override",
            "root",
            {"gpus": 3, "minutes": 1, "reason": "short test"},
        )
    ).code == 201
    assert sorted(world.cluster.applied[-1]) == ["nlp"]  # the change: that team only
    seen = await admin.expire_due(seen)
    assert len(seen) == 1 and sorted(world.cluster.applied[-1]) == ["nlp"]
    calls = len(world.cluster.applied)
    assert await admin.expire_due(seen) == seen
    assert len(world.cluster.applied) == calls  # nothing changed, nothing applied
    # its expiry: audited, and nlp's quota back to 2
    admin.clock = lambda: time.time() + 120
    assert await admin.expire_due(seen) == {}
    assert world.cluster.applied[-1]["nlp"].gpus == 2 and list(world.cluster.applied[-1]) == ["nlp"]
    assert "override-expired" in actions(world)
