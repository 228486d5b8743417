"""The admission decision: may this spawn start now, wait in the queue, or not at all?

``decide`` is a pure function of the configuration, the ledger and the request. It reads
only indexed totals from the ledger, so its cost does not grow with the number of pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from hub_ext.policy.config import MLTeamsConfig, Profile, Quota, Team
from hub_ext.policy.ledger import Ledger, LedgerView, Reservation, Usage, server_key
from hub_ext.policy.quantities import describe_cpu, describe_memory
from hub_ext.policy.validation import excerpt, plural


class Outcome(str, Enum):
    ADMIT = "admit"
    QUEUE = "queue"
    REJECT = "reject"


class Reason(str, Enum):
    """Why a spawn was not admitted at once."""

    UNKNOWN_TEAM = "unknown-team"
    UNKNOWN_PROFILE = "unknown-profile"
    PROFILE_NOT_ALLOWED = "profile-not-allowed"
    GPUS_NOT_ALLOWED = "gpus-not-allowed"
    EXCEEDS_TEAM_QUOTA = "exceeds-team-quota"
    EXCEEDS_USER_CAP = "exceeds-user-cap"
    USER_GPUS_IN_USE = "user-gpus-in-use"
    TEAM_GPUS_IN_USE = "team-gpus-in-use"
    TEAM_CPU_IN_USE = "team-cpu-in-use"
    TEAM_MEMORY_IN_USE = "team-memory-in-use"
    QUEUE_WAITING = "queue-waiting"


REASON_STATUS: dict[Reason, int] = {
    Reason.UNKNOWN_TEAM: 403,
    Reason.UNKNOWN_PROFILE: 400,
    Reason.PROFILE_NOT_ALLOWED: 403,
    Reason.GPUS_NOT_ALLOWED: 400,
    Reason.EXCEEDS_TEAM_QUOTA: 403,
    Reason.EXCEEDS_USER_CAP: 403,
    Reason.USER_GPUS_IN_USE: 429,
    Reason.TEAM_GPUS_IN_USE: 429,
    Reason.TEAM_CPU_IN_USE: 429,
    Reason.TEAM_MEMORY_IN_USE: 429,
    Reason.QUEUE_WAITING: 429,
}
GPU_REASONS = frozenset({Reason.USER_GPUS_IN_USE, Reason.TEAM_GPUS_IN_USE, Reason.QUEUE_WAITING})


@dataclass(frozen=True)
class SpawnRequest:
    """A user asks to start ``server_name`` with ``profile`` in ``team``.

    ``gpus`` is the user's choice for a profile that offers a range; ``None`` takes the
    profile's default.
    """

    user: str
    team: str
    profile: str
    server_name: str = ""
    gpus: int | None = None

    @property
    def server(self) -> str:
        return server_key(self.user, self.server_name)


@dataclass(frozen=True)
class Decision:
    """The outcome of ``decide``, with the resources the server will hold and a message."""

    outcome: Outcome
    request: SpawnRequest
    message: str
    reason: Reason | None = None
    gpus: int = 0
    cpu: int = 0
    memory: int = 0

    @property
    def admitted(self) -> bool:
        return self.outcome is Outcome.ADMIT

    @property
    def queued(self) -> bool:
        return self.outcome is Outcome.QUEUE

    @property
    def rejected(self) -> bool:
        return self.outcome is Outcome.REJECT

    @property
    def http_status(self) -> int:
        """200 when admitted, 202 when queued, else 400, 403 or 429 (over quota right now)."""
        if self.outcome is Outcome.ADMIT:
            return 200
        if self.outcome is Outcome.QUEUE:
            return 202
        return REASON_STATUS.get(self.reason, 403) if self.reason else 403

    def reservation(self, now: float) -> Reservation:
        """The reservation that holds this decision's resources for its server."""
        request = self.request
        return Reservation(
            server=request.server,
            team=request.team,
            user=request.user,
            profile=request.profile,
            gpus=self.gpus,
            cpu=self.cpu,
            memory=self.memory,
            created_at=now,
        )


class WaitingLine(Protocol):
    """What ``decide`` needs to know about the queue: how many spawns wait ahead of a server."""

    def ahead_of(self, team: str, server: str) -> int: ...


