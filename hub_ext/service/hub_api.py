"""The hub's REST API, called with the service's own token (``JUPYTERHUB_API_TOKEN``).

Only what the service's role allows (see ``hub_config.SERVICE_SCOPES``): shares of users'
servers, and the names and groups of users and groups.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

HUB_TIMEOUT_SECONDS = 20.0
PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"
"""Without it in ``Accept``, the hub answers a list call with a plain list of at most one page."""
PAGE_LIMIT = 200


class HubUnavailable(Exception):
    """The hub did not answer, or answered in a way the service cannot use."""


class HubRefused(Exception):
    """The hub answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


class HubAPI:
    """A small client of the hub's REST API for the service."""

    def __init__(self, api_url: str, token: str, timeout: float = HUB_TIMEOUT_SECONDS) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout

    async def request(
        self, method: str, path: str, body: Any = None, accept: str = "application/json"
    ) -> Any:
        """Call ``<api_url><path>``; the parsed answer, ``None`` when empty.

        Raises ``HubRefused`` for an error status and ``HubUnavailable`` when the hub does not
        answer.
        """
        request = HTTPRequest(
            self.api_url + path,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
                "Accept": accept,
            },
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as exc:
            if exc.response is None or exc.code >= 500:
                raise HubUnavailable(f"the hub answered {exc.code}") from None
            raise HubRefused(exc.code, _message(exc.response.body)) from None
        except OSError as exc:
            raise HubUnavailable(str(exc)) from None
        if not response.body:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            raise HubUnavailable("the hub's answer is not JSON") from None

    async def list_all(self, path: str) -> list[dict[str, Any]]:
        """Every item of a list endpoint (``users?state=active``), page after page as the hub
        gives them (asking for its paginated answer: a plain list stops at one page)."""
        joiner = "&" if "?" in path else "?"

        async def page_at(offset: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            page = await self.request(
                "GET",
                f"{path}{joiner}offset={offset}&limit={PAGE_LIMIT}",
                accept=PAGINATION_MEDIA_TYPE,
            )
            if isinstance(page, list):  # a hub without pagination: everything at once
                return [item for item in page if isinstance(item, dict)], {}
            if not isinstance(page, dict):
                raise HubUnavailable("the hub's list is not JSON")
            items = [item for item in page.get("items") or () if isinstance(item, dict)]
            return items, page.get("_pagination") or {}

        found, pagination = await page_at(0)
        following = pagination.get("next")
        total, size = pagination.get("total"), pagination.get("limit") or len(found)
        if following and isinstance(total, int) and isinstance(size, int) and size > 0:
            # the hub said how many: the other pages at once
            rest = await asyncio.gather(*(page_at(at) for at in range(size, total, size)))
            return found + [item for items, _ in rest for item in items]
        while following and found:
            items, pagination = await page_at(int(following.get("offset", len(found))))
            found += items
            following = pagination.get("next") if items else None
        return found

    async def user_groups(self, name: str) -> list[str] | None:
        """The hub groups of user ``name``; ``None`` when there is no such user."""
        try:
            model = await self.request("GET", _path("users", name))
        except HubRefused as exc:
            if exc.status == 404:
                return None
            raise
        groups = model.get("groups") if isinstance(model, dict) else None
        return [group for group in groups or () if isinstance(group, str)]

    async def group_members(self, name: str) -> list[str] | None:
        """The users of hub group ``name``; ``None`` when there is no such group."""
        try:
            model = await self.request("GET", _path("groups", name))
        except HubRefused as exc:
            if exc.status == 404:
                return None
            raise
        users = model.get("users") if isinstance(model, dict) else None
        return [user for user in users or () if isinstance(user, str)]

    async def grant(self, owner: str, server: str, kind: str, name: str) -> dict[str, Any]:
        """Share ``owner``'s server with one user or group (``kind``): the hub's share model."""
        share: dict[str, Any] = await self.request(
            "POST", "shares/" + _path(owner, server), {kind: name}
        )
        return share

    async def revoke(self, owner: str, server: str, kind: str, name: str) -> None:
        """Take back a share of ``owner``'s server from one user or group."""
        await self.request("PATCH", "shares/" + _path(owner, server), {kind: name})

    async def shares(self, owner: str) -> list[dict[str, Any]]:
        """Every share of ``owner``'s servers."""
        found = await self.request("GET", "shares/" + _path(owner))
        if isinstance(found, dict):
            found = found.get("items", [])
        return [share for share in found or () if isinstance(share, dict)]


def _message(body: bytes | None) -> str:
    try:
        parsed = json.loads(body or b"")
    except ValueError:
        return (body or b"").decode(errors="replace")[:200]
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])
    return str(parsed)[:200]
