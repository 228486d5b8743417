"""The admin pages (``/services/mlteams-admin/``): Jinja templates that extend the hub's own
``page.html`` (its navigation bar and styles), forms with the hub's XSRF token, no JavaScript of
their own.

The pages are a second hub service entry, ``mlteams-admin``, served by the same process: it is
listed in the hub's Services menu only for those who may open it (leads and platform admins hold
``access:services!service=mlteams-admin``), and it signs in through its own OAuth client, whose
token carries the viewer's admin scopes and the hub scopes the pages read with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web
from tornado.log import app_log

from hub_ext.policy.admin_access import AccessRefused, Viewer, require_pages, viewer_from_model
from hub_ext.policy.admin_forms import (
    FormError,
    decision_input,
    describe_minutes,
    grant_input,
    quota_request_input,
    revoke_input,
    stop_input,
    team_override_input,
)
from hub_ext.policy.admin_overview import (
    USER_SORT_KEYS,
    OverviewError,
    csv_text,
    describe_time,
    filter_members,
    sort_members,
)
from hub_ext.service.admin.workflow import AdminWorkflow, refusal
from hub_ext.service.hub_api import HubAPI
from hub_ext.service.store import StoreUnavailable

PAGES_SERVICE = "mlteams-admin"
TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "mlteams-admin-flash"
AUDIT_ACTIONS = (
    "quota-override",
    "quota-grant",
    "override-revoked",
    "override-expired",
    "server-stopped",
    "quota-requested",
    "quota-request-approved",
    "quota-request-rejected",
    "quota-request-withdrawn",
    "approved",
    "rejected",
    "promoted",
    "rolled-back",
)


def hub_templates() -> str:
    """The hub's own templates folder (``page.html``), where JupyterHub installed it."""
    from jupyterhub._data import DATA_FILES_PATH

    return os.path.join(DATA_FILES_PATH, "templates")


def template_environment(extra_paths: list[str] | None = None) -> Environment:
    """Our templates first, then the admin's (the chart's custom templates), then the hub's."""
    paths = [str(TEMPLATES), *(extra_paths or []), hub_templates()]
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(path) for path in paths]),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["duration"] = describe_minutes
    env.filters["when"] = describe_time
    return env


@dataclass(frozen=True)
class PageUser:
    """What the hub's ``page.html`` reads of ``user``."""

    name: str

    @property
    def json_escaped_name(self) -> str:
        import json

        return json.dumps(self.name)[1:-1]


@dataclass(frozen=True)
class ServiceLink:
    name: str
    href: str


class PagesContext:
    """What the page handlers use."""

    def __init__(
        self,
        hub_auth: HubOAuth,
        hub: HubAPI,
        config: Any,
        workflow: AdminWorkflow,
        env: Environment,
        promotions: Any = None,
        admin_url: str = "",
    ) -> None:
        self.hub_auth = hub_auth
        self.admin_url = admin_url or hub_auth.base_url
        self.hub = hub
        self.config = config
        self.workflow = workflow
        self.env = env
        self.promotions = promotions


