"""``GET /api/teams/<team>``: a team's live figures for the side panel of its members.

The GPUs of the team namespace's ResourceQuota and the caller's own pods come from the cluster,
read with the service's Kubernetes access; the spawns waiting for GPUs from the hub's view of
the members' servers; the promotion rules from the team's configuration. The caller is the hub
user of the token or cookie, and must be a member of the team (their hub groups, read by the
service from the hub). The shaping is pure: ``hub_ext.policy.team_figures``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config import ConfigException
from tornado import web
from tornado.log import app_log

from hub_ext.policy.config import MLTeamsConfig, Team
from hub_ext.policy.manifests import QUOTA_NAME
from hub_ext.policy.membership import user_teams
from hub_ext.policy.sharing import team_hub_groups
from hub_ext.policy.team_figures import (
    ClusterReading,
    PendingSpawn,
    pending_spawns,
    pod_summaries,
    spawn_queue,
    team_figures,
)
from hub_ext.policy.validation import excerpt
from hub_ext.service.handlers import APIHandler, ServiceContext
from hub_ext.service.hub_api import HubAPI, HubRefused, HubUnavailable
from hub_ext.service.kube import kube_client
from hub_ext.service.promotion_settings import NOT_SET_UP, PromotionConfig

KUBE_TIMEOUT_SECONDS = 10.0
KUBE_ERRORS = (ApiException, aiohttp.ClientError, asyncio.TimeoutError, ConfigException, OSError)
Connect = Callable[[], Awaitable[client.ApiClient]]


def _why(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


class TeamCluster:
    """Reads a team namespace's ResourceQuota and pods with the service's Kubernetes access
    (the hub's service account in its pod, else a kubeconfig), one API client per reading."""

    def __init__(self, connect: Connect = kube_client, timeout: float = KUBE_TIMEOUT_SECONDS):
        self.connect = connect
        self.timeout = timeout

    async def read(self, namespace: str) -> ClusterReading:
        """The quota and pods of ``namespace``; each ``None`` when the cluster did not give it."""
        try:
            api = await self.connect()
        except KUBE_ERRORS as exc:
            app_log.warning("mlteams: no Kubernetes API client: %s", _why(exc))
            return ClusterReading(None, None)
        async with api:
            core = client.CoreV1Api(api)
            quota, pods = await asyncio.gather(
                core.read_namespaced_resource_quota(
                    QUOTA_NAME, namespace, _request_timeout=self.timeout
                ),
                core.list_namespaced_pod(namespace, _request_timeout=self.timeout),
                return_exceptions=True,
            )
            return ClusterReading(
                self._plain(api, quota, f"ResourceQuota {namespace}/{QUOTA_NAME}"),
                self._plain_items(api, pods, f"the pods of namespace {namespace}"),
            )

    @staticmethod
    def _plain(api: client.ApiClient, found: Any, what: str) -> dict[str, Any] | None:
        if isinstance(found, BaseException):
            if not isinstance(found, KUBE_ERRORS):
                raise found
            app_log.warning("mlteams: could not read %s: %s", what, _why(found))
            return None
        plain: dict[str, Any] = api.sanitize_for_serialization(found)
        return plain

    @classmethod
    def _plain_items(cls, api: client.ApiClient, found: Any, what: str) -> list[Any] | None:
        listed = cls._plain(api, found, what)
        return None if listed is None else list(listed.get("items") or ())


async def _user_model(hub: HubAPI, name: str) -> dict[str, Any] | None:
    """The hub's model of user ``name`` as the service may see it; ``None`` when gone."""
    try:
        model = await hub.request("GET", "users/" + quote(name, safe=""))
    except HubRefused as exc:
        if exc.status == 404:
            return None
        raise
    return model if isinstance(model, dict) else None


async def pending_in_team(
    hub: HubAPI, config: MLTeamsConfig, team: Team
) -> list[PendingSpawn] | None:
    """The members' servers pending spawn in ``team`` with GPUs; ``None`` when the hub did not
    answer. Empty when the hub shows the service no servers (its role lacks ``read:servers``)."""
    try:
        members: set[str] = set()
        for group in team_hub_groups(team):
            members.update(await hub.group_members(group) or ())
        if not members:
            return []
        first, *others = sorted(members)
        models = [await _user_model(hub, first)]
        if models[0] is not None and "servers" not in models[0]:
            return []
        models += await asyncio.gather(*(_user_model(hub, name) for name in others))
    except (HubUnavailable, HubRefused) as exc:
        app_log.warning("mlteams: the hub did not tell team %s's spawns: %s", team.name, exc)
        return None
    found: list[PendingSpawn] = []
    for model in models:
        if model is not None:
            found += pending_spawns(config, team.name, model) or []
    return found


class TeamContext(ServiceContext):
    """The service context with the cluster to read and whether promotion is set up."""

    def __init__(
        self,
        base: ServiceContext,
        cluster: TeamCluster,
        promotion_unavailable: str | None,
        admin: Any = None,
    ) -> None:
        super().__init__(base.hub_auth, base.hub, base.config)
        self.cluster = cluster
        self.promotion_unavailable = promotion_unavailable
        # the admin workflow (``AdminWorkflow``): the caller's own cap and quota requests
        self.admin = admin


class TeamHandler(APIHandler):
    """``GET /api/teams/<team>``: the team's GPUs, spawn queue and promotion rules, for its
    members."""

    context: TeamContext

    async def get(self, team_name: str) -> None:
        name = self.caller()["name"]
        config = self.context.config
        team = config.teams.get(team_name)
        if team is None:
            raise web.HTTPError(404, f"There is no team {excerpt(team_name)}.")
        groups = await self.hub_call(self.context.hub.user_groups(name))
        if team.name not in {membership.name for membership in user_teams(config, groups or ())}:
            raise web.HTTPError(
                403, f"You are not a member of team {team.name}; only its members see its figures."
            )
        reading, pending, own = await asyncio.gather(
            self.context.cluster.read(team.namespace),
            pending_in_team(self.context.hub, config, team),
            self._own_quota(team, name),
        )
        pods = pod_summaries(reading.pods or ())
        queue = None if pending is None else spawn_queue(pending, pods)
        figures = team_figures(
            team,
            user=name,
            reading=reading,
            queue=queue,
            promotion_unavailable=self.context.promotion_unavailable,
            per_user_limit=own[0],
            requests=own[1],
        )
        self.reply(200, figures)

    async def _own_quota(
        self, team: Team, user: str
    ) -> tuple[int | None, list[dict[str, Any]] | None]:
        """The caller's cap in effect and their quota requests in ``team``; ``(None, None)``
        without the admin workflow or when its database does not answer."""
        admin = self.context.admin
        if admin is None:
            return None, None
        try:
            return await admin.own_quota(team, user)
        except Exception as exc:
            app_log.warning("mlteams: the caller's quota in %s is not known: %s", team.name, exc)
            return None, None


def team_routes(
    prefix: str,
    context: ServiceContext,
    promotion: PromotionConfig,
    cluster: TeamCluster | None = None,
    admin: Any = None,
) -> list[Any]:
    """The route of the team figures; promotion is unavailable where the service has none."""
    unavailable = None if promotion.enabled else NOT_SET_UP
    team_context = TeamContext(context, cluster or TeamCluster(), unavailable, admin)
    return [(rf"{prefix}/api/teams/([^/]+)", TeamHandler, {"context": team_context})]
