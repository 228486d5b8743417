"""A team's figures for the JupyterLab side panel, shaped from what the cluster and the hub say.

Plain data in, the JSON of ``GET /api/teams/<team>`` out: the GPUs of the team's quota in use
and free, the GPUs the caller holds, the spawns of the team waiting for GPUs, and the gates and
approvals a promotion in the team goes through. What could not be read is ``None`` and the
answer's ``source`` and ``note`` say so in words; nothing is made up to fill a gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub_ext.policy.config import MLTeamsConfig, Promotion, Team
from hub_ext.policy.ledger import PodSummary
from hub_ext.policy.manifests import GPU_QUOTA_KEY
from hub_ext.policy.quantities import QuantityError, parse_memory
from hub_ext.policy.user_options import UserOptionsError, validate_user_options

LIVE = "live"
CONFIG = "config"
PENDING_SPAWN = "spawn"


@dataclass(frozen=True)
class QuotaGpus:
    """The GPUs of a team namespace's ResourceQuota, as the cluster counts them."""

    limit: int
    in_use: int


@dataclass(frozen=True)
class PendingSpawn:
    """A server of a team member that the hub reports as starting, with the GPUs it asks for."""

    user: str
    server: str
    gpus: int
    started: str

    @property
    def key(self) -> str:
        """The key that ties the server to its pod (``ledger.server_key``)."""
        return f"{self.user}/{self.server}"


@dataclass(frozen=True)
class ClusterReading:
    """What the cluster said about a team namespace: its quota and its pods, ``None`` where it
    could not be read."""

    quota: Mapping[str, Any] | None
    pods: Sequence[Mapping[str, Any]] | None


def _count(value: Any) -> int | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return int(parse_memory(str(value)))
    except (QuantityError, ValueError):
        return None


def quota_gpus(quota: Mapping[str, Any] | None) -> QuotaGpus | None:
    """``status.hard`` and ``status.used`` of ``requests.nvidia.com/gpu`` in a ResourceQuota as
    the API returns it; ``None`` when it does not say both."""
    status = quota.get("status") if isinstance(quota, Mapping) else None
    if not isinstance(status, Mapping):
        return None
    hard, used = status.get("hard"), status.get("used")
    if not isinstance(hard, Mapping) or not isinstance(used, Mapping):
        return None
    limit, in_use = _count(hard.get(GPU_QUOTA_KEY)), _count(used.get(GPU_QUOTA_KEY))
    if limit is None or in_use is None:
        return None
    return QuotaGpus(limit, in_use)


def pod_summaries(pods: Iterable[Mapping[str, Any]]) -> list[PodSummary]:
    """The pods of a namespace as the ledger summarises them."""
    return [PodSummary.from_manifest(pod) for pod in pods if isinstance(pod, Mapping)]


def gpus_held(pods: Iterable[PodSummary], user: str | None = None) -> int:
    """The GPUs of the pods that hold resources (running or pending), only ``user``'s if
    given (the user the hub annotated the pod with, not the label's lossy rendering)."""
    return sum(pod.gpus for pod in pods if pod.active and (user is None or pod.user == user))


def pending_spawns(
    config: MLTeamsConfig, team: str, user: Mapping[str, Any]
) -> list[PendingSpawn] | None:
    """The servers of the hub's user model ``user`` pending spawn in ``team`` with GPUs.

    ``None`` when the model has no ``servers``: the hub shows them only to a token that may read
    the user's servers. The team and GPUs come from the server's ``user_options`` as the spawner
    reads them; options that no longer validate are left out.
    """
    servers = user.get("servers")
    if not isinstance(servers, Mapping):
        return None
    name, groups = user.get("name"), user.get("groups")
    if not isinstance(name, str) or not isinstance(groups, list):
        return []
    found = []
    for server_name, server in servers.items():
        if not isinstance(server, Mapping) or server.get("pending") != PENDING_SPAWN:
            continue
        try:
            options = validate_user_options(config, server.get("user_options"), groups=groups)
        except UserOptionsError:
            continue
        gpus = options.profile.gpus if options.gpus is None else options.gpus
        if options.team == team and gpus > 0:
            started = str(server.get("started") or "")
            found.append(PendingSpawn(name, str(server_name), gpus, started))
    return found