class PageHandler(HubOAuthenticated, web.RequestHandler):
    """A page for a signed-in lead or platform admin; anyone else gets the 403 page."""

    def initialize(self, context: PagesContext) -> None:
        self.context = context
        self.hub_auth = context.hub_auth

    @property
    def workflow(self) -> AdminWorkflow:
        return self.context.workflow

    def prepare(self) -> None:
        self.set_header("Cache-Control", "no-store")

    def viewer(self) -> Viewer:
        model = self.current_user
        if not model:
            raise web.HTTPError(403)
        return viewer_from_model(model, self.context.config.teams)

    def viewer_hub(self) -> HubAPI:
        token = self.hub_auth.get_token(self) or ""
        hub = self.context.hub
        return HubAPI(hub.api_url, token, hub.timeout)

    def page_url(self, path: str = "", **query: str) -> str:
        url = self.hub_auth.base_url + path
        return url + ("?" + urlencode(query) if query else "")

    def render_page(self, template: str, status: int = 200, **values: Any) -> None:
        model = self.current_user or {}
        hub_base = self.hub_auth.hub_prefix
        scopes = set(model.get("scopes") or ())
        namespace = {
            "base_url": hub_base,
            "prefix": os.environ.get("JUPYTERHUB_BASE_URL", "/"),
            "user": PageUser(model.get("name", "")) if model else None,
            "static_url": lambda path, include_version=True: f"{hub_base}static/{path}",
            "logout_url": f"{hub_base}logout",
            "login_url": f"{hub_base}login",
            "services": self._menu(),
            "parsed_scopes": {scope.partition("!")[0] for scope in scopes},
            "xsrf_token": self.xsrf_token.decode("ascii"),
            "xsrf_form_html": self.xsrf_form_html,
            "no_spawner_check": True,
            "page_url": self.page_url,
            "flash": self._take_flash(),
            "viewer": self.viewer() if model else None,
            **values,
        }
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.context.env.get_template(template).render(**namespace))

    def _menu(self) -> list[ServiceLink]:
        """The Services menu: the admin pages, for those who have them."""
        model = self.current_user
        if not model or not self.viewer().has_pages:
            return []
        return [ServiceLink(PAGES_SERVICE, self.context.admin_url)]

    def _take_flash(self) -> dict[str, str] | None:
        raw = self.get_secure_cookie(FLASH_COOKIE, max_age_days=1)
        if raw is None:
            return None
        self.clear_cookie(FLASH_COOKIE, path=self.hub_auth.base_url)
        kind, _, text = raw.decode(errors="replace").partition(":")
        return {"kind": kind, "text": text}

    def done(self, target: str, message: str, kind: str = "success") -> None:
        """Back to ``target`` with ``message`` shown once (post, redirect, get)."""
        self.set_secure_cookie(
            FLASH_COOKIE, f"{kind}:{message}", path=self.hub_auth.base_url, httponly=True
        )
        self.redirect(target, status=303)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info is not None:
            exc = exc_info[1]
            if isinstance(exc, web.HTTPError) and exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            elif not isinstance(exc, web.HTTPError):
                message = "The mlteams service failed; the platform admins can find why in its log."
        self.render_page(
            "mlteams_admin_error.html", status=status_code, status_code=status_code, message=message
        )

    def allowed(self) -> Viewer:
        viewer = self.viewer()
        if self.request.method not in ("GET", "HEAD"):
            # after the sign-in was read: HubOAuth's check, with the hub's XSRF token
            self.check_xsrf_cookie()
        try:
            require_pages(viewer)
        except AccessRefused as exc:
            raise web.HTTPError(403, exc.message) from None
        return viewer

    async def act(self, target: str, call: Any, success: str) -> None:
        """Run an action from a form; its outcome is shown on ``target``."""
        try:
            await call
        except StoreUnavailable:
            self.done(
                target, "The service's database is not answering; nothing was changed.", "danger"
            )
            return
        except (AccessRefused, FormError, OverviewError, Exception) as exc:
            found = refusal(exc)
            if found is None:
                app_log.exception("mlteams admin: action failed")
                found = (500, "The action failed; the platform admins can find why in the log.")
            self.done(target, found[1], "danger")
            return
        self.done(target, success)

    def form(self) -> dict[str, str]:
        return {
            key: self.get_body_argument(key)
            for key in self.request.body_arguments
            if key != "_xsrf"
        }


class TeamsPage(PageHandler):
    """The teams overview: quotas, GPUs in use and reserved, queue, servers, members."""

    @web.authenticated
    async def get(self) -> None:
        viewer = self.allowed()
        teams = await self._teams(viewer)
        if self.get_query_argument("format", "") == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="mlteams-teams.csv"')
            self.finish(csv_text(teams))
            return
        self.render_page(
            "mlteams_teams.html",
            teams=teams,
            sort_keys=USER_SORT_KEYS,
            sort=self.get_query_argument("sort", "user"),
            desc=self.get_query_argument("desc", "0") == "1",
            filter_text=self.get_query_argument("filter", ""),
        )

    async def _teams(self, viewer: Viewer) -> list[Any]:
        try:
            teams = await self.workflow.overview(viewer, self.viewer_hub())
        except StoreUnavailable:
            raise web.HTTPError(503, "The service's database is not answering.") from None
        key = self.get_query_argument("sort", "user")
        text = self.get_query_argument("filter", "")
        only = self.get_query_argument("team", "")
        try:
            for team in teams:
                team["members"] = sort_members(
                    filter_members(team["members"], text),
                    key,
                    self.get_query_argument("desc", "0") == "1",
                )
        except OverviewError as exc:
            raise web.HTTPError(400, str(exc)) from None
        return [team for team in teams if not only or team["team"] == only]


