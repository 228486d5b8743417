"""Governed promotion: from a run's model to the team's ``champion``, through the team's gates.

The steps, each with its own adapter: the candidate is read from MLflow (``registry``); its files
are frozen under the governed prefix of the object store with their sha256 (``freeze``); the
service's evaluation Job predicts on the team's held-out set without its labels
(``evaluation``); the service scores the predictions and applies the gates (pure:
``hub_ext.policy.gates``); high-stakes promotions wait for a lead's approval; a promotion that
passes is registered as a version of the governed model, its card rendered and stored, and the
aliases moved. Every step that decides anything writes an audit row.

Registration is the one step that changes the registry, and it is undone when it cannot finish:
a version whose aliases could not be moved, or whose promotion could not be recorded, is taken
back, so a failure leaves neither a moved alias nor a governed version without its audit row.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from hub_ext.policy.config import MLTeamsConfig, Team
from hub_ext.policy.evaluation_data import EvaluationDataError, split_labels
from hub_ext.policy.gates import CandidateEvidence, GateReport, check_gates
from hub_ext.policy.inference_service import ServedVersion
from hub_ext.policy.membership import TeamSelectionError, choose_team, user_teams
from hub_ext.policy.model_card import CardFacts, render_card
from hub_ext.policy.promotion import (
    EVALUATING,
    EXPIRED,
    FAILED,
    PENDING_APPROVAL,
    PROMOTED,
    REFUSED,
    REJECTED,
    PromotionRefused,
    PromotionRequest,
    PromotionRules,
    check_human_fields,
    choose_rollback,
    expires_at,
    governed_name,
    is_expired,
    may_approve,
    parse_request,
    rules_for,
)
from hub_ext.policy.scoring import METRICS, ScoringError, score
from hub_ext.service.candidate import Candidate, CandidateInvalid
from hub_ext.service.evaluation import EvaluationFailed
from hub_ext.service.freeze import MODEL_FOLDER, DigestMismatch, Frozen, freeze, verify
from hub_ext.service.object_store import ObjectStore, StoreUnavailable, join_uri
from hub_ext.service.registry import Registry, RegistryRefused, RegistryUnavailable
from hub_ext.service.serving import Applied, Serving, ServingError
from hub_ext.service.store import PromotionRow, Store
from hub_ext.service.store import StoreUnavailable as DatabaseUnavailable

log = logging.getLogger("mlteams.promotion")

SETTLED = frozenset({PROMOTED, PENDING_APPROVAL, REFUSED, REJECTED, EXPIRED, FAILED})
REGISTRY_DOWN = "The MLflow registry is not answering right now; nothing was changed. Try again."
OBJECTS_DOWN = "The object store is not answering right now; nothing was changed. Try again."
DATABASE_DOWN = "The promotion service's database is not answering; nothing was changed."
CARD_FILE = "MODEL_CARD.md"
PROFILE_TAG = "mlteams.profile"
RESTARTED = "The promotion service restarted while this promotion was evaluated; promote again."


class Evaluate(Protocol):
    """Runs the candidate's predictions on the features in the team's namespace."""

    def __call__(
        self,
        *,
        namespace: str,
        image: str,
        frozen: Frozen,
        features_csv: bytes,
        work_prefix_uri: str,
        team: str,
        model: str,
        promotion_id: str,
        timeout_seconds: int,
    ) -> Awaitable[list[Any]]: ...


@dataclass(frozen=True)
class Caller:
    """A signed-in hub user and their hub groups, as the hub says (never the request)."""

    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class PromotionSettings:
    """Where frozen models live, and what the evaluation Job may use."""

    governed_root: str
    """``s3://bucket[/prefix]`` under which every frozen model is kept."""
    evaluation_cpu: str = "1"
    evaluation_memory: str = "2Gi"