def spawn_queue(
    pending: Iterable[PendingSpawn], pods: Iterable[PodSummary]
) -> list[dict[str, Any]]:
    """The spawns that wait for GPUs: pending, with no pod yet (a spawn that has its pod was
    admitted and is starting), in the order they began, which is the order of the team's line."""
    with_pods = {pod.server for pod in pods if pod.active}
    waiting = sorted(
        (spawn for spawn in pending if spawn.key not in with_pods),
        key=lambda spawn: (spawn.started, spawn.user, spawn.server),
    )
    return [
        {"user": spawn.user, "gpus": spawn.gpus, "position": position}
        for position, spawn in enumerate(waiting, start=1)
    ]


def _gate(gate: str, metric: str | None, threshold: float | None, text: str) -> dict[str, Any]:
    return {"gate": gate, "metric": metric, "threshold": threshold, "description": text}


def gate_list(promotion: Promotion) -> list[dict[str, Any]]:
    """The team's gates, named as the promotion's results name them (``accuracy.min``)."""
    gates = []
    for metric, gate in sorted(promotion.gates.items()):
        if gate.min is not None:
            text = f"{metric} measured on the team's held-out set is at least {gate.min:g}"
            gates.append(_gate(f"{metric}.min", metric, gate.min, text))
        if gate.max is not None:
            text = f"{metric} measured on the team's held-out set is at most {gate.max:g}"
            gates.append(_gate(f"{metric}.max", metric, gate.max, text))
        if gate.max_regression is not None:
            text = f"{metric} is at most {gate.max_regression:g} worse than the current champion's"
            gates.append(_gate(f"{metric}.max_regression", metric, gate.max_regression, text))
    if promotion.evidence.signature:
        text = "the model was logged with a signature (its inputs and outputs)"
        gates.append(_gate("evidence.signature", None, None, text))
    if promotion.evidence.dataset_inputs:
        text = "the run recorded at least one dataset it was trained on"
        gates.append(_gate("evidence.dataset_inputs", None, 1.0, text))
    return gates


def approvers(team: Team) -> str:
    """Who approves a high-stakes promotion of the team, in words."""
    who = f"a lead of team {team.name}"
    groups = team.promotion.approver_groups
    return f"{who} or a member of {', '.join(groups)}" if groups else who


def promotion_view(team: Team, unavailable: str | None) -> dict[str, Any]:
    """The team's promotion rules; ``unavailable`` says why promotion cannot be used now."""
    return {
        "available": unavailable is None,
        "reason": unavailable,
        "high_stakes": team.promotion.high_stakes,
        "approvers": approvers(team),
        "gates": gate_list(team.promotion),
    }


def _notes(team: Team, quota: QuotaGpus | None, reading: ClusterReading) -> list[str]:
    notes = []
    if quota is None and reading.pods is None:
        notes.append(
            "Live figures are unavailable: the cluster did not answer for namespace "
            f"{team.namespace}. These are the team's configured limits."
        )
    elif quota is None:
        notes.append(
            f"The live GPU quota of namespace {team.namespace} is unavailable: the limit is the "
            "team's configured one, and the GPUs in use are counted from the team's pods."
        )
    elif reading.pods is None:
        notes.append("The GPUs you hold are unavailable: the cluster did not list the team's pods.")
    return notes


def team_figures(
    team: Team,
    *,
    user: str,
    reading: ClusterReading,
    queue: Sequence[Mapping[str, Any]] | None,
    promotion_unavailable: str | None,
    per_user_limit: int | None = None,
    requests: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The answer of ``GET /api/teams/<team>`` for ``user``.

    ``queue`` is ``None`` when the hub could not be asked about the team's pending spawns.
    ``per_user_limit`` is the user's own cap with the admin pages' overrides and grants (default:
    the configured one); ``requests`` are the user's quota requests in the team, newest first
    (``None`` when the service keeps none).
    """
    quota = quota_gpus(reading.quota)
    pods = None if reading.pods is None else pod_summaries(reading.pods)
    limit = team.quota.gpus if quota is None else quota.limit
    in_use = quota.in_use if quota is not None else None if pods is None else gpus_held(pods)
    notes = _notes(team, quota, reading)
    if queue is None:
        notes.append("The spawn queue is unavailable: the hub did not answer.")
    return {
        "team": team.name,
        "display_name": team.display_name,
        "source": LIVE if quota is not None else CONFIG,
        "note": " ".join(notes) or None,
        "gpus": {
            "limit": limit,
            "in_use": in_use,
            "free": None if in_use is None else max(limit - in_use, 0),
            "per_user_limit": (
                team.quota.gpus_per_user if per_user_limit is None else per_user_limit
            ),
            "you_hold": None if pods is None else gpus_held(pods, user),
            "queue": list(queue or ()),
        },
        "promotion": promotion_view(team, promotion_unavailable),
        "quota_requests": None if requests is None else [dict(r) for r in requests],
    }
