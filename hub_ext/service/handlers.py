"""The service's JSON API: share one's own server with a teammate or a team, list and revoke.

Callers are identified by their JupyterHub token or the service's OAuth cookie (``HubOAuth``),
never by anything in the request. The server shared is always the caller's own: the URL names
only the server, and the owner is the caller.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from importlib import resources
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web
from tornado.log import app_log

from hub_ext.policy.config import MLTeamsSection
from hub_ext.policy.sharing import (
    ShareGrant,
    ShareTarget,
    SharingRefused,
    decide_share,
    parse_target,
    team_for_group,
    team_hub_groups,
)
from hub_ext.policy.validation import excerpt
from hub_ext.service.hub_api import HubAPI, HubRefused, HubUnavailable

HUB_UNAVAILABLE = "The hub is not answering right now; try again in a minute."


class _Redirect(web.HTTPError):
    """Send a browser elsewhere (to sign in) instead of answering."""

    def __init__(self, url: str) -> None:
        super().__init__(302)
        self.url = url


class ServiceContext:
    """What every handler of the service uses: the caller's authentication, the hub, the teams."""

    def __init__(self, hub_auth: HubOAuth, hub: HubAPI, config: MLTeamsSection) -> None:
        self.hub_auth = hub_auth
        self.hub = hub
        self.config = config


class APIHandler(HubOAuthenticated, web.RequestHandler):
    """JSON in and out; every error is ``{"status": ..., "message": ...}``."""

    def initialize(self, context: ServiceContext) -> None:
        self.context = context
        self.hub_auth = context.hub_auth

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], _Redirect):
            self.clear_header("Content-Type")
            self.redirect(exc_info[1].url)
            return
        message = self._reason
        if exc_info is not None:
            exc = exc_info[1]
            if isinstance(exc, web.HTTPError) and exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            elif not isinstance(exc, web.HTTPError):
                message = "The mlteams service failed; the platform admins can find why in its log."
        self.finish(json.dumps({"status": status_code, "message": message}))

    def caller(self) -> dict[str, Any]:
        """The signed-in user calling, as the hub describes them."""
        model = self.current_user
        if not model:
            if self.request.method == "GET" and "text/html" in self.request.headers.get(
                "Accept", ""
            ):
                # a browser: sign in through the hub, then come back here
                raise _Redirect(self.get_login_url())
            raise web.HTTPError(401, "Sign in to JupyterHub first, or send your JupyterHub token.")
        if model.get("kind", "user") != "user":
            raise web.HTTPError(403, "Only users share their servers.")
        return dict(model)

    def body(self) -> Any:
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, "The request body is not valid JSON.") from None

    def reply(self, status: int, model: Any) -> None:
        self.set_status(status)
        self.finish(json.dumps(model))

    async def hub_call(self, call: Awaitable[Any]) -> Any:
        """Await a hub call, turning the hub's failures into messages for the user."""
        try:
            return await call
        except HubUnavailable as exc:
            app_log.warning("mlteams: the hub did not answer: %s", exc)
            raise web.HTTPError(503, HUB_UNAVAILABLE) from None
        except HubRefused as exc:
            if exc.status == 403:
                app_log.error("mlteams: the hub refused the service: %s", exc.message)
                raise web.HTTPError(
                    502,
                    "The sharing service is missing a permission on the hub; "
                    "ask your platform admins to check its role (docs/admin/sharing.md).",
                ) from None
            raise


class SharesHandler(APIHandler):
    """``GET /api/shares``: the shares of every server of the caller."""

    async def get(self) -> None:
        owner = self.caller()["name"]
        shares = await self.hub_call(self.context.hub.shares(owner))
        for share in shares:
            group = share.get("group") or {}
            share["team"] = (
                team_for_group(self.context.config, group["name"]) if group.get("name") else None
            )
        self.reply(200, {"shares": shares})


