"""The profiles a user may pick for a team, with live availability and why one is disabled."""

from __future__ import annotations

from dataclasses import dataclass

from hub_ext.policy.admission import Decision, SpawnRequest, WaitingLine, decide
from hub_ext.policy.config import MLTeamsConfig, Profile, Quota, Team
from hub_ext.policy.ledger import Ledger, Usage
from hub_ext.policy.quantities import describe_cpu, describe_memory
from hub_ext.policy.validation import plural


@dataclass(frozen=True)
class ProfileChoice:
    """One entry of the spawn form: the profile, what is free, and whether it can be picked."""

    profile: Profile
    availability: str
    decision: Decision
    is_default: bool = False

    @property
    def enabled(self) -> bool:
        """Selectable: it would start now, or it would wait in the queue."""
        return not self.decision.rejected

    @property
    def will_queue(self) -> bool:
        return self.decision.queued

    @property
    def disabled_reason(self) -> str | None:
        return self.decision.message if self.decision.rejected else None

    @property
    def note(self) -> str | None:
        """What the form shows under an enabled profile that would queue."""
        return self.decision.message if self.decision.queued else None


def profile_choices(
    config: MLTeamsConfig,
    ledger: Ledger,
    team: str,
    user: str,
    *,
    server_name: str = "",
    queue: WaitingLine | None = None,
) -> list[ProfileChoice]:
    """The profiles ``team`` may use, in the team's order, each decided as if requested now.

    The same ``decide`` that admits a spawn marks a profile disabled, so the form never offers
    what the hub would refuse. ``team`` must be one of the user's teams (see ``choose_team``).
    """
    team_config = config.teams[team]
    quota = ledger.effective_quota(team_config, user)
    team_used = ledger.team_usage(team)
    user_used = ledger.user_usage(team, user)
    out: list[ProfileChoice] = []
    for name in team_config.profiles:
        profile = config.profiles[name]
        request = SpawnRequest(user=user, team=team, profile=name, server_name=server_name)
        out.append(
            ProfileChoice(
                profile=profile,
                availability=availability_text(team_config, quota, team_used, user_used, profile),
                decision=decide(config, ledger, request, queue=queue),
                is_default=name == team_config.default_profile,
            )
        )
    return out


def availability_text(
    team: Team, quota: Quota, team_used: Usage, user_used: Usage, profile: Profile
) -> str:
    """``team vision: 3 of 8 GPUs free; you hold 1 of your 2`` for a GPU profile.

    A CPU-only profile shows the team's free CPU and memory where those have a quota, and
    ``no GPU`` otherwise.
    """
    if profile.gpus_max > 0:
        free = max(quota.gpus - team_used.gpus, 0)
        return (
            f"team {team.name}: {free} of {plural(quota.gpus, 'GPU')} free; "
            f"you hold {user_used.gpus} of your {quota.gpus_per_user}"
        )
    parts: list[str] = []
    if quota.cpu is not None:
        free_cpu = max(quota.cpu - team_used.cpu, 0)
        parts.append(f"{describe_cpu(free_cpu)} of {describe_cpu(quota.cpu)}")
    if quota.memory is not None:
        free_memory = max(quota.memory - team_used.memory, 0)
        parts.append(f"{describe_memory(free_memory)} of {describe_memory(quota.memory)} memory")
    if not parts:
        return f"team {team.name}: no GPU"
    return f"team {team.name}: no GPU; {' and '.join(parts)} free"
