"""The service's promotion API: request, follow, approve or reject, roll back, read the audit.

Thin handlers over ``promotions.Promotions``. The caller is the hub user of the token or
cookie; their teams come from their hub groups, read by the service from the hub (never from the
request). Every answer is JSON except the model card, which is Markdown.
"""

from __future__ import annotations

import re
from typing import Any

from tornado import web

from hub_ext.policy.promotion import EVALUATING, FAILED, PENDING_APPROVAL, REFUSED
from hub_ext.service.handlers import APIHandler, ServiceContext
from hub_ext.service.promotion_settings import NOT_SET_UP
from hub_ext.service.promotions import (
    Caller,
    PromotionError,
    Promotions,
    promotion_json,
)

MAX_WAIT_SECONDS = 3600
MAX_COMMENT = 5000
STATUS_OF_STATE = {EVALUATING: 202, PENDING_APPROVAL: 202, REFUSED: 422, FAILED: 503}
LIST_FILTERS = ("team", "model", "state")


class PromotionContext(ServiceContext):
    """The service context with the promotion workflow."""

    def __init__(self, base: ServiceContext, promotions: Promotions | None) -> None:
        super().__init__(base.hub_auth, base.hub, base.config)
        self.promotions = promotions


class PromotionAPIHandler(APIHandler):
    context: PromotionContext

    @property
    def workflow(self) -> Promotions:
        if self.context.promotions is None:
            raise web.HTTPError(503, NOT_SET_UP)
        return self.context.promotions

    def prepare(self) -> None:
        if self.context.promotions is None:
            raise web.HTTPError(503, NOT_SET_UP)

    async def who(self) -> Caller:
        name = self.caller()["name"]
        groups = await self.hub_call(self.context.hub.user_groups(name))
        return Caller(name=name, groups=tuple(groups or ()))

    async def run(self, call: Any) -> Any:
        try:
            return await call
        except PromotionError as exc:
            if exc.promotion is not None:
                self.reply(
                    exc.http_status,
                    {"status": exc.http_status, "message": exc.message, **exc.promotion},
                )
                return None
            raise web.HTTPError(exc.http_status, exc.message) from None

    def comment(self) -> str:
        body = self.body() or {}
        if not isinstance(body, dict):
            raise web.HTTPError(400, 'Send a JSON object such as {"comment": "..."}.')
        unknown = sorted(set(body) - {"comment"})
        if unknown:
            raise web.HTTPError(400, f"Unknown key {unknown[0]!r}: only comment is accepted.")
        comment = body.get("comment", "")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise web.HTTPError(400, f"comment must be text of at most {MAX_COMMENT} characters.")
        return comment

    def answer(self, row: Any, created: bool = False) -> None:
        model = promotion_json(row)
        status = STATUS_OF_STATE.get(row.state, 201 if created else 200)
        if status >= 400:
            self.reply(status, {"status": status, **model})
            return
        if created and status == 202:
            self.set_header("Location", f"{self.request.path}/{row.id}")
        self.reply(status, model)


class PromotionsHandler(PromotionAPIHandler):
    """``POST /api/promotions``: promote a run's model (``?wait=<s>`` waits for the outcome);
    ``GET``: the promotions of the caller's teams."""

    async def post(self) -> None:
        caller = await self.who()
        wait_arg = self.get_query_argument("wait", "0")
        if not re.fullmatch(r"\d{1,5}", wait_arg) or int(wait_arg) > MAX_WAIT_SECONDS:
            raise web.HTTPError(400, f"wait must be whole seconds, at most {MAX_WAIT_SECONDS}.")
        row = await self.run(self.workflow.request(caller, self.body(), wait=float(wait_arg)))
        if row is not None:
            self.answer(row, created=True)

    async def get(self) -> None:
        caller = await self.who()
        filters = {key: self.get_query_argument(key, None) for key in LIST_FILTERS}
        rows = await self.run(self.workflow.promotions(caller, **filters))
        if rows is not None:
            self.reply(200, {"promotions": [promotion_json(row) for row in rows]})


class PromotionHandler(PromotionAPIHandler):
    """``GET /api/promotions/<id>``: one promotion with its gate results."""

    async def get(self, promotion_id: str) -> None:
        caller = await self.who()
        row = await self.run(self.workflow.promotion(caller, promotion_id))
        if row is not None:
            self.reply(200, promotion_json(row))


