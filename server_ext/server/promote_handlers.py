"""``/mlteams/promote`` and the promotions' status: the notebook's way to the governed registry.

The server holds no registry credentials and decides nothing: each request goes on to the hub's
``mlteams`` service with the server's own hub token (``$JUPYTERHUB_API_TOKEN``), which names the
user. The service evaluates, gates, freezes and registers; its answer comes back as it is, the
gate results item by item. A user could call the service directly with the same token: these
endpoints are convenience, the control is the service and the MLflow server's plugin.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from server_ext.server.handlers import MLTeamsHandler

NOT_CONFIGURED = (
    "Promotion is not set up for this server: the hub did not give it the address of the "
    "mlteams service (MLTEAMS_SERVICE_URL). Ask your platform admins."
)
UNAVAILABLE = "The promotion service is not answering right now; try again in a minute."
ID_PATTERN = r"[0-9a-f]{32}"
LIST_FILTERS = ("team", "model", "state")


class ServiceDown(web.HTTPError):
    """The hub gave this server no service (409), or the service did not answer (503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message, reason=message.split(":")[0][:60])


class ServiceHandler(MLTeamsHandler):
    """Forwards one request to the ``mlteams`` service and answers with the service's reply."""

    async def call_service(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> HTTPResponse:
        """The service's answer to one request, whatever its status; ``ServiceDown`` when there
        is no service or no answer from it (``timeout`` seconds, default ``service_timeout``)."""
        base = self.mlteams.service_url
        token = self.mlteams.hub_api_token
        if not base or not token:
            raise ServiceDown(409, NOT_CONFIGURED)
        url = base.rstrip("/") + "/api/" + path
        if query:
            url += "?" + urlencode(query)
        seconds = self.mlteams.service_timeout if timeout is None else timeout
        request = HTTPRequest(
            url,
            method=method,
            headers={
                "Authorization": f"token {token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=seconds,
            connect_timeout=min(30.0, seconds),
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            # refused or reset connections; with raise_error=False only timeouts and closed
            # streams are HTTPClientError
            self.log.warning("mlteams: the promotion service did not answer: %s", exc)
            raise ServiceDown(503, UNAVAILABLE) from None
        content_type = response.headers.get("Content-Type", "")
        if response.code == 599 or not content_type.startswith(
            ("application/json", "text/markdown")
        ):
            # no answer, or one from something in between (a proxy's error page)
            self.log.warning("mlteams: the promotion service answered %s", response.code)
            raise ServiceDown(503, UNAVAILABLE)
        return response

    def relay(self, response: HTTPResponse) -> None:
        """Answer with the service's reply as it came."""
        self.set_status(response.code)
        content_type = response.headers.get("Content-Type", "")
        self.finish(response.body or b"", set_content_type=content_type)

    async def forward(
        self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None
    ) -> None:
        self.relay(await self.call_service(method, path, body=body, query=query))

    def json_body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            self.fail(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            self.fail(400, "send a JSON object")
        return body


class PromoteHandler(ServiceHandler):
    """``POST /mlteams/promote``: promote a model this user logged, in the server's team unless
    the body names another of the user's teams."""

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        if self.mlteams.team and "team" not in body:
            body["team"] = self.mlteams.team
        wait = self.get_query_argument("wait", None)
        seconds = str(self.mlteams.promote_wait_seconds) if wait is None else wait
        if not re.fullmatch(r"\d{1,4}", seconds):
            self.fail(400, "wait must be a whole number of seconds")
        await self.forward("POST", "promotions", body=body, query={"wait": seconds})


class PromotionsHandler(ServiceHandler):
    """``GET /mlteams/promotions``: the promotions of the user's teams (filters: team, model,
    state)."""

    @web.authenticated
    async def get(self) -> None:
        query = {
            key: value
            for key in LIST_FILTERS
            if (value := self.get_query_argument(key, None)) is not None
        }
        await self.forward("GET", "promotions", query=query)


class PromotionHandler(ServiceHandler):
    """``GET /mlteams/promotions/<id>``: one promotion, its state and gate results."""

    @web.authenticated
    async def get(self, promotion_id: str) -> None:
        await self.forward("GET", f"promotions/{checked_id(promotion_id)}")


class PromotionCardHandler(ServiceHandler):
    """``GET /mlteams/promotions/<id>/card``: the promotion's model card (Markdown)."""

    @web.authenticated
    async def get(self, promotion_id: str) -> None:
        await self.forward("GET", f"promotions/{checked_id(promotion_id)}/card")


class ApproveHandler(ServiceHandler):
    """``POST /mlteams/promotions/<id>/approve``: a lead approves, with a comment."""

    decision = "approve"

    @web.authenticated
    async def post(self, promotion_id: str) -> None:
        path = f"promotions/{checked_id(promotion_id)}/{self.decision}"
        await self.forward("POST", path, body=self.json_body())


class RejectHandler(ApproveHandler):
    """``POST /mlteams/promotions/<id>/reject``: a lead rejects, with a comment."""

    decision = "reject"


class ModelHandler(ServiceHandler):
    """``GET /mlteams/models/<team>/<model>``: the governed model's versions, aliases and
    audit."""

    @web.authenticated
    async def get(self, team: str, model: str) -> None:
        await self.forward("GET", f"models/{quote(team)}/{quote(model)}")


class RollbackHandler(ServiceHandler):
    """``POST /mlteams/models/<team>/<model>/rollback``: point the champion back to an earlier
    governed version (the one before by default)."""

    @web.authenticated
    async def post(self, team: str, model: str) -> None:
        path = f"models/{quote(team)}/{quote(model)}/rollback"
        await self.forward("POST", path, body=self.json_body())


class ServingHandler(ServiceHandler):
    """``GET /mlteams/models/<team>/<model>/serving``: the model's InferenceService (ready, URL,
    why not); ``POST`` applies the champion's InferenceService again."""

    @web.authenticated
    async def get(self, team: str, model: str) -> None:
        await self.forward("GET", f"models/{quote(team)}/{quote(model)}/serving")

    @web.authenticated
    async def post(self, team: str, model: str) -> None:
        await self.forward("POST", f"models/{quote(team)}/{quote(model)}/serving")


def checked_id(promotion_id: str) -> str:
    if not re.fullmatch(ID_PATTERN, promotion_id):
        raise web.HTTPError(400, "a promotion id is 32 hexadecimal characters")
    return promotion_id


def promote_handlers() -> list[tuple[str, type]]:
    promotion = r"/mlteams/promotions/(?P<promotion_id>[^/]+)"
    model = r"/mlteams/models/(?P<team>[^/]+)/(?P<model>[^/]+)"
    return [
        (r"/mlteams/promote", PromoteHandler),
        (r"/mlteams/promotions", PromotionsHandler),
        (promotion, PromotionHandler),
        (promotion + "/card", PromotionCardHandler),
        (promotion + "/approve", ApproveHandler),
        (promotion + "/reject", RejectHandler),
        (model, ModelHandler),
        (model + "/rollback", RollbackHandler),
        (model + "/serving", ServingHandler),
    ]
