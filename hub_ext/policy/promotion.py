"""Who may promote what, under which rules, who may approve, and where a rollback goes.

Plain data in, decisions out; a ``PromotionRefused`` carries the message the user reads and its
HTTP status. The promotion service (``hub_ext.service.promotions``) applies these decisions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub_ext.policy.config import Evaluation, Evidence, Gate, MLTeamsConfig, Team
from hub_ext.policy.membership import user_teams
from hub_ext.policy.validation import excerpt, is_dns_label

GOVERNED_PREFIX = "governed."
EVALUATING = "evaluating"
PENDING_APPROVAL = "pending_approval"
PROMOTED = "promoted"
REFUSED = "refused"
REJECTED = "rejected"
EXPIRED = "expired"
FAILED = "failed"
STATES = (EVALUATING, PENDING_APPROVAL, PROMOTED, REFUSED, REJECTED, EXPIRED, FAILED)
HUMAN_FIELDS = ("intended_use", "out_of_scope_use", "limitations")
REQUEST_KEYS = ("model", "run_id", "artifact_path", "team", *HUMAN_FIELDS)
MAX_HUMAN_TEXT = 5000
RUN_ID = re.compile(r"[0-9a-f]{32}")


class PromotionRefused(Exception):
    """A promotion, approval or rollback that may not happen, with the message and status."""

    def __init__(self, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class PromotionRules:
    """The rules of one team's model: the team's, with the model's own keys replacing them."""

    team: str
    model: str
    gates: Mapping[str, Gate]
    evidence: Evidence
    evaluation: Evaluation | None
    high_stakes: bool
    approver_groups: tuple[str, ...]
    approval_ttl_seconds: float
    champion_alias: str
    previous_alias: str


@dataclass(frozen=True)
class PromotionRequest:
    model: str
    run_id: str
    artifact_path: str = "model"
    team: str | None = None
    intended_use: str | None = None
    out_of_scope_use: str | None = None
    limitations: str | None = None


def governed_name(team: str, model: str) -> str:
    """The registered model that holds the team's governed versions of ``model``."""
    return f"{GOVERNED_PREFIX}{team}.{model}"


def rules_for(config: MLTeamsConfig, team: str, model: str) -> PromotionRules:
    if team not in config.teams:
        raise PromotionRefused(f"There is no team {excerpt(team)}.", 404)
    promotion = config.teams[team].promotion
    own = promotion.models.get(model)

    def pick(key: str) -> Any:
        value = getattr(own, key) if own is not None else None
        return getattr(promotion, key) if value is None else value

    return PromotionRules(
        team=team,
        model=model,
        gates=pick("gates"),
        evidence=pick("evidence"),
        evaluation=pick("evaluation"),
        high_stakes=bool(pick("high_stakes")),
        approver_groups=promotion.approver_groups,
        approval_ttl_seconds=promotion.approval_ttl_hours * 3600,
        champion_alias=promotion.aliases.champion,
        previous_alias=promotion.aliases.previous,
    )