class CardHandler(PromotionAPIHandler):
    """``GET /api/promotions/<id>/card``: the model card, Markdown."""

    async def get(self, promotion_id: str) -> None:
        caller = await self.who()
        row = await self.run(self.workflow.promotion(caller, promotion_id))
        if row is None:
            return
        if not row.card:
            raise web.HTTPError(404, "This promotion has no model card: it was not promoted.")
        self.set_header("Content-Type", "text/markdown; charset=utf-8")
        self.finish(row.card)


class DecisionHandler(PromotionAPIHandler):
    """``POST /api/promotions/<id>/approve`` and ``/reject``: a lead's decision, with a
    comment."""

    async def post(self, promotion_id: str, decision: str) -> None:
        if decision not in ("approve", "reject"):
            raise web.HTTPError(404, "Decide a promotion with approve or reject.")
        caller = await self.who()
        comment = self.comment()
        promotions = self.workflow
        decide = promotions.approve if decision == "approve" else promotions.reject
        row = await self.run(decide(caller, promotion_id, comment))
        if row is not None:
            self.reply(200, promotion_json(row))


class ModelHandler(PromotionAPIHandler):
    """``GET /api/models/<team>/<model>``: aliases, governed versions and the model's audit."""

    async def get(self, team: str, model: str) -> None:
        caller = await self.who()
        found = await self.run(self.workflow.model(caller, team, model))
        if found is not None:
            self.reply(200, found)


class RollbackHandler(PromotionAPIHandler):
    """``POST /api/models/<team>/<model>/rollback``: ``{"version": n}`` or the previous one."""

    async def post(self, team: str, model: str) -> None:
        caller = await self.who()
        body = self.body() or {}
        if not isinstance(body, dict) or set(body) - {"version"}:
            raise web.HTTPError(400, 'Send {"version": <n>} or nothing for the previous one.')
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise web.HTTPError(400, "version must be a whole number.")
        found = await self.run(self.workflow.rollback(caller, team, model, version))
        if found is not None:
            self.reply(200, found)


class ServingHandler(PromotionAPIHandler):
    """``GET /api/models/<team>/<model>/serving``: the model's InferenceService as the cluster
    reports it, and as the service renders it for the champion; ``POST`` applies the champion's
    InferenceService again (its frozen files checked first)."""

    async def get(self, team: str, model: str) -> None:
        caller = await self.who()
        found = await self.run(self.workflow.serving_state(caller, team, model))
        if found is not None:
            self.reply(200, found)

    async def post(self, team: str, model: str) -> None:
        caller = await self.who()
        if self.body():
            raise web.HTTPError(400, "Send no body: the champion version is served.")
        found = await self.run(self.workflow.serve(caller, team, model))
        if found is not None:
            self.reply(200, found)


class ServingManifestsHandler(PromotionAPIHandler):
    """``GET /api/serving/manifests``: the InferenceServices of the champions of the caller's
    teams that serve, as the service renders them (filter: team); for GitOps."""

    async def get(self) -> None:
        caller = await self.who()
        team = self.get_query_argument("team", None)
        found = await self.run(self.workflow.serving_manifests(caller, team))
        if found is not None:
            self.reply(200, {"manifests": found})


class AuditHandler(PromotionAPIHandler):
    """``GET /api/audit``: the audit of the caller's teams, newest first (filters: team,
    model)."""

    async def get(self) -> None:
        caller = await self.who()
        team = self.get_query_argument("team", None)
        model = self.get_query_argument("model", None)
        entries = await self.run(self.workflow.audit(caller, team, model))
        if entries is not None:
            self.reply(200, {"audit": entries})


def promotion_routes(prefix: str, context: PromotionContext) -> list[Any]:
    promotion = rf"{prefix}/api/promotions/([^/]+)"
    model = rf"{prefix}/api/models/([^/]+)/([^/]+)"
    args = {"context": context}
    return [
        (rf"{prefix}/api/promotions", PromotionsHandler, args),
        (promotion, PromotionHandler, args),
        (promotion + "/card", CardHandler, args),
        (promotion + "/([^/]+)", DecisionHandler, args),
        (model, ModelHandler, args),
        (model + "/rollback", RollbackHandler, args),
        (model + "/serving", ServingHandler, args),
        (rf"{prefix}/api/serving/manifests", ServingManifestsHandler, args),
        (rf"{prefix}/api/audit", AuditHandler, args),
    ]