def ask_lead(team: Team) -> str:
    """The "ask your team lead" phrase, with the team's contact when one is configured."""
    return f"ask your team lead ({team.contact})" if team.contact else "ask your team lead"


def decide(
    config: MLTeamsConfig,
    ledger: LedgerView,
    request: SpawnRequest,
    *,
    queue: WaitingLine | None = None,
) -> Decision:
    """Decide whether ``request`` may start now, must queue, or is rejected.

    Checks, in order: the team and profile exist and the team may use the profile; the GPU
    count is one the profile offers; the request fits the team's quota and the per-user cap
    at all; it fits what is free now (team CPU and memory, the user's GPUs, the team's GPUs);
    and no earlier spawn of the team is waiting in the queue for GPUs.

    Only a shortage of team GPUs (or earlier spawns waiting for them) leads to ``QUEUE``, and
    only when the profile opts in; everything else is ``REJECT``. A server's own pod or
    reservation is not counted against it, so deciding again for the same server is safe.
    """
    team = config.teams.get(request.team)
    if team is None:
        return _reject(
            request,
            Reason.UNKNOWN_TEAM,
            f"You cannot start servers in team {excerpt(request.team)}.",
        )
    profile = config.profiles.get(request.profile)
    if profile is None:
        return _reject(
            request,
            Reason.UNKNOWN_PROFILE,
            f"There is no profile {excerpt(request.profile)}. Choose one of: "
            f"{', '.join(team.profiles)}.",
        )
    if profile.name not in team.profiles:
        return _reject(
            request,
            Reason.PROFILE_NOT_ALLOWED,
            f"Team {team.name} may not use profile {profile.name}. Choose one of: "
            f"{', '.join(team.profiles)}.",
        )
    gpus = profile.gpus if request.gpus is None else request.gpus
    if not profile.gpus_min <= gpus <= profile.gpus_max:
        return _reject(request, Reason.GPUS_NOT_ALLOWED, _gpu_range_message(profile, gpus))
    need = Usage(gpus, profile.cpu or 0, profile.memory or 0, 1)
    quota = ledger.effective_quota(team, request.user)
    static = _static_problem(team, profile, quota, need)
    if static is not None:
        reason, message = static
        return _reject(request, reason, message, need)
    held_by_server = ledger.server_share(request.server, team.name)
    team_used = ledger.team_usage(team.name) - held_by_server
    user_used = ledger.user_usage(team.name, request.user) - ledger.server_share(
        request.server, team.name, request.user
    )
    if quota.cpu is not None and team_used.cpu + need.cpu > quota.cpu:
        free = max(quota.cpu - team_used.cpu, 0)
        return _reject(
            request,
            Reason.TEAM_CPU_IN_USE,
            f"Team {team.name} has {describe_cpu(free)} of {describe_cpu(quota.cpu)} free and "
            f"profile {profile.name} needs {describe_cpu(need.cpu)}. Stop a server or "
            f"{ask_lead(team)}.",
            need,
        )
    if quota.memory is not None and team_used.memory + need.memory > quota.memory:
        free = max(quota.memory - team_used.memory, 0)
        return _reject(
            request,
            Reason.TEAM_MEMORY_IN_USE,
            f"Team {team.name} has {describe_memory(free)} of {describe_memory(quota.memory)} "
            f"memory free and profile {profile.name} needs {describe_memory(need.memory)}. "
            f"Stop a server or {ask_lead(team)}.",
            need,
        )
    if gpus == 0:
        return _admit(request, team, need)
    team_free = max(quota.gpus - team_used.gpus, 0)
    free_text = f"Team {team.name} has {team_free} of {plural(quota.gpus, 'GPU')} free"
    held_text = f"you hold {user_used.gpus} of your {quota.gpus_per_user}"
    asked = f"you asked for {gpus}"
    if user_used.gpus + gpus > quota.gpus_per_user:
        return _reject(
            request,
            Reason.USER_GPUS_IN_USE,
            f"{free_text} ({held_text}; {asked}). Stop one of your servers or {ask_lead(team)}.",
            need,
        )
    if gpus > team_free:
        text = f"{free_text} ({held_text}; {asked})."
        return _wait_or_reject(request, team, profile, Reason.TEAM_GPUS_IN_USE, text, need)
    waiting = queue.ahead_of(team.name, request.server) if queue is not None else 0
    if waiting:
        verb = "is" if waiting == 1 else "are"
        text = (
            f"{free_text}, but {plural(waiting, 'earlier request')} {verb} waiting for them "
            f"({held_text}; {asked})."
        )
        return _wait_or_reject(request, team, profile, Reason.QUEUE_WAITING, text, need)
    return _admit(request, team, need)


