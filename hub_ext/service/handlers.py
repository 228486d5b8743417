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
from hub_ext.service.hub_api import HubAPI, HubRefused, HubUnavailable

HUB_UNAVAILABLE = "The hub is not answering right now; try again in a minute."


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
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info is not None:
            exc = exc_info[1]
            if isinstance(exc, web.HTTPError) and exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            elif not isinstance(exc, web.HTTPError):
                message = "The sharing service failed; the platform admins can find why in its log."
        self.finish(json.dumps({"status": status_code, "message": message}))

    def caller(self) -> dict[str, Any]:
        """The signed-in user calling, as the hub describes them."""
        model = self.current_user
        if not model:
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
        kind, names = _hub_names(target, grant.groups)
        shares = [
            await self._on_server(server, hub.grant(owner, server, kind, name)) for name in names
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
        team = self.context.config.teams.get(target.name) if target.kind == "team" else None
        kind, names = _hub_names(target, team_hub_groups(team) if team else (target.name,))
        for name in names:
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

    def _target(self) -> ShareTarget:
        try:
            return parse_target(self.body())
        except SharingRefused as exc:
            raise web.HTTPError(exc.http_status, exc.message) from None

    async def _decide(self, caller: dict[str, Any], target: ShareTarget) -> ShareGrant:
        hub = self.context.hub
        config = self.context.config
        target_groups: list[str] | None = None
        existing: list[str] | None = None
        if target.kind == "user":
            target_groups = await self.hub_call(hub.user_groups(target.name))
        elif target.name in config.teams:
            existing = [
                group
                for group in team_hub_groups(config.teams[target.name])
                if await self.hub_call(hub.group_exists(group))
            ]
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


def _hub_names(target: ShareTarget, groups: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The hub's kind of share (``user`` or ``group``) and the names it is made with."""
    if target.kind == "user":
        return "user", (target.name,)
    return "group", groups


def _grant_refusal(exc: HubRefused, server: str) -> tuple[int, str]:
    if exc.status == 404:
        if server:
            return 404, f"You have no server named {server!r}; start it once, then share it."
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
