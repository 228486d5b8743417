"""Which teams a user belongs to, from the names of their hub groups, and which one they use.

Membership is decided with the sign-in's rule engine (``group_rules``), on hub group names: a
user is in a team when one of their hub groups is named like an entry of the team's ``groups``
or ``lead_groups``, or exactly like the team. They lead the team when one of their hub groups is
named like an entry of ``lead_groups``, or they are in the hub group ``<team>-leads`` (the groups
TeamOAuthenticator gives a user).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub_ext.policy.config import MLTeamsConfig, Team
from hub_ext.policy.group_rules import LEADS_SUFFIX, GroupRule, assign_teams
from hub_ext.policy.validation import excerpt

MAX_GROUPS_SHOWN = 10


@dataclass(frozen=True)
class Membership:
    """A user's place in one team."""

    team: Team
    is_lead: bool = False

    @property
    def name(self) -> str:
        return self.team.name


class TeamSelectionError(Exception):
    """The user has no team, or asked for a team that is not theirs."""

    def __init__(self, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


def user_teams(config: MLTeamsConfig, groups: Iterable[str]) -> list[Membership]:
    """The teams of a user whose hub groups are ``groups``, in configuration order."""
    assignment = assign_teams(config, groups, hub_group_rules(config))
    leads = set(assignment.leads)
    return [Membership(config.teams[name], name in leads) for name in assignment.teams]


def hub_group_rules(config: MLTeamsConfig) -> list[GroupRule]:
    """The rules that place a hub group in a team, by exact name.

    Hub groups are names already resolved at sign-in (where ``group_rules`` reads Keycloak
    paths, globs and regular expressions): each entry of a team's ``groups`` and ``lead_groups``
    matches itself, and so do the hub groups TeamOAuthenticator creates (``<team>`` and
    ``<team>-leads``).
    """
    rules: list[GroupRule] = []
    for team in config.teams.values():
        rules.extend(GroupRule("exact", group, team.name) for group in team.groups)
        rules.extend(GroupRule("exact", group, team.name, lead=True) for group in team.lead_groups)
        rules.append(GroupRule("exact", team.name, team.name))
        rules.append(GroupRule("exact", f"{team.name}{LEADS_SUFFIX}", team.name, lead=True))
    return rules


def led_teams(config: MLTeamsConfig, groups: Iterable[str]) -> list[Team]:
    """The teams a user leads."""
    return [membership.team for membership in user_teams(config, groups) if membership.is_lead]


def choose_team(
    config: MLTeamsConfig, groups: Iterable[str], requested: str | None = None
) -> Membership:
    """The team a spawn runs in.

    With one team, ``requested`` may be omitted. With several, it must name one of them. A
    team that does not exist and a team the user is not in get the same answer, so other
    teams' names and settings are not revealed.
    """
    seen = sorted({group for group in groups if isinstance(group, str)})
    memberships = user_teams(config, seen)
    if not memberships:
        raise TeamSelectionError(no_team_message(seen))
    names = [membership.name for membership in memberships]
    if requested is None or requested == "":
        if len(memberships) == 1:
            return memberships[0]
        raise TeamSelectionError(
            f"You are in several teams ({', '.join(names)}); choose the team to start "
            "this server in.",
            http_status=400,
        )
    for membership in memberships:
        if membership.name == requested:
            return membership
    raise TeamSelectionError(
        f"You are not a member of team {excerpt(requested)}. Your teams: {', '.join(names)}."
    )


def no_team_message(groups: Iterable[str]) -> str:
    """What a user in no team reads: the groups the hub saw for them and whom to ask."""
    seen = sorted(set(groups))
    if seen:
        shown = ", ".join(excerpt(group, 48) for group in seen[:MAX_GROUPS_SHOWN])
        more = len(seen) - MAX_GROUPS_SHOWN
        if more > 0:
            shown += f" and {more} more"
        groups_text = f"The hub sees you in these groups: {shown}."
    else:
        groups_text = "The hub sees you in no groups."
    return (
        f"You are not a member of any ML team, so you cannot start a server yet. {groups_text} "
        "Ask a platform admin to add one of your groups to a team."
    )