class TeamPage(TeamsPage):
    """One team: members and their servers (stop), overrides and grants (set, end)."""

    @web.authenticated
    async def get(self, team: str) -> None:
        viewer = self.allowed()
        if team not in self.context.config.teams:
            raise web.HTTPError(404, "There is no such team.")
        if not viewer.sees(team):
            raise web.HTTPError(
                403, f"You lead {', '.join(sorted(viewer.lead_of)) or 'no team'}, not team {team}."
            )
        teams = await self.workflow.overview(viewer, self.viewer_hub())
        found = next(t for t in teams if t["team"] == team)
        self.render_page(
            "mlteams_team.html",
            team=found,
            role=viewer.role_in(team),
            lead_grant_limit=self.workflow.lead_grant_limit,
        )


class TeamActionPage(PageHandler):
    """The forms of a team's page: ``override``, ``grants``, ``stop``."""

    @web.authenticated
    async def post(self, team: str, action: str) -> None:
        viewer = self.allowed()
        target = self.page_url(f"teams/{quote(team, safe='')}")
        fields = self.form()
        now = self.workflow.clock()
        if action == "override":
            call = _parsed(team_override_input, fields, now=now)
            if isinstance(call, FormError):
                return self.done(target, call.message, "danger")
            await self.act(
                target, self.workflow.set_team_override(viewer, team, call), "Quota changed."
            )
        elif action == "grants":
            call = _parsed(grant_input, fields, now=now)
            if isinstance(call, FormError):
                return self.done(target, call.message, "danger")
            await self.act(target, self.workflow.grant(viewer, team, call), "GPUs granted.")
        elif action == "stop":
            user, server = fields.pop("user", ""), fields.pop("server", "")
            reason = _parsed(stop_input, fields)
            if isinstance(reason, FormError):
                return self.done(target, reason.message, "danger")
            await self.act(
                target,
                self.workflow.stop_server(
                    viewer, self.viewer_hub(), team=team, user=user, server=server, reason=reason
                ),
                f"Server of {user} stopped.",
            )
        else:
            raise web.HTTPError(404)


class RevokePage(PageHandler):
    @web.authenticated
    async def post(self, override_id: str) -> None:
        viewer = self.allowed()
        fields = self.form()
        target = fields.pop("next", "") or self.page_url()
        if not target.startswith(self.hub_auth.base_url):
            target = self.page_url()
        reason = _parsed(revoke_input, fields)
        if isinstance(reason, FormError):
            return self.done(target, reason.message, "danger")
        await self.act(target, self.workflow.revoke(viewer, override_id, reason), "Override ended.")


class RequestsPage(PageHandler):
    """Quota requests and high-stakes promotions waiting for a decision."""

    @web.authenticated
    async def get(self) -> None:
        viewer = self.allowed()
        requests = await self.workflow.requests(viewer, "pending")
        decided = [r for r in await self.workflow.requests(viewer, None) if r["state"] != "pending"]
        promotions = await self._pending_promotions(viewer)
        self.render_page(
            "mlteams_requests.html",
            requests=requests,
            decided=decided[:50],
            promotions=promotions,
            promotion_on=self.context.promotions is not None,
        )

    async def _pending_promotions(self, viewer: Viewer) -> list[Mapping[str, Any]]:
        workflow = self.context.promotions
        if workflow is None:
            return []
        from hub_ext.service.promotions import Caller, promotion_json

        caller = Caller(name=viewer.name, groups=tuple(sorted(viewer.groups)))
        found: list[Mapping[str, Any]] = []
        for team in sorted(self.context.config.teams):
            if not viewer.sees(team):
                continue
            try:
                rows = await workflow.promotions(caller, team=team, state="pending_approval")
            except Exception as exc:
                app_log.warning("mlteams admin: promotions of %s not listed: %s", team, exc)
                continue
            found += [promotion_json(row) for row in rows]
        return found


