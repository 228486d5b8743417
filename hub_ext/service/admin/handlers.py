"""The admin JSON API (``/services/mlteams/api/admin/...``) and the members' quota requests
(``/services/mlteams/api/quota-requests``): thin handlers over ``AdminWorkflow``.

The caller is the hub user of the token or cookie, with the scopes the hub reports for it; hub
data is read with that same token. Scripts call it with a JupyterHub API token.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from tornado import web

from hub_ext.policy.admin_access import AccessRefused, Viewer, require_pages, viewer_from_model
from hub_ext.policy.admin_forms import (
    FormError,
    decision_input,
    grant_input,
    quota_request_input,
    revoke_input,
    stop_input,
    team_override_input,
)
from hub_ext.policy.admin_overview import OverviewError, csv_text, filter_members, sort_members
from hub_ext.service.admin.workflow import AdminWorkflow, refusal
from hub_ext.service.handlers import APIHandler, ServiceContext
from hub_ext.service.hub_api import HubAPI
from hub_ext.service.store import StoreUnavailable

DB_UNAVAILABLE = (
    "The mlteams service's database is not answering; nothing was changed. Try again in a "
    "minute, or ask your platform admins."
)


class AdminContext(ServiceContext):
    """The service context with the admin workflow."""

    def __init__(self, base: ServiceContext, workflow: AdminWorkflow) -> None:
        super().__init__(base.hub_auth, base.hub, base.config)
        self.workflow = workflow


class AdminAPIHandler(APIHandler):
    context: AdminContext

    @property
    def workflow(self) -> AdminWorkflow:
        return self.context.workflow

    def viewer(self) -> Viewer:
        if self.request.method not in ("GET", "HEAD"):
            # a browser's cookie must come with the hub's XSRF token; a token needs none.
            # HubOAuth drops a cookie sent without it (no caller, which would read as "sign in
            # first"), so check before the caller: a signed-in cookie gets the 403 naming it
            signed_in = self.current_user  # first: it marks a token-authenticated request
            cookie_only = self.hub_auth.get_token(self) and not self.hub_auth.get_token(
                self, in_cookie=False
            )
            if signed_in or cookie_only:
                self.check_xsrf_cookie()
        return viewer_from_model(self.caller(), self.context.config.teams)

    def viewer_hub(self) -> HubAPI:
        """The hub's API with the caller's own token."""
        token = self.hub_auth.get_token(self) or ""
        hub = self.context.hub
        return HubAPI(hub.api_url, token, hub.timeout)

    async def run(self, call: Awaitable[Any]) -> Any:
        """Await an admin call, turning refusals into answers a person understands."""
        try:
            return await call
        except StoreUnavailable:
            raise web.HTTPError(503, DB_UNAVAILABLE) from None
        except (AccessRefused, FormError, OverviewError) as exc:
            status, message = refusal(exc) or (400, str(exc))
            raise web.HTTPError(status, message) from None
        except Exception as exc:
            found = refusal(exc)
            if found is None:
                raise
            raise web.HTTPError(found[0], found[1]) from None

    def checked(self, parse: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return parse(*args, **kwargs)
        except FormError as exc:
            raise web.HTTPError(400, exc.message) from None

    def admin_viewer(self) -> Viewer:
        viewer = self.viewer()
        try:
            require_pages(viewer)
        except AccessRefused as exc:
            raise web.HTTPError(403, exc.message) from None
        return viewer


class TeamsOverviewHandler(AdminAPIHandler):
    """``GET /api/admin/teams``: the teams the caller sees (``sort``, ``desc``, ``filter``;
    ``format=csv`` for a CSV file)."""

    async def get(self) -> None:
        viewer = self.admin_viewer()
        teams = await self.run(self.workflow.overview(viewer, self.viewer_hub()))
        teams = await self.run(_sorted_filtered(self, teams))
        if self.get_query_argument("format", "json") == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="mlteams-teams.csv"')
            self.finish(csv_text(teams))
            return
        self.reply(200, {"teams": teams})


async def _sorted_filtered(handler: web.RequestHandler, teams: list[Any]) -> list[Any]:
    key = handler.get_query_argument("sort", "user")
    descending = handler.get_query_argument("desc", "0") in ("1", "true")
    text = handler.get_query_argument("filter", "")
    for team in teams:
        team["members"] = sort_members(filter_members(team["members"], text), key, descending)
    return teams


class OverridesHandler(AdminAPIHandler):
    """``GET /api/admin/overrides``: the overrides in effect (``team`` to filter)."""

    async def get(self) -> None:
        viewer = self.admin_viewer()
        team = self.get_query_argument("team", None)
        found = await self.run(self.workflow.overrides(viewer, team))
        self.reply(200, {"overrides": found})


class TeamOverrideHandler(AdminAPIHandler):
    """``POST /api/admin/teams/<team>/override``: change a team's quota, with a reason and an
    optional expiry (``hours`` or ``minutes``)."""

    async def post(self, team: str) -> None:
        viewer = self.admin_viewer()
        form = self.checked(team_override_input, self.body(), now=self.workflow.clock())
        found = await self.run(self.workflow.set_team_override(viewer, team, form))
        self.reply(201, found)


class GrantHandler(AdminAPIHandler):
    """``POST /api/admin/teams/<team>/grants``: extra GPUs for one user, for some hours."""

    async def post(self, team: str) -> None:
        viewer = self.admin_viewer()
        form = self.checked(grant_input, self.body(), now=self.workflow.clock())
        found = await self.run(self.workflow.grant(viewer, team, form))
        self.reply(201, found)


class RevokeHandler(AdminAPIHandler):
    """``POST /api/admin/overrides/<id>/revoke``: end an override now, with a reason."""

    async def post(self, override_id: str) -> None:
        viewer = self.admin_viewer()
        reason = self.checked(revoke_input, self.body())
        found = await self.run(self.workflow.revoke(viewer, override_id, reason))
        self.reply(200, found)


class StopServerHandler(AdminAPIHandler):
    """``POST /api/admin/teams/<team>/servers/<user>/stop`` (the default server) or
    ``.../servers/<user>/<server>/stop``: stop a server of the team, with a reason."""

    async def post(self, team: str, user: str, server: str | None = None) -> None:
        viewer = self.admin_viewer()
        reason = self.checked(stop_input, self.body())
        found = await self.run(
            self.workflow.stop_server(
                viewer, self.viewer_hub(), team=team, user=user, server=server or "", reason=reason
            )
        )
        self.reply(200, found)


class QuotaRequestsAdminHandler(AdminAPIHandler):
    """``GET /api/admin/quota-requests``: requests of the caller's teams (``state``, default
    pending; ``all`` for every state)."""

    async def get(self) -> None:
        viewer = self.admin_viewer()
        state = self.get_query_argument("state", "pending")
        found = await self.run(self.workflow.requests(viewer, None if state == "all" else state))
        self.reply(200, {"requests": found})


class DecideRequestHandler(AdminAPIHandler):
    """``POST /api/admin/quota-requests/<id>/decision``: ``{"decision": "approve"|"reject",
    "comment": ...}``."""

    async def post(self, request_id: str) -> None:
        viewer = self.admin_viewer()
        decision = self.checked(decision_input, self.body())
        found = await self.run(self.workflow.decide_request(viewer, request_id, decision))
        self.reply(200, found)


class AuditTrailHandler(AdminAPIHandler):
    """``GET /api/admin/audit``: the audit of the caller's teams (``team``, ``actor``,
    ``action``), newest first."""

    async def get(self) -> None:
        viewer = self.admin_viewer()
        filters = {k: self.get_query_argument(k, None) for k in ("team", "actor", "action")}
        found = await self.run(self.workflow.audit(viewer, filters))
        self.reply(200, {"audit": found})


class MyQuotaRequestsHandler(AdminAPIHandler):
    """``GET /api/quota-requests``: the caller's own requests; ``POST`` asks for more GPUs
    (``{"team", "gpus", "hours" or "minutes", "reason"}``)."""

    async def get(self) -> None:
        name = self.caller()["name"]
        found = await self.run(self.workflow.my_requests(name))
        self.reply(200, {"requests": found})

    async def post(self) -> None:
        name = self.viewer().name
        form = self.checked(quota_request_input, self.body())
        groups = await self.hub_call(self.context.hub.user_groups(name))
        found = await self.run(self.workflow.request_quota(name, groups or (), form))
        self.reply(201, found)


class MyQuotaRequestHandler(AdminAPIHandler):
    """``DELETE /api/quota-requests/<id>``: withdraw one's own pending request."""

    async def delete(self, request_id: str) -> None:
        name = self.viewer().name
        found = await self.run(self.workflow.withdraw_request(name, request_id))
        self.reply(200, found)


def admin_api_routes(prefix: str, context: AdminContext) -> list[Any]:
    args = {"context": context}
    admin = rf"{prefix}/api/admin"
    team = rf"{admin}/teams/([^/]+)"
    return [
        (rf"{admin}/teams", TeamsOverviewHandler, args),
        (rf"{admin}/overrides", OverridesHandler, args),
        (rf"{team}/override", TeamOverrideHandler, args),
        (rf"{team}/grants", GrantHandler, args),
        (rf"{team}/servers/([^/]+)/stop", StopServerHandler, args),
        (rf"{team}/servers/([^/]+)/([^/]+)/stop", StopServerHandler, args),
        (rf"{admin}/overrides/([^/]+)/revoke", RevokeHandler, args),
        (rf"{admin}/quota-requests", QuotaRequestsAdminHandler, args),
        (rf"{admin}/quota-requests/([^/]+)/decision", DecideRequestHandler, args),
        (rf"{admin}/audit", AuditTrailHandler, args),
        (rf"{prefix}/api/quota-requests", MyQuotaRequestsHandler, args),
        (rf"{prefix}/api/quota-requests/([^/]+)", MyQuotaRequestHandler, args),
    ]
