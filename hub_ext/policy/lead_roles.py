"""Team-lead roles: JupyterHub roles whose scopes are filtered to one team's hub group.

A lead of team ``vision`` is in the hub group ``vision-leads`` (set by the authenticator from the
identity provider's lead groups); the role ``mlteams-lead-vision`` is assigned to that group, so
lead rights follow group changes at the next login or refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub_ext.policy.group_rules import LEADS_SUFFIX

ROLE_PREFIX = "mlteams-lead-"
TEAM_PLACEHOLDER = "{team}"
DEFAULT_LEAD_SCOPES = (
    "admin-ui",
    "list:users!group={team}",
    "read:users!group={team}",
    "read:servers!group={team}",
    "delete:servers!group={team}",
    "list:groups!group={team}",
    "read:groups!group={team}",
)
UNFILTERED_ALLOWED = ("admin-ui", "read:hub")
SERVICE_ACCESS_ALLOWED = ("access:services!service=mlteams-admin",)
"""Scopes filtered to one service that leads may hold: opening the admin pages."""
NEVER_GRANTED = ("groups", "admin:groups", "admin:users", "admin:servers", "tokens", "shares")


class LeadScopeError(ValueError):
    """A lead scope is not allowed; the message names the key."""


def check_lead_scopes(
    scopes: Sequence[str], key: str = "TeamOAuthenticator.lead_scopes"
) -> list[str]:
    """The scopes, if each is harmless or filtered to the team (``...!group={team}``)."""
    for index, scope in enumerate(scopes):
        where = f"{key}[{index}]"
        if not isinstance(scope, str) or not scope:
            raise LeadScopeError(f"{where}: must be a non-empty string")
        base, _, scope_filter = scope.partition("!")
        if base in NEVER_GRANTED:
            raise LeadScopeError(
                f"{where}: {scope!r} is never given to team leads; allowed are "
                f"{', '.join(UNFILTERED_ALLOWED)} and scopes ending in !group={TEAM_PLACEHOLDER}"
            )
        if scope in UNFILTERED_ALLOWED or scope in SERVICE_ACCESS_ALLOWED:
            continue
        if scope_filter != f"group={TEAM_PLACEHOLDER}":
            raise LeadScopeError(
                f"{where}: {scope!r} must be filtered to the lead's team: write "
                f"{base}!group={TEAM_PLACEHOLDER}"
            )
    return list(scopes)


def lead_role(team: str, scopes: Sequence[str]) -> dict[str, Any]:
    """The role of the leads of ``team``, assigned to the hub group ``<team>-leads``."""
    return {
        "name": f"{ROLE_PREFIX}{team}",
        "description": f"Lead of team {team}: sees and stops the team's servers",
        "scopes": [scope.replace(TEAM_PLACEHOLDER, team) for scope in scopes],
        "groups": [f"{team}{LEADS_SUFFIX}"],
    }


def check_team_names(teams: Iterable[str]) -> None:
    """No team may be named like another team's leads group (``vision-leads``)."""
    names = set(teams)
    for team in sorted(names):
        if f"{team}{LEADS_SUFFIX}" in names:
            raise LeadScopeError(
                f"MLTeams.teams.{team}{LEADS_SUFFIX}: the name is taken by the hub group of "
                f"team {team}'s leads; rename the team"
            )


def lead_roles(teams: Iterable[str], scopes: Sequence[str]) -> list[dict[str, Any]]:
    """One lead role per team."""
    names = list(teams)
    check_team_names(names)
    checked = check_lead_scopes(scopes)
    return [lead_role(team, checked) for team in names]