class DecidePage(PageHandler):
    """``requests/<id>/decision`` and ``promotions/<id>/decision``."""

    @web.authenticated
    async def post(self, kind: str, item: str) -> None:
        viewer = self.allowed()
        target = self.page_url("requests")
        decision = _parsed(decision_input, self.form())
        if isinstance(decision, FormError):
            return self.done(target, decision.message, "danger")
        verb = "Approved." if decision.approve else "Rejected."
        if kind == "requests":
            await self.act(target, self.workflow.decide_request(viewer, item, decision), verb)
            return
        workflow = self.context.promotions
        if workflow is None:
            raise web.HTTPError(404, "Promotion is not set up on this hub.")
        from hub_ext.service.promotions import Caller, PromotionError

        caller = Caller(name=viewer.name, groups=tuple(sorted(viewer.groups)))
        decide = workflow.approve if decision.approve else workflow.reject
        try:
            await decide(caller, item, decision.comment)
        except PromotionError as exc:
            return self.done(target, exc.message, "danger")
        self.done(target, verb)


class AuditPage(PageHandler):
    """The audit trail of the viewer's teams, newest first, with filters."""

    @web.authenticated
    async def get(self) -> None:
        viewer = self.allowed()
        filters = {k: self.get_query_argument(k, "") or None for k in ("team", "actor", "action")}
        try:
            entries = await self.workflow.audit(viewer, filters)
        except AccessRefused as exc:
            raise web.HTTPError(403, exc.message) from None
        self.render_page(
            "mlteams_audit.html",
            entries=entries,
            filters={k: v or "" for k, v in filters.items()},
            teams=[t for t in sorted(self.context.config.teams) if viewer.sees(t)],
            actions=AUDIT_ACTIONS,
        )


class QuotaRequestPage(PageHandler):
    """``/services/mlteams/quota-request``: a member asks their team's leads for more GPUs for a
    while, withdraws a pending request, and sees the outcome of their requests."""

    @web.authenticated
    async def get(self) -> None:
        user = self.member()
        self.render_page(
            "mlteams_quota_request.html",
            teams=self._teams(user),
            chosen=self.get_query_argument("team", ""),
            requests=await self.workflow.my_requests(user["name"]),
        )

    @web.authenticated
    async def post(self) -> None:
        user = self.member()
        fields = self.form()
        target = self.page_url("quota-request")
        withdraw = fields.pop("withdraw", "")
        if withdraw:
            await self.act(
                target, self.workflow.withdraw_request(user["name"], withdraw), "Withdrawn."
            )
            return
        form = _parsed(quota_request_input, fields)
        if isinstance(form, FormError):
            return self.done(target, form.message, "danger")
        await self.act(
            target,
            self.workflow.request_quota(user["name"], user.get("groups") or (), form),
            "Asked. Your team's leads see your request on their admin page.",
        )

    def member(self) -> dict[str, Any]:
        model = self.current_user
        if not model:
            raise web.HTTPError(403)
        if self.request.method not in ("GET", "HEAD"):
            self.check_xsrf_cookie()
        return dict(model)

    def _teams(self, user: Mapping[str, Any]) -> list[Any]:
        from hub_ext.policy.membership import user_teams

        return [m for m in user_teams(self.context.config, user.get("groups") or ())]


def _parsed(parse: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return parse(*args, **kwargs)
    except FormError as exc:
        return exc


class PagesCallbackHandler(HubOAuthCallbackHandler):
    def initialize(self, context: PagesContext) -> None:
        self.hub_auth = context.hub_auth


def member_page_routes(prefix: str, context: PagesContext) -> list[Any]:
    """The members' page, under the ``mlteams`` service itself (every user may open it)."""
    return [(rf"{prefix}/quota-request", QuotaRequestPage, {"context": context})]


def page_routes(prefix: str, context: PagesContext) -> list[Any]:
    args = {"context": context}
    return [
        (rf"{prefix}/?", TeamsPage, args),
        (rf"{prefix}/teams/([^/]+)", TeamPage, args),
        (rf"{prefix}/teams/([^/]+)/(override|grants|stop)", TeamActionPage, args),
        (rf"{prefix}/overrides/([^/]+)/revoke", RevokePage, args),
        (rf"{prefix}/requests", RequestsPage, args),
        (rf"{prefix}/(requests|promotions)/([^/]+)/decision", DecidePage, args),
        (rf"{prefix}/audit", AuditPage, args),
        (rf"{prefix}/oauth_callback", PagesCallbackHandler, args),
    ]