class ServerSharesHandler(APIHandler):
    """``POST`` and ``DELETE /api/shares/<server>``: share the caller's server, or stop sharing
    it, with one user or one team (empty server name: the default server)."""

    async def post(self, server: str) -> None:
        caller = self.caller()
        owner = caller["name"]
        target = self._target()
        grant = await self._decide(caller, target)
        hub = self.context.hub
        shares = [
            await self._on_server(server, hub.grant(owner, server, kind, name))
            for kind, name in _hub_names(grant.groups, grant.users)
        ]
        app_log.info(
            "mlteams: %s shared server %r with %s %s", owner, server, target.kind, target.name
        )
        self.reply(
            201,
            {
                "server": {"owner": owner, "name": server},
                "shared_with": {target.kind: target.name},
                "team": grant.team,
                "shares": shares,
            },
        )

    async def delete(self, server: str) -> None:
        owner = self.caller()["name"]
        target = self._target()
        if target.kind == "user":
            groups: tuple[str, ...] = ()
            users: tuple[str, ...] = (target.name,)
        else:
            team_groups = await self._team_groups(target.name)
            groups = tuple(team_groups)
            users = tuple(
                sorted({u for members in team_groups.values() for u in members} - {owner})
            )
        for kind, name in _hub_names(groups, users):
            await self._on_server(server, self.context.hub.revoke(owner, server, kind, name))
        app_log.info(
            "mlteams: %s stopped sharing server %r with %s %s",
            owner,
            server,
            target.kind,
            target.name,
        )
        self.set_status(204)
        self.finish()

    async def _on_server(self, server: str, call: Awaitable[Any]) -> Any:
        """A hub call about one of the caller's servers; a missing server is named."""
        try:
            return await self.hub_call(call)
        except HubRefused as exc:
            raise web.HTTPError(*_grant_refusal(exc, server)) from None

    async def _team_groups(self, team: str) -> dict[str, list[str]]:
        """The hub groups of ``team`` that exist, with their members."""
        config = self.context.config
        if team not in config.teams:
            return {}
        found: dict[str, list[str]] = {}
        for group in team_hub_groups(config.teams[team]):
            members = await self.hub_call(self.context.hub.group_members(group))
            if members is not None:
                found[group] = members
        return found

    def _target(self) -> ShareTarget:
        try:
            return parse_target(self.body())
        except SharingRefused as exc:
            raise web.HTTPError(exc.http_status, exc.message) from None

    async def _decide(self, caller: dict[str, Any], target: ShareTarget) -> ShareGrant:
        hub = self.context.hub
        config = self.context.config
        target_groups: list[str] | None = None
        existing: dict[str, list[str]] | None = None
        if target.kind == "user":
            target_groups = await self.hub_call(hub.user_groups(target.name))
        elif target.name in config.teams:
            existing = await self._team_groups(target.name)
        try:
            return decide_share(
                config,
                config.sharing,
                owner=caller["name"],
                owner_groups=caller.get("groups") or (),
                target=target,
                target_groups=target_groups,
                existing_groups=existing,
            )
        except SharingRefused as exc:
            raise web.HTTPError(exc.http_status, exc.message) from None


def _hub_names(groups: tuple[str, ...], users: tuple[str, ...]) -> list[tuple[str, str]]:
    """The hub's shares to make or take back: ``(kind, name)``, groups first."""
    return [("group", group) for group in groups] + [("user", user) for user in users]


def _grant_refusal(exc: HubRefused, server: str) -> tuple[int, str]:
    if exc.status == 404:
        if server:
            return 404, f"You have no server named {excerpt(server)}; start it once, then share it."
        return 404, "You have not started your server yet; start it once, then share it."
    return exc.status, f"The hub refused: {exc.message}"


class OpenAPIHandler(web.RequestHandler):
    """``GET /api/openapi.yaml``: the description of this API."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml; charset=utf-8")
        self.finish(resources.files("hub_ext.service").joinpath("openapi.yaml").read_text())


class CallbackHandler(HubOAuthCallbackHandler):
    """The end of the hub's OAuth sign-in into the service (browser callers)."""

    def initialize(self, context: ServiceContext) -> None:
        self.hub_auth = context.hub_auth