def _text(body: Mapping[str, Any], key: str, *, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PromotionRefused(f"{key} must be text.", 400)
    if len(value) > limit:
        raise PromotionRefused(f"{key} must be at most {limit} characters.", 400)
    if any((ord(ch) < 32 and ch not in "\n\r\t") or ord(ch) == 127 for ch in value):
        raise PromotionRefused(
            f"{key} must be plain text: lines, spaces and tabs, no other control characters.",
            400,
        )
    return value.strip() or None


def _is_relative_path(path: Any) -> bool:
    """A relative artifact path: parts separated by '/', none empty, '.' or '..'."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        return False
    if "\\" in path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def parse_request(body: Any) -> PromotionRequest:
    """A promotion request from its JSON body, or a 400 that says what to change."""
    if not isinstance(body, Mapping):
        raise PromotionRefused(
            'Send a JSON object such as {"model": "iris", "run_id": "<MLflow run id>"}.', 400
        )
    unknown = sorted(str(key) for key in body if key not in REQUEST_KEYS)
    if unknown:
        raise PromotionRefused(
            f"Unknown key {excerpt(unknown[0])}; the keys are {', '.join(REQUEST_KEYS)}.", 400
        )
    model = body.get("model")
    if not isinstance(model, str) or not is_dns_label(model):
        raise PromotionRefused(
            "model must be your team's name for the model: lower-case letters, digits and '-', "
            f"at most 63 characters (got {excerpt(str(model))}).",
            400,
        )
    run_id = body.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise PromotionRefused(
            "run_id must be the MLflow run that logged the model (32 hexadecimal characters).",
            400,
        )
    path = body.get("artifact_path", "model")
    if not _is_relative_path(path):
        raise PromotionRefused(
            "artifact_path must be the relative path the run logged the model under, "
            "such as model.",
            400,
        )
    team = body.get("team")
    if team is not None and not isinstance(team, str):
        raise PromotionRefused("team must be the name of one of your teams.", 400)
    human = {key: _text(body, key, limit=MAX_HUMAN_TEXT) for key in HUMAN_FIELDS}
    return PromotionRequest(
        model=model, run_id=run_id, artifact_path=path, team=team or None, **human
    )


def check_human_fields(rules: PromotionRules, request: PromotionRequest) -> None:
    """High-stakes models need the human part of their card."""
    if not rules.high_stakes:
        return
    missing = [key for key in HUMAN_FIELDS if not getattr(request, key)]
    if missing:
        raise PromotionRefused(
            f"Team {rules.team}'s model {rules.model} is high-stakes: its card needs "
            f"{', '.join(missing)}. Add them to the request.",
            400,
        )


def may_approve(
    *,
    approver: str,
    approver_groups: Iterable[str],
    requester: str,
    team: Team,
    rules: PromotionRules,
    config: MLTeamsConfig | None = None,
) -> None:
    """Raise unless ``approver`` (in hub groups ``approver_groups``) may decide the request."""
    groups = set(approver_groups)
    who = _approvers(team, rules)
    if approver == requester:
        raise PromotionRefused(
            f"You asked for this promotion; another lead of team {team.name} must approve it "
            f"({who}).",
            403,
        )
    leads = {
        membership.name
        for membership in user_teams(config or _single_team(team), groups)
        if membership.is_lead
    }
    if team.name in leads or groups & set(rules.approver_groups):
        return
    raise PromotionRefused(f"Only {who} may approve or reject team {team.name}'s promotions.", 403)


def _single_team(team: Team) -> MLTeamsConfig:
    return MLTeamsConfig.model_construct(teams={team.name: team}, profiles={}, datasets={})


def _approvers(team: Team, rules: PromotionRules) -> str:
    groups = [*team.lead_groups, f"{team.name}-leads", *rules.approver_groups]
    return "members of " + ", ".join(dict.fromkeys(groups))


def expires_at(requested_at: datetime, rules: PromotionRules) -> datetime:
    return requested_at + timedelta(seconds=rules.approval_ttl_seconds)


def is_expired(expires: datetime, now: datetime) -> bool:
    return now >= expires


def choose_rollback(versions: Sequence[int], current: int | None, target: int | None) -> int:
    """The governed version a rollback points the champion at: ``target``, or the newest
    version older than ``current``."""
    if target is not None:
        if target not in versions:
            raise PromotionRefused(
                f"There is no governed version {target}; the versions are "
                f"{', '.join(map(str, sorted(versions))) or 'none yet'}.",
                404,
            )
        if target == current:
            raise PromotionRefused(f"Version {target} is already the champion.", 409)
        return target
    older = sorted(v for v in versions if current is None or v < current)
    if not older:
        raise PromotionRefused("There is no earlier governed version to roll back to.", 409)
    return older[-1]
