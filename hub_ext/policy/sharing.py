"""Who may be given access to a user's server: teammates, or anyone when the admins allow it.

JupyterHub 5+ shares a server with a user or a hub group; users themselves are not given the
``shares`` scope (it would let them share with anyone), so the ``mlteams`` service decides here
and grants through the hub. A team is shared with through every hub group that places a user in
the team (``team_hub_groups``): the groups TeamOAuthenticator creates (``<team>``,
``<team>-leads``) and the team's ``groups`` and ``lead_groups`` as hub group names; and, because
JupyterHub 5.5 and 6.1 apply only a user's own shares to their tokens (not their groups' shares,
so a group share alone opens nothing), with each current member of those groups as well.

Plain data in, a grant or a ``SharingRefused`` with the message the user reads out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hub_ext.policy.config import MLTeamsConfig, Sharing, Team
from hub_ext.policy.group_rules import LEADS_SUFFIX
from hub_ext.policy.membership import user_teams
from hub_ext.policy.validation import excerpt

TargetKind = Literal["user", "team"]
TARGET_KEYS = ("user", "team")
OUTSIDE_TURNED_OFF = "sharing outside your teams is turned off by your platform admins"


class SharingRefused(Exception):
    """A share that may not be made, with the message the user reads and its HTTP status."""

    def __init__(self, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class ShareTarget:
    """Whom a share is for: one user, or one team."""

    kind: TargetKind
    name: str


@dataclass(frozen=True)
class ShareGrant:
    """What the hub is asked to grant: the server shared with hub users and hub groups.

    ``team`` names the team the share is for (a team target, or a user target's shared team
    when there is one). A user target is shared with that user alone; a team with its hub groups
    (``groups``) and their current members (``users``).
    """

    target: ShareTarget
    team: str | None
    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()


def parse_target(body: Any) -> ShareTarget:
    """The target of a request body: ``{"user": "bob"}`` or ``{"team": "vision"}``."""
    if not isinstance(body, Mapping):
        raise SharingRefused(
            'Send a JSON object naming whom to share with: {"user": "<name>"} or '
            '{"team": "<team>"}.',
            400,
        )
    unknown = sorted(str(key) for key in body if key not in TARGET_KEYS)
    if unknown:
        shown = ", ".join(excerpt(key) for key in unknown)
        raise SharingRefused(
            f'Unknown key {shown}: name whom to share with as "user" or "team".', 400
        )
    given = [key for key in TARGET_KEYS if key in body]
    if len(given) != 1:
        raise SharingRefused(
            'Name exactly one of "user" or "team" to share with, not '
            + ("both." if given else "neither."),
            400,
        )
    kind: TargetKind = "user" if given[0] == "user" else "team"
    name = body[kind]
    if not isinstance(name, str) or not name.strip():
        raise SharingRefused(f'"{kind}" must be a non-empty name, got {excerpt(name)}.', 400)
    return ShareTarget(kind, name.strip())


def team_hub_groups(team: Team) -> tuple[str, ...]:
    """The hub groups whose members are in ``team``, each once, the team's own group first."""
    names = (team.name, f"{team.name}{LEADS_SUFFIX}", *team.groups, *team.lead_groups)
    return tuple(dict.fromkeys(names))


def team_for_group(config: MLTeamsConfig, group: str) -> str | None:
    """The team a hub group places its members in, if any (the first in configuration order)."""
    for team in config.teams.values():
        if group in team_hub_groups(team):
            return team.name
    return None


def decide_share(
    config: MLTeamsConfig,
    sharing: Sharing,
    *,
    owner: str,
    owner_groups: Iterable[str],
    target: ShareTarget,
    target_groups: Iterable[str] | None = None,
    existing_groups: Mapping[str, Iterable[str]] | None = None,
) -> ShareGrant:
    """Whether ``owner`` may share a server with ``target``, and the grant if so.

    ``target_groups`` are the hub groups of a user target (``None`` when the hub knows no such
    user); ``existing_groups`` the hub's groups of the team that exist, with their members
    (``None``: all of the team's groups are taken to exist, with no members known).
    """
    own_teams = [membership.team for membership in user_teams(config, owner_groups)]
    if target.kind == "user":
        return _share_with_user(config, sharing, owner, own_teams, target, target_groups)
    return _share_with_team(config, sharing, owner, own_teams, target, existing_groups)


def _share_with_user(
    config: MLTeamsConfig,
    sharing: Sharing,
    owner: str,
    own_teams: Sequence[Team],
    target: ShareTarget,
    target_groups: Iterable[str] | None,
) -> ShareGrant:
    who = _plain(target.name)
    if target.name == owner:
        raise SharingRefused("This is your own server: you have access to it already.", 400)
    if target_groups is None:
        raise SharingRefused(f"There is no user {who} on this hub.", 404)
    their_teams = {membership.name for membership in user_teams(config, target_groups)}
    shared = [team.name for team in own_teams if team.name in their_teams]
    if shared:
        return ShareGrant(target, shared[0], users=(target.name,))
    if sharing.outside_team:
        return ShareGrant(target, None, users=(target.name,))
    if not own_teams:
        raise SharingRefused(_no_team(OUTSIDE_TURNED_OFF))
    raise SharingRefused(f"{who} is not in {_your_teams(own_teams)}; {OUTSIDE_TURNED_OFF}.")


def _share_with_team(
    config: MLTeamsConfig,
    sharing: Sharing,
    owner: str,
    own_teams: Sequence[Team],
    target: ShareTarget,
    existing_groups: Mapping[str, Iterable[str]] | None,
) -> ShareGrant:
    team = config.teams.get(target.name)
    mine = team is not None and any(own.name == team.name for own in own_teams)
    if team is None or not (mine or sharing.outside_team):
        # a team that does not exist and a team that is not the owner's read the same, so
        # other teams' names are not revealed
        if sharing.outside_team:
            raise SharingRefused(f"There is no team {_plain(target.name)} on this hub.", 404)
        if not own_teams:
            raise SharingRefused(_no_team(OUTSIDE_TURNED_OFF))
        raise SharingRefused(
            f"{_plain(target.name)} is not one of your teams ({_names(own_teams)}); "
            f"{OUTSIDE_TURNED_OFF}."
        )
    groups = team_hub_groups(team)
    members: set[str] = set()
    if existing_groups is not None:
        groups = tuple(group for group in groups if group in existing_groups)
        for group in groups:
            members.update(existing_groups[group])
    if not groups:
        raise SharingRefused(
            f"Team {team.name} has no group on the hub yet (nobody of the team has signed in), "
            "so there is nobody to share with.",
            409,
        )
    return ShareGrant(target, team.name, groups, tuple(sorted(members - {owner})))


def _plain(name: str) -> str:
    """A name the user typed, sanitised, without the quotes ``excerpt`` puts around it."""
    return excerpt(name, 64)[1:-1]


def _names(teams: Sequence[Team]) -> str:
    return ", ".join(team.display_name for team in teams)


def _your_teams(teams: Sequence[Team]) -> str:
    if len(teams) == 1:
        return f"your team {teams[0].display_name}"
    return f"any of your teams ({_names(teams)})"


def _no_team(rule: str) -> str:
    return f"You are not a member of any ML team, and {rule}."