def decide_and_reserve(
    config: MLTeamsConfig,
    ledger: Ledger,
    request: SpawnRequest,
    *,
    now: float,
    queue: WaitingLine | None = None,
) -> Decision:
    """``decide``, and when admitted, reserve the resources in the same synchronous step.

    Call it without awaiting anything in between its decision and the pod creation's start,
    so that concurrent spawns see each other's reservations and cannot over-admit. Release
    the reservation with ``ledger.release(request.server)`` when the spawn fails or the
    server stops.
    """
    decision = decide(config, ledger, request, queue=queue)
    if decision.admitted:
        ledger.reserve(decision.reservation(now))
    return decision


def _admit(request: SpawnRequest, team: Team, need: Usage) -> Decision:
    what = plural(need.gpus, "GPU") if need.gpus else "no GPU"
    return Decision(
        Outcome.ADMIT,
        request,
        f"Starting with {what} in team {team.name}.",
        None,
        need.gpus,
        need.cpu,
        need.memory,
    )


def _reject(
    request: SpawnRequest, reason: Reason, message: str, need: Usage | None = None
) -> Decision:
    need = need or Usage()
    return Decision(Outcome.REJECT, request, message, reason, need.gpus, need.cpu, need.memory)


def _wait_or_reject(
    request: SpawnRequest,
    team: Team,
    profile: Profile,
    reason: Reason,
    situation: str,
    need: Usage,
) -> Decision:
    if profile.queue.enabled:
        minutes = max(1, round(profile.queue.max_wait_seconds / 60))
        message = (
            f"{situation} Your server is queued and starts when GPUs free up "
            f"(waiting at most {plural(minutes, 'minute')})."
        )
        return Decision(Outcome.QUEUE, request, message, reason, need.gpus, need.cpu, need.memory)
    return _reject(request, reason, f"{situation} Stop a server or {ask_lead(team)}.", need)


def _gpu_range_message(profile: Profile, gpus: int) -> str:
    if not profile.gpu_choice:
        return (
            f"Profile {profile.name} has a fixed GPU count of {profile.gpus}; "
            f"{plural(gpus, 'GPU')} cannot be chosen."
        )
    return (
        f"Profile {profile.name} offers {profile.gpus_min} to "
        f"{plural(profile.gpus_max, 'GPU')}; {gpus} cannot be chosen."
    )


def _static_problem(
    team: Team, profile: Profile, quota: Quota, need: Usage
) -> tuple[Reason, str] | None:
    """A request that could never fit, however many servers stopped."""
    lead = ask_lead(team)
    if need.gpus > quota.gpus:
        return (
            Reason.EXCEEDS_TEAM_QUOTA,
            f"Profile {profile.name} needs {plural(need.gpus, 'GPU')} but team {team.name}'s "
            f"quota is {plural(quota.gpus, 'GPU')}. Choose a smaller profile or {lead}.",
        )
    if need.gpus > quota.gpus_per_user:
        return (
            Reason.EXCEEDS_USER_CAP,
            f"Profile {profile.name} needs {plural(need.gpus, 'GPU')} but team {team.name} "
            f"allows at most {quota.gpus_per_user} per user. Choose a smaller profile or {lead}.",
        )
    if quota.cpu is not None and need.cpu > quota.cpu:
        return (
            Reason.EXCEEDS_TEAM_QUOTA,
            f"Profile {profile.name} needs {describe_cpu(need.cpu)} but team {team.name}'s "
            "quota is "
            f"{describe_cpu(quota.cpu)}. Choose a smaller profile or {lead}.",
        )
    if quota.memory is not None and need.memory > quota.memory:
        return (
            Reason.EXCEEDS_TEAM_QUOTA,
            f"Profile {profile.name} needs {describe_memory(need.memory)} of memory but team "
            f"{team.name}'s "
            f"quota is {describe_memory(quota.memory)}. Choose a smaller profile or {lead}.",
        )
    return None
