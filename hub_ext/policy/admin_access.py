"""Who may see and act on which team in the admin pages, from the viewer's hub scopes.

The hub tells the ``mlteams`` service who a caller is and which scopes their token holds (the
model of ``GET /hub/api/user``). Two custom scopes decide the admin pages:

* ``custom:mlteams:admin``: a platform admin: every team, every action. A hub admin (the model's
  ``admin`` flag) counts as one when the token they use still carries an admin's reach over the
  hub's users (unfiltered ``list:users``): a token they limited to less is not an admin's.
* ``custom:mlteams:lead!group=<team>``: a lead of ``<team>`` (the team's hub group): that team's
  pages, stopping its servers, lowering its per-user cap, deciding its members' quota requests.

Anyone else has no admin pages. Plain data in, decisions out; the service turns a refusal into a
403 page or answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ADMIN_SCOPE = "custom:mlteams:admin"
LEAD_SCOPE = "custom:mlteams:lead"
HUB_ADMIN_REACH = "list:users"
"""The scope, unfiltered, that a hub admin's token must still hold to act as a platform admin."""
CUSTOM_SCOPES: dict[str, dict[str, str]] = {
    ADMIN_SCOPE: {
        "description": "Platform admin of jupyterhub-mlteams: every team's admin page and "
        "actions (quota overrides, approvals, stopping servers)",
    },
    LEAD_SCOPE: {
        "description": "Team lead in jupyterhub-mlteams: the team's admin page (filter "
        "!group=<team>), stopping its servers, deciding its members' quota requests",
    },
}


class AccessRefused(Exception):
    """The viewer may not see or do this; ``message`` says why in words."""

    def __init__(self, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class Viewer:
    """A signed-in caller of the admin pages: a platform admin, a lead of some teams, or
    neither."""

    name: str
    admin: bool = False
    lead_of: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @property
    def has_pages(self) -> bool:
        """Whether the viewer has any admin page at all."""
        return self.admin or bool(self.lead_of)

    def sees(self, team: str) -> bool:
        return self.admin or team in self.lead_of

    def role_in(self, team: str) -> str | None:
        """``"admin"``, ``"lead"`` or ``None`` for ``team``."""
        if self.admin:
            return "admin"
        return "lead" if team in self.lead_of else None


def _strings(values: Any) -> list[str]:
    if not isinstance(values, list | tuple | set | frozenset):
        return []
    return [value for value in values if isinstance(value, str)]


def viewer_from_model(model: Mapping[str, Any], teams: Iterable[str]) -> Viewer:
    """The viewer described by the hub's user model, limited to the configured ``teams``.

    A lead scope naming a group that is no team gives nothing; an unfiltered lead scope is not
    read as "every team" (only the admin scope is).
    """
    known = set(teams)
    scopes = _strings(model.get("scopes"))
    admin = ADMIN_SCOPE in scopes or (model.get("admin") is True and HUB_ADMIN_REACH in scopes)
    leads = set()
    for scope in scopes:
        base, _, scope_filter = scope.partition("!")
        kind, _, value = scope_filter.partition("=")
        if base == LEAD_SCOPE and kind == "group" and value in known:
            leads.add(value)
    name = model.get("name")
    return Viewer(
        name=name if isinstance(name, str) else "",
        admin=admin,
        lead_of=frozenset(leads),
        groups=frozenset(_strings(model.get("groups"))),
    )


def visible_teams(viewer: Viewer, teams: Iterable[str]) -> list[str]:
    """The teams whose pages the viewer sees, in the order given."""
    return [team for team in teams if viewer.sees(team)]


def require_pages(viewer: Viewer) -> None:
    """Refuse a viewer with no admin page at all."""
    if not viewer.has_pages:
        raise AccessRefused(
            "The mlteams admin pages are for team leads and platform admins; your account is "
            "neither. Ask your platform admins if you should lead a team."
        )


def require_team(viewer: Viewer, team: str) -> None:
    """Refuse a viewer who may not see or act on ``team``."""
    require_pages(viewer)
    if not viewer.sees(team):
        raise AccessRefused(
            f"You lead {', '.join(sorted(viewer.lead_of)) or 'no team'}, not team {team}; only "
            "its leads and the platform admins see it."
        )


def require_admin(viewer: Viewer, what: str) -> None:
    """Refuse anyone but a platform admin; ``what`` names the action."""
    if not viewer.admin:
        raise AccessRefused(f"Only platform admins may {what}.")
