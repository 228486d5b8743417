"""``/mlteams/quota-requests``: ask the team's leads for more GPUs for a while, from the side
panel, and follow or withdraw the request.

Each request goes on to the hub's ``mlteams`` service (``/api/quota-requests``) with the
server's own hub token, which names the user; the service checks, files and decides (a lead
approves or rejects on the hub's admin pages). A request is always for this server's team: the
body's ``team`` is set here, and a body naming another team is refused. The service's answers
come back as they are, its refusals (4xx) included.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from tornado import web
from tornado.httpclient import HTTPResponse

from server_ext.server.promote_handlers import ServiceDown, ServiceHandler

NOT_SET_UP = (
    "Asking for more GPUs is not set up for this server: the hub did not give it the address "
    "of the team service (MLTEAMS_SERVICE_URL). Ask your platform admins."
)
NOT_ANSWERING = "The team service is not answering; try again in a minute."
REQUEST_ID_PATTERN = r"[0-9A-Za-z-]{1,64}"


class QuotaRequestHandler(ServiceHandler):
    """Forwards to the service's quota requests, in words of its own when there is no service
    or no answer."""

    async def quota_call(self, method: str, path: str, body: object = None) -> HTTPResponse:
        try:
            return await self.call_service(method, path, body=body)
        except ServiceDown as exc:
            if exc.status_code == 409:
                raise ServiceDown(409, NOT_SET_UP) from None
            raise ServiceDown(503, NOT_ANSWERING) from None


class QuotaRequestsHandler(QuotaRequestHandler):
    """``GET /mlteams/quota-requests``: the user's own requests, newest first; ``POST`` asks
    the leads of this server's team for more GPUs (``{"gpus", "hours" or "minutes",
    "reason"}``)."""

    @web.authenticated
    async def get(self) -> None:
        self.relay(await self.quota_call("GET", "quota-requests"))

    @web.authenticated
    async def post(self) -> None:
        team, _ = self.identity()
        body = self.json_body()
        named = body.get("team")
        if named is not None and named != team:
            self.fail(
                400,
                f"You can ask for GPUs only for this server's team ({team}), not {named!r}: "
                "start a server of that team and ask from there.",
            )
        body["team"] = team
        self.relay(await self.quota_call("POST", "quota-requests", body=body))


class QuotaRequestWithdrawHandler(QuotaRequestHandler):
    """``DELETE /mlteams/quota-requests/<id>``: withdraw one's own pending request."""

    @web.authenticated
    async def delete(self, request_id: str) -> None:
        if not re.fullmatch(REQUEST_ID_PATTERN, request_id):
            self.fail(400, "a quota request id is letters, digits and dashes")
        path = f"quota-requests/{quote(request_id, safe='')}"
        self.relay(await self.quota_call("DELETE", path))


def quota_request_handlers() -> list[tuple[str, type]]:
    return [
        (r"/mlteams/quota-requests", QuotaRequestsHandler),
        # an unnamed group, as /mlteams/datasets/<name>: the id comes as the one argument
        (r"/mlteams/quota-requests/([^/]+)", QuotaRequestWithdrawHandler),
    ]