class PromotionError(Exception):
    """A request the service answers with ``http_status`` and ``message`` (and maybe the
    promotion as it stands)."""

    def __init__(
        self, http_status: int, message: str, promotion: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.promotion = promotion


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Promotions:
    """The promotion workflow of the ``mlteams`` service."""

    def __init__(
        self,
        config: MLTeamsConfig,
        store: Store,
        registry: Registry,
        objects: ObjectStore,
        evaluate: Evaluate,
        settings: PromotionSettings,
        *,
        serving: Serving | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.serving = serving
        self.store = store
        self.registry = registry
        self.objects = objects
        self.evaluate = evaluate
        self.settings = settings
        self.now = now
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- the database, off the event loop ----------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except DatabaseUnavailable:
            raise PromotionError(503, DATABASE_DOWN) from None

    async def _settle(
        self,
        row: PromotionRow,
        *,
        from_states: Iterable[str],
        to_state: str,
        audit: Mapping[str, Any],
        **fields: Any,
    ) -> PromotionRow | None:
        """Move ``row`` to ``to_state`` and write its audit row, both or neither."""

        def write() -> PromotionRow | None:
            with self.store.in_transaction():
                moved = self.store.transition(
                    row.id,
                    from_states=set(from_states),
                    to_state=to_state,
                    updated_at=self.now(),
                    **fields,
                )
                if moved is None:
                    return None
                self.store.append_audit(
                    at=self.now(),
                    team=row.team,
                    model=row.model,
                    promotion_id=row.id,
                    outcome=to_state,
                    **audit,
                )
                return moved

        moved: PromotionRow | None = await self._db(write)
        return moved

    # -- who is asking ----------------------------------------------------------------------------

    def _member_team(self, caller: Caller, requested: str | None) -> Team:
        try:
            return choose_team(self.config, caller.groups, requested).team
        except TeamSelectionError as exc:
            raise PromotionError(exc.http_status, exc.message) from None

    def _visible_teams(self, caller: Caller) -> set[str]:
        return {membership.name for membership in user_teams(self.config, caller.groups)}

    def _rules(self, team: str, model: str) -> PromotionRules:
        try:
            return rules_for(self.config, team, model)
        except PromotionRefused as exc:
            raise PromotionError(exc.http_status, exc.message) from None

    # -- requests ---------------------------------------------------------------------------------

    async def request(self, caller: Caller, body: Any, wait: float = 0) -> PromotionRow:
        """Start a promotion for ``caller``; wait up to ``wait`` seconds for it to settle."""
        try:
            request = parse_request(body)
        except PromotionRefused as exc:
            raise PromotionError(exc.http_status, exc.message) from None
        team = self._member_team(caller, request.team)
        rules = self._rules(team.name, request.model)
        try:
            check_human_fields(rules, request)
        except PromotionRefused as exc:
            raise PromotionError(exc.http_status, exc.message) from None
        candidate = await self._registry_call(
            self.registry.candidate(request.run_id, request.artifact_path)
        )
        promotion_id = uuid.uuid4().hex
        now = self.now()

        def add() -> PromotionRow:
            with self.store.in_transaction():
                row = self.store.add_promotion(
                    id=promotion_id,
                    team=team.name,
                    model=request.model,
                    governed_name=governed_name(team.name, request.model),
                    requester=caller.name,
                    run_id=request.run_id,
                    artifact_path=request.artifact_path,
                    state=EVALUATING,
                    created_at=now,
                    updated_at=now,
                    human=_human_fields(request),
                )
                self.store.append_audit(
                    at=now,
                    actor=caller.name,
                    action="requested",
                    team=team.name,
                    model=request.model,
                    promotion_id=promotion_id,
                    outcome=EVALUATING,
                    detail=f"run {request.run_id}, artifact path {request.artifact_path}",
                )
                return row

        row: PromotionRow = await self._db(add)
        task = asyncio.create_task(self._evaluate(row, rules, candidate, team))
        self._tasks[row.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(row.id, None))
        if wait > 0:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=wait)
            except asyncio.TimeoutError:
                pass
        return await self.promotion(caller, row.id)

    async def _registry_call(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except RegistryUnavailable:
            raise PromotionError(503, REGISTRY_DOWN) from None
        except CandidateInvalid as exc:
            raise PromotionError(400, str(exc)) from None
        except RegistryRefused as exc:
            if exc.status in (400, 404):
                raise PromotionError(exc.status, exc.message) from None
            log.error("mlteams: MLflow refused the service: %s", exc.message)
            raise PromotionError(
                502,
                "The MLflow registry refused the promotion service; ask your platform admins to "
                "check its credentials (docs/admin/promotion.md).",
            ) from None

    async def _evaluate(
        self, row: PromotionRow, rules: PromotionRules, candidate: Candidate, team: Team
    ) -> None:
        prefix = self._prefix(row)
        frozen: Frozen | None = None
        try:
            frozen = await freeze(candidate, self.objects, prefix)
            measured, evaluation_sha = await self._measure(row, rules, team, candidate, frozen)
            champion = await self._champion_metrics(row, rules)
            report = check_gates(
                rules,
                measured,
                champion=champion,
                evidence=CandidateEvidence(
                    has_signature=candidate.has_signature,
                    dataset_inputs=len(candidate.datasets),
                ),
                logged=candidate.metrics,
            )
            facts = _facts_json(candidate, rules, measured, evaluation_sha, team)
            common = {
                "gate_results": report.to_json(),
                "measured": measured,
                "frozen_uri": frozen.uri,
                "artifact_sha256": frozen.sha256,
                "facts": facts,
            }
            if not report.passed:
                await self._settle(
                    row,
                    from_states={EVALUATING},
                    to_state=REFUSED,
                    error=_failures_message(report),
                    audit={
                        "actor": "mlteams-service",
                        "action": "gates-refused",
                        "gate_results": report.to_json(),
                        "artifact_sha256": frozen.sha256,
                        "detail": _failures_message(report),
                    },
                    **common,
                )
                await self._forget(prefix)
                return
            if rules.high_stakes:
                await self._settle(
                    row,
                    from_states={EVALUATING},
                    to_state=PENDING_APPROVAL,
                    expires_at=expires_at(self.now(), rules),
                    audit={
                        "actor": "mlteams-service",
                        "action": "awaiting-approval",
                        "gate_results": report.to_json(),
                        "artifact_sha256": frozen.sha256,
                        "detail": "high-stakes: a lead of the team must approve",
                    },
                    **common,
                )
                return
            moved = await self._settle(
                row,
                from_states={EVALUATING},
                to_state=EVALUATING,
                audit={
                    "actor": "mlteams-service",
                    "action": "gates-passed",
                    "gate_results": report.to_json(),
                    "artifact_sha256": frozen.sha256,
                },
                **common,
            )
            if moved is not None:
                await self._register(moved, rules, approver=None, from_state=EVALUATING)
        except PromotionError as exc:
            await self._fail(row, EVALUATING, exc.message, prefix if frozen else None)
        except (EvaluationFailed, ScoringError, DigestMismatch, CandidateInvalid) as exc:
            await self._fail(row, EVALUATING, str(exc), prefix, refused=True)
        except EvaluationDataError as exc:
            log.error("mlteams: the evaluation set of team %s is unusable: %s", row.team, exc)
            await self._fail(
                row,
                EVALUATING,
                f"Your team's evaluation set cannot be used ({exc}); ask your platform admins.",
                prefix,
            )
        except RegistryUnavailable:
            await self._fail(row, EVALUATING, REGISTRY_DOWN, prefix)
        except StoreUnavailable:
            await self._fail(row, EVALUATING, OBJECTS_DOWN, prefix)
        except RegistryRefused as exc:
            await self._fail(row, EVALUATING, exc.message, prefix, refused=exc.status < 500)
        except Exception:
            log.exception("mlteams: promotion %s failed", row.id)
            await self._fail(
                row,
                EVALUATING,
                "The promotion failed inside the service; the platform admins can find why in "
                "its log.",
                prefix,
            )

    def _prefix(self, row: PromotionRow) -> str:
        return f"{self.settings.governed_root.rstrip('/')}/{row.team}/{row.model}/{row.id}"

    async def _forget(self, prefix: str) -> None:
        try:
            await self.objects.delete_prefix(prefix)
        except StoreUnavailable:
            log.warning("mlteams: could not remove %s; it holds no governed version", prefix)

    async def _fail(
        self,
        row: PromotionRow,
        from_state: str,
        message: str,
        prefix: str | None,
        *,
        refused: bool = False,
    ) -> None:
        try:
            await self._settle(
                row,
                from_states={from_state},
                to_state=REFUSED if refused else FAILED,
                error=message,
                audit={"actor": "mlteams-service", "action": "failed", "detail": message},
            )
        except PromotionError:
            log.error("mlteams: could not record the failure of promotion %s: %s", row.id, message)
        if prefix:
            await self._forget(prefix)

    async def _measure(
        self,
        row: PromotionRow,
        rules: PromotionRules,
        team: Team,
        candidate: Candidate,
        frozen: Frozen,
    ) -> tuple[dict[str, float], str | None]:
        evaluation = rules.evaluation
        if evaluation is None:
            return {}, None
        data = await self.objects.get(evaluation.uri)
        features, labels = split_labels(data, evaluation.label_column)
        predictions = await self.evaluate(
            namespace=team.namespace,
            image=self._image(team, candidate),
            frozen=frozen,
            features_csv=features,
            work_prefix_uri=f"{self._prefix(row)}/evaluation",
            team=row.team,
            model=row.model,
            promotion_id=row.id,
            timeout_seconds=evaluation.timeout_seconds,
        )
        metrics = sorted(rules.gates) or [
            metric.name for metric in METRICS.values() if metric.task == evaluation.task
        ]
        return score(evaluation.task, metrics, predictions, labels), _sha256(data)

    def _image(self, team: Team, candidate: Candidate) -> str:
        """The image the model was trained in when it is one of the team's, else the team's
        default profile's image."""
        images = [self.config.profiles[name].image for name in team.profiles]
        trained = candidate.image
        return trained if trained in images else images[0]

    async def _champion_metrics(
        self, row: PromotionRow, rules: PromotionRules
    ) -> dict[str, float] | None:
        version = await self.registry.get_alias(row.governed_name, rules.champion_alias)
        if version is None:
            return None
        rows = await self._db(self.store.promotions, team=row.team, model=row.model, state=PROMOTED)
        for promoted in rows:
            if promoted.version == version:
                return dict(promoted.measured or {})
        return None

    # -- registration -----------------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _register(
        self, row: PromotionRow, rules: PromotionRules, *, approver: str | None, from_state: str
    ) -> PromotionRow:
        """Register the frozen model as the next governed version and make it champion."""
        registry = self.registry
        name = row.governed_name
        async with self._lock(name):
            frozen = await verify(self.objects, row.frozen_uri or "", row.artifact_sha256 or "-")
            await registry.ensure_governed_model(name, row.team, row.model)
            await self._db(self._remember_governed, row)
            champion = await registry.get_alias(name, rules.champion_alias)
            previous = await registry.get_alias(name, rules.previous_alias)
            version = await registry.create_version(
                name,
                source=frozen.model_uri,
                run_id=row.run_id,
                tags={
                    "mlteams.artifact_sha256": frozen.sha256,
                    "mlteams.promotion_id": row.id,
                    "mlteams.requester": row.requester,
                    "mlteams.approver": approver or "",
                },
                description=f"Promoted by {row.requester} from run {row.run_id}",
            )
            moved: list[tuple[str, int | None]] = []
            applied: Applied | None = None
            try:
                card = render_card(
                    CardFacts.from_json(
                        row.facts or {},
                        name=name,
                        version=version,
                        team=row.team,
                        model=row.model,
                        author=row.requester,
                        promotion_id=row.id,
                        created=self.now(),
                        gate_results=row.gate_results or [],
                        approver=approver,
                        human=row.human or {},
                        artifact_sha256=frozen.sha256,
                    )
                )
                card_sha = _sha256(card.encode())
                await self.objects.put(
                    join_uri(frozen.uri, CARD_FILE), card.encode(), "text/markdown"
                )
                await registry.set_version_tag(name, version, "mlteams.card_sha256", card_sha)
                if champion is not None:
                    await registry.set_alias(name, rules.previous_alias, champion)
                    moved.append((rules.previous_alias, previous))
                await registry.set_alias(name, rules.champion_alias, version)
                moved.append((rules.champion_alias, champion))
                applied = await self._point(row, version, frozen.uri, frozen.sha256)
                promoted = await self._settle(
                    row,
                    from_states={from_state},
                    to_state=PROMOTED,
                    version=version,
                    previous_version=champion,
                    card=card,
                    card_sha256=card_sha,
                    approver=approver,
                    audit={
                        "actor": approver or row.requester,
                        "action": "promoted",
                        "from_version": champion,
                        "to_version": version,
                        "gate_results": row.gate_results,
                        "approver": approver,
                        "card_sha256": card_sha,
                        "artifact_sha256": frozen.sha256,
                        "detail": f"{rules.champion_alias} -> version {version}",
                    },
                )
                if promoted is None:
                    raise PromotionError(409, "This promotion was decided by someone else.")
                return promoted
            except BaseException:
                if self.serving is not None:
                    await self.serving.restore(applied)
                await self._undo(name, version, moved)
                raise

    async def _point(
        self, row: PromotionRow, version: int, frozen_uri: str, artifact_sha256: str
    ) -> Applied | None:
        """Serve ``version`` when the team's serving applies; what to put back on failure."""
        if self.serving is None:
            return None
        served = self._served(row, version)
        served = replace(
            served,
            storage_uri=join_uri(frozen_uri, MODEL_FOLDER),
            artifact_sha256=artifact_sha256,
        )
        try:
            return await self.serving.point(served, frozen_uri)
        except ServingError as exc:
            raise PromotionError(
                exc.http_status, f"{exc.message} The model's aliases were left as they were."
            ) from None

    def _remember_governed(self, row: PromotionRow) -> None:
        if self.store.governed_model(row.team, row.model) is None:
            self.store.add_governed_model(
                team=row.team,
                model=row.model,
                name=row.governed_name,
                created_at=self.now(),
                created_by=row.requester,
            )

    async def _undo(self, name: str, version: int, moved: list[tuple[str, int | None]]) -> None:
        """Put the aliases back and take the version away again."""
        await self._restore_aliases(name, moved)
        try:
            await self.registry.delete_version(name, version)
        except (RegistryUnavailable, RegistryRefused):
            log.error("mlteams: could not remove version %s of %s after a failure", version, name)

    # -- decisions --------------------------------------------------------------------------------

    async def _row(self, promotion_id: str) -> PromotionRow:
        if not re.fullmatch(r"[0-9a-f]{32}", promotion_id):
            raise PromotionError(400, "A promotion id is 32 hexadecimal characters.")
        row: PromotionRow | None = await self._db(self.store.promotion, promotion_id)
        if row is None:
            raise PromotionError(404, f"There is no promotion {promotion_id}.")
        return row

    async def _pending(self, caller: Caller, promotion_id: str) -> tuple[PromotionRow, Team]:
        row = await self._row(promotion_id)
        if row.team not in self._visible_teams(caller):
            raise PromotionError(404, f"There is no promotion {promotion_id}.")
        if row.state != PENDING_APPROVAL:
            raise PromotionError(
                409, f"This promotion is {row.state.replace('_', ' ')}, not waiting for approval."
            )
        if row.expires_at is not None and is_expired(row.expires_at, self.now()):
            await self._settle(
                row,
                from_states={PENDING_APPROVAL},
                to_state=EXPIRED,
                audit={
                    "actor": caller.name,
                    "action": "expired",
                    "detail": f"waited for approval until {row.expires_at.isoformat()}",
                },
            )
            await self._forget(self._prefix(row))
            raise PromotionError(
                409,
                f"This promotion expired at {row.expires_at.isoformat()} without an approval; "
                "ask for it again.",
            )
        rules = self._rules(row.team, row.model)
        try:
            may_approve(
                approver=caller.name,
                approver_groups=caller.groups,
                requester=row.requester,
                team=self.config.teams[row.team],
                rules=rules,
                config=self.config,
            )
        except PromotionRefused as exc:
            raise PromotionError(exc.http_status, exc.message) from None
        return row, self.config.teams[row.team]

    async def approve(self, caller: Caller, promotion_id: str, comment: str) -> PromotionRow:
        row, _ = await self._pending(caller, promotion_id)
        rules = self._rules(row.team, row.model)
        claimed = await self._settle(
            row,
            from_states={PENDING_APPROVAL},
            to_state=EVALUATING,
            approver=caller.name,
            decision_comment=comment,
            audit={
                "actor": caller.name,
                "action": "approved",
                "approver": caller.name,
                "detail": comment,
            },
        )
        if claimed is None:
            raise PromotionError(409, "This promotion was decided by someone else just now.")
        try:
            return await self._register(claimed, rules, approver=caller.name, from_state=EVALUATING)
        except DigestMismatch as exc:
            await self._fail(claimed, EVALUATING, str(exc), None, refused=True)
            raise PromotionError(409, str(exc)) from None
        except (RegistryUnavailable, StoreUnavailable, PromotionError) as exc:
            message = exc.message if isinstance(exc, PromotionError) else _down(exc)
            await self._settle(
                claimed,
                from_states={EVALUATING},
                to_state=PENDING_APPROVAL,
                approver=None,
                audit={
                    "actor": caller.name,
                    "action": "approval-not-applied",
                    "detail": message,
                },
            )
            status = exc.http_status if isinstance(exc, PromotionError) else 503
            raise PromotionError(status, message + " The approval was not applied.") from None

    async def reject(self, caller: Caller, promotion_id: str, comment: str) -> PromotionRow:
        row, _ = await self._pending(caller, promotion_id)
        rejected = await self._settle(
            row,
            from_states={PENDING_APPROVAL},
            to_state=REJECTED,
            approver=caller.name,
            decision_comment=comment,
            audit={
                "actor": caller.name,
                "action": "rejected",
                "approver": caller.name,
                "detail": comment,
            },
        )
        if rejected is None:
            raise PromotionError(409, "This promotion was decided by someone else just now.")
        await self._forget(self._prefix(row))
        return rejected

    async def rollback(
        self, caller: Caller, team_name: str, model: str, target: int | None
    ) -> dict[str, Any]:
        """Point the champion back at an earlier governed version, in one call."""
        team = self._member_team(caller, team_name)
        rules = self._rules(team.name, model)
        if rules.high_stakes:
            lead = any(
                membership.is_lead and membership.name == team.name
                for membership in user_teams(self.config, caller.groups)
            )
            approvers = set(rules.approver_groups) & set(caller.groups)
            if not lead and not approvers:
                raise PromotionError(
                    403,
                    f"Team {team.name}'s models are high-stakes: a lead of the team rolls them "
                    "back.",
                )
        name = governed_name(team.name, model)
        rows = await self._db(self.store.promotions, team=team.name, model=model, state=PROMOTED)
        by_version = {row.version: row for row in rows if row.version is not None}
        async with self._lock(name):
            current = await self._registry_call(self.registry.get_alias(name, rules.champion_alias))
            try:
                version = choose_rollback(sorted(by_version), current, target)
            except PromotionRefused as exc:
                raise PromotionError(exc.http_status, exc.message) from None
            chosen = by_version[version]
            try:
                await verify(self.objects, chosen.frozen_uri or "", chosen.artifact_sha256 or "-")
            except DigestMismatch as exc:
                await self._db(
                    self.store.append_audit,
                    at=self.now(),
                    actor=caller.name,
                    action="rollback-blocked",
                    team=team.name,
                    model=model,
                    from_version=current,
                    to_version=version,
                    artifact_sha256=chosen.artifact_sha256,
                    outcome="refused",
                    detail=str(exc),
                )
                raise PromotionError(409, str(exc)) from None
            except StoreUnavailable:
                raise PromotionError(503, OBJECTS_DOWN) from None
            previous = await self._registry_call(
                self.registry.get_alias(name, rules.previous_alias)
            )
            moved: list[tuple[str, int | None]] = []
            applied: Applied | None = None
            try:
                if current is not None:
                    await self.registry.set_alias(name, rules.previous_alias, current)
                    moved.append((rules.previous_alias, previous))
                await self.registry.set_alias(name, rules.champion_alias, version)
                moved.append((rules.champion_alias, current))
                applied = await self._point(
                    chosen, version, chosen.frozen_uri or "", chosen.artifact_sha256 or "-"
                )
                await self._db(
                    self.store.append_audit,
                    at=self.now(),
                    actor=caller.name,
                    action="rolled-back",
                    team=team.name,
                    model=model,
                    promotion_id=chosen.id,
                    from_version=current,
                    to_version=version,
                    card_sha256=chosen.card_sha256,
                    artifact_sha256=chosen.artifact_sha256,
                    outcome="rolled-back",
                    detail=f"{rules.champion_alias} -> version {version}",
                )
            except BaseException as exc:
                if self.serving is not None:
                    await self.serving.restore(applied)
                await self._restore_aliases(name, moved)
                if isinstance(exc, RegistryUnavailable):
                    raise PromotionError(503, REGISTRY_DOWN) from None
                raise
        return {
            "team": team.name,
            "model": model,
            "governed_name": name,
            "aliases": {rules.champion_alias: version, rules.previous_alias: current},
        }

    # -- serving --------------------------------------------------------------------------------

    async def _champion_row(
        self, team: str, model: str, rules: PromotionRules
    ) -> tuple[int, PromotionRow] | None:
        name = governed_name(team, model)
        current = await self._registry_call(self.registry.get_alias(name, rules.champion_alias))
        if current is None:
            return None
        rows = await self._db(self.store.promotions, team=team, model=model, state=PROMOTED)
        for row in rows:
            if row.version == current:
                return current, row
        raise PromotionError(
            409,
            f"{rules.champion_alias} of {name} is version {current}, which no promotion of this "
            "service registered; promote or roll back to a governed version first.",
        )

    async def serve(self, caller: Caller, team_name: str, model: str) -> dict[str, Any]:
        """Apply the champion's InferenceService again: after serving was turned on for the
        team, or when the object was removed. The frozen files are checked first."""
        team = self._member_team(caller, team_name)
        rules = self._rules(team.name, model)
        if self.serving is None or not self.serving.applies(team.name):
            raise PromotionError(
                409,
                f"The service does not apply team {team.name}'s InferenceServices (serving is "
                "off, or rendered for GitOps only).",
            )
        async with self._lock(governed_name(team.name, model)):
            found = await self._champion_row(team.name, model, rules)
            if found is None:
                raise PromotionError(
                    404, f"{model} has no {rules.champion_alias} yet; promote a version first."
                )
            version, row = found
            audit = {
                "at": self.now(),
                "actor": caller.name,
                "team": team.name,
                "model": model,
                "promotion_id": row.id,
                "to_version": version,
                "artifact_sha256": row.artifact_sha256,
            }
            try:
                await self._point(row, version, row.frozen_uri or "", row.artifact_sha256 or "-")
            except DigestMismatch as exc:
                message = f"{exc} It was not served."
                await self._db(
                    self.store.append_audit,
                    action="serving-blocked",
                    outcome="refused",
                    detail=message,
                    **audit,
                )
                raise PromotionError(409, message) from None
            except StoreUnavailable:
                raise PromotionError(503, OBJECTS_DOWN) from None
            await self._db(
                self.store.append_audit,
                action="served",
                outcome="served",
                detail=f"InferenceService -> version {version}",
                **audit,
            )
        return await self.serving_state(caller, team.name, model)

    async def serving_state(self, caller: Caller, team_name: str, model: str) -> dict[str, Any]:
        """The model's InferenceService as the cluster reports it (and, for GitOps, as the
        service renders it for the champion)."""
        team = self._member_team(caller, team_name)
        rules = self._rules(team.name, model)
        if self.serving is None:
            return {"team": team.name, "model": model, "serving": None}
        state = await self.serving.state(team.name, model)
        out: dict[str, Any] = {"team": team.name, "model": model, "serving": state}
        if state is not None:
            found = await self._champion_row(team.name, model, rules)
            if found is not None:
                version, row = found
                out["champion"] = version
                out["manifest"] = self.serving.render(self._served(row, version))
        return out

    async def serving_manifests(self, caller: Caller, team_name: str | None) -> list[Any]:
        """The InferenceServices of every champion the caller's teams serve, as rendered."""
        if self.serving is None:
            return []
        teams = sorted(self._visible_teams(caller))
        if team_name is not None:
            teams = [team_name] if team_name in teams else []
        manifests = []
        for team in teams:
            if not self.serving.settings(team).enabled:
                continue
            models = await self._db(self.store.governed_models, team=team)
            for governed in models:
                rules = self._rules(team, governed.model)
                found = await self._champion_row(team, governed.model, rules)
                if found is not None:
                    version, row = found
                    manifests.append(self.serving.render(self._served(row, version)))
        return manifests

    def _served(self, row: PromotionRow, version: int) -> ServedVersion:
        return ServedVersion(
            team=row.team,
            namespace=self.config.teams[row.team].namespace,
            model=row.model,
            governed_name=row.governed_name,
            version=version,
            storage_uri=join_uri(row.frozen_uri or "", MODEL_FOLDER),
            artifact_sha256=row.artifact_sha256 or "-",
            promotion_id=row.id,
        )

    async def _restore_aliases(self, name: str, moved: list[tuple[str, int | None]]) -> None:
        for alias, before in reversed(moved):
            try:
                if before is None:
                    await self.registry.delete_alias(name, alias)
                else:
                    await self.registry.set_alias(name, alias, before)
            except (RegistryUnavailable, RegistryRefused):
                log.error("mlteams: could not put alias %s of %s back to %s", alias, name, before)

    # -- reading ----------------------------------------------------------------------------------

    async def promotion(self, caller: Caller, promotion_id: str) -> PromotionRow:
        row = await self._row(promotion_id)
        if row.team not in self._visible_teams(caller):
            raise PromotionError(404, f"There is no promotion {promotion_id}.")
        return row

    async def promotions(
        self, caller: Caller, team: str | None, model: str | None, state: str | None
    ) -> list[PromotionRow]:
        teams = self._visible_teams(caller)
        if team is not None and team not in teams:
            return []
        rows = await self._db(self.store.promotions, team=team, model=model, state=state)
        return [row for row in rows if row.team in teams]

    async def model(self, caller: Caller, team_name: str, model: str) -> dict[str, Any]:
        team = self._member_team(caller, team_name)
        rules = self._rules(team.name, model)
        name = governed_name(team.name, model)
        aliases = {
            alias: await self._registry_call(self.registry.get_alias(name, alias))
            for alias in (rules.champion_alias, rules.previous_alias)
        }
        rows = await self._db(self.store.promotions, team=team.name, model=model, state=PROMOTED)
        audit = await self._db(self.store.audit, team=team.name, model=model)
        serving = await self.serving.state(team.name, model) if self.serving else None
        return {
            "serving": serving,
            "team": team.name,
            "model": model,
            "governed_name": name,
            "aliases": aliases,
            "versions": [
                {
                    "version": row.version,
                    "promotion_id": row.id,
                    "requester": row.requester,
                    "approver": row.approver,
                    "promoted_at": _iso(row.updated_at),
                    "artifact_sha256": row.artifact_sha256,
                    "card_sha256": row.card_sha256,
                    "source": join_uri(row.frozen_uri, MODEL_FOLDER) if row.frozen_uri else None,
                }
                for row in sorted(rows, key=lambda r: r.version or 0, reverse=True)
            ],
            "audit": [audit_json(entry) for entry in audit],
        }

    async def audit(
        self, caller: Caller, team: str | None, model: str | None
    ) -> list[dict[str, Any]]:
        teams = self._visible_teams(caller)
        if team is not None and team not in teams:
            return []
        entries = await self._db(self.store.audit, team=team, model=model)
        return [audit_json(entry) for entry in entries if entry.team in teams]

    # -- start and stop ---------------------------------------------------------------------------

    async def recover(self) -> int:
        """Fail the promotions a previous run of the service left evaluating; how many."""
        rows = await self._db(self.store.promotions, state=EVALUATING, limit=10_000)
        for row in rows:
            await self._fail(row, EVALUATING, RESTARTED, self._prefix(row))
        return len(rows)

    async def settled(self, promotion_id: str) -> None:
        """Wait for a promotion's evaluation in this process, if one is running."""
        task = self._tasks.get(promotion_id)
        if task is not None:
            await asyncio.shield(task)


def _down(exc: Exception) -> str:
    return OBJECTS_DOWN if isinstance(exc, StoreUnavailable) else REGISTRY_DOWN


def _human_fields(request: PromotionRequest) -> dict[str, str]:
    fields = {
        "intended_use": request.intended_use,
        "out_of_scope_use": request.out_of_scope_use,
        "limitations": request.limitations,
    }
    return {key: value for key, value in fields.items() if value}


def _failures_message(report: GateReport) -> str:
    return "; ".join(result.message for result in report.failures)


def _facts_json(
    candidate: Candidate,
    rules: PromotionRules,
    measured: Mapping[str, float],
    evaluation_sha: str | None,
    team: Team,
) -> dict[str, Any]:
    """What the card says about the candidate, kept with the promotion so that the card of an
    approved promotion describes what was evaluated."""
    evaluation = rules.evaluation
    return {
        "params": dict(candidate.params),
        "metrics": dict(measured),
        "logged_metrics": dict(candidate.metrics),
        "evaluation": (
            {
                "uri": evaluation.uri,
                "sha256": evaluation_sha,
                "task": evaluation.task,
                "label_column": evaluation.label_column,
            }
            if evaluation is not None
            else None
        ),
        "dataset_inputs": [item.to_json() for item in candidate.datasets],
        "signature": dict(candidate.signature) if candidate.signature else None,
        "flavors": sorted(candidate.flavors),
        "requirements": candidate.requirements,
        "git_commit": candidate.git_commit,
        "image": candidate.image,
        "profile": candidate.tags.get(PROFILE_TAG),
        "high_stakes": rules.high_stakes,
        "team_display_name": team.display_name,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def promotion_json(row: PromotionRow) -> dict[str, Any]:
    """A promotion as the API shows it."""
    return {
        "id": row.id,
        "team": row.team,
        "model": row.model,
        "governed_name": row.governed_name,
        "state": row.state,
        "requester": row.requester,
        "run_id": row.run_id,
        "artifact_path": row.artifact_path,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "expires_at": _iso(row.expires_at),
        "version": row.version,
        "previous_version": row.previous_version,
        "gates": row.gate_results or [],
        "metrics": row.measured or {},
        "artifact_sha256": row.artifact_sha256,
        "card_sha256": row.card_sha256,
        "approver": row.approver,
        "comment": row.decision_comment,
        "message": row.error,
    }


def audit_json(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": _iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "team": entry.team,
        "model": entry.model,
        "promotion_id": entry.promotion_id,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "gates": entry.gate_results,
        "approver": entry.approver,
        "card_sha256": entry.card_sha256,
        "artifact_sha256": entry.artifact_sha256,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


__all__ = [
    "SETTLED",
    "Caller",
    "Evaluate",
    "PromotionError",
    "PromotionSettings",
    "Promotions",
    "audit_json",
    "promotion_json",
]
