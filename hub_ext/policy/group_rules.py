"""Identity-provider groups to teams: pure rules, no JupyterHub or network here.

A team's ``groups`` and ``lead_groups`` (the ``MLTeams`` section) are read as rules:

* a name without ``/`` matches that exact name (``vision-engineers``); names that are e-mail
  addresses (Google groups) and Azure AD object IDs (GUIDs) match regardless of case;
* a name with ``/`` is a Keycloak group path: it matches with or without the leading slash and,
  unless sub-groups are turned off, every group below it (``/ml/vision`` matches
  ``ml/vision`` and ``/ml/vision/interns``).

Extra rules (``TeamOAuthenticator.group_rules``) match by glob or regular expression; a regular
expression may take the team name from its named group ``team``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub_ext.policy.config import MLTeamsConfig

LEADS_SUFFIX = "-leads"
"""The hub group of a team's leads is ``<team>-leads``."""

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
RULE_KINDS = ("exact", "path", "glob", "regex")
RULE_KEYS = ("glob", "regex", "team", "lead", "description")
ENTRY_KEYS = ("path", "name", "displayName", "email", "id", "value")


class GroupRuleError(ValueError):
    """A rule in the configuration is not valid; the message names the key."""


class GroupsOverageError(Exception):
    """The token names a source to fetch the groups from instead of listing them (Azure AD)."""

    def __init__(self, claim: str, endpoint: str | None) -> None:
        self.claim = claim
        self.endpoint = endpoint
        super().__init__(
            f"The identity provider did not list your groups in the {claim!r} claim because "
            "you are in too many groups (Azure AD groups overage)"
            + (f"; it points to {endpoint} instead" if endpoint else "")
            + ". A platform admin can limit the claim to the groups assigned to the hub's "
            "application (Azure: Token configuration, 'Groups assigned to the application') "
            "or turn on TeamOAuthenticator.graph_group_lookup."
        )


@dataclass(frozen=True)
class GroupRule:
    """One rule: IdP groups matching ``pattern`` belong to ``team`` (or lead it)."""

    kind: str
    pattern: str
    team: str | None
    lead: bool = False
    subgroups: bool = True

    def match(self, group: str) -> str | None:
        """The team ``group`` maps to under this rule, or ``None``."""
        if self.kind == "exact":
            if _fold(group) == _fold(self.pattern):
                return self.team
            return None
        if self.kind == "path":
            path, own = _path(group), _path(self.pattern)
            if path == own or (self.subgroups and own and path.startswith(own + "/")):
                return self.team
            return None
        if self.kind == "glob":
            return self.team if fnmatch.fnmatchcase(group, self.pattern) else None
        found = re.fullmatch(self.pattern, group)
        if not found:
            return None
        if self.team is not None:
            return self.team
        return found.groupdict().get("team")


@dataclass(frozen=True)
class TeamAssignment:
    """What the IdP groups of one user mean: their teams, the teams they lead."""

    idp_groups: tuple[str, ...]
    teams: tuple[str, ...]
    leads: tuple[str, ...]

    @property
    def hub_groups(self) -> list[str]:
        """The hub groups of the user: each team, and ``<team>-leads`` for teams they lead."""
        return sorted([*self.teams, *(f"{team}{LEADS_SUFFIX}" for team in self.leads)])

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "idp_groups": list(self.idp_groups),
            "teams": list(self.teams),
            "leads": list(self.leads),
        }


def _fold(name: str) -> str:
    if GUID.match(name) or "@" in name:
        return name.casefold()
    return name


def _path(name: str) -> str:
    return name.strip("/")


def rule_for(name: str, team: str, lead: bool = False, subgroups: bool = True) -> GroupRule:
    """The rule a ``groups`` or ``lead_groups`` entry of a team stands for."""
    kind = "path" if "/" in name else "exact"
    return GroupRule(kind, name, team, lead, subgroups)


def parse_rules(
    raw: Sequence[Any], teams: Iterable[str], key: str = "TeamOAuthenticator.group_rules"
) -> list[GroupRule]:
    """Extra rules from the configuration: ``{glob|regex, team, lead, description}`` each."""
    known = set(teams)
    rules: list[GroupRule] = []
    if not isinstance(raw, (list, tuple)):
        raise GroupRuleError(f"{key}: must be a list of rules, got {type(raw).__name__}")
    for index, entry in enumerate(raw):
        where = f"{key}[{index}]"
        if not isinstance(entry, Mapping):
            raise GroupRuleError(f"{where}: must be a mapping with glob or regex, and team")
        unknown = sorted(set(entry) - set(RULE_KEYS))
        if unknown:
            raise GroupRuleError(
                f"{where}.{unknown[0]}: unknown key; allowed keys: {', '.join(RULE_KEYS)}"
            )
        kinds = [kind for kind in ("glob", "regex") if kind in entry]
        if len(kinds) != 1:
            raise GroupRuleError(f"{where}: needs exactly one of glob or regex")
        kind = kinds[0]
        pattern = entry[kind]
        if not isinstance(pattern, str) or not pattern:
            raise GroupRuleError(f"{where}.{kind}: must be a non-empty string")
        team = entry.get("team")
        if kind == "regex":
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise GroupRuleError(
                    f"{where}.regex: not a valid regular expression: {exc}"
                ) from None
            if team is None and "team" not in compiled.groupindex:
                raise GroupRuleError(
                    f"{where}.team: is required unless the regex has a named group 'team'"
                )
        elif team is None:
            raise GroupRuleError(f"{where}.team: is required")
        if team is not None and (not isinstance(team, str) or team not in known):
            raise GroupRuleError(
                f"{where}.team: {team!r} is not a team under MLTeams.teams; "
                f"declared: {', '.join(sorted(known)) or 'none'}"
            )
        lead = entry.get("lead", False)
        if not isinstance(lead, bool):
            raise GroupRuleError(f"{where}.lead: must be true or false, got {lead!r}")
        rules.append(GroupRule(kind, pattern, team, lead))
    return rules


def team_rules(
    config: MLTeamsConfig, extra: Sequence[GroupRule] = (), subgroups: bool = True
) -> list[GroupRule]:
    """Rules from every team's ``groups`` and ``lead_groups``, then the extra rules."""
    rules: list[GroupRule] = []
    for team in config.teams.values():
        rules.extend(rule_for(group, team.name, False, subgroups) for group in team.groups)
        rules.extend(rule_for(group, team.name, True, subgroups) for group in team.lead_groups)
    rules.extend(extra)
    return rules


def assign_teams(
    config: MLTeamsConfig, idp_groups: Iterable[str], rules: Sequence[GroupRule]
) -> TeamAssignment:
    """The teams (in configuration order) and led teams of a user with these IdP groups."""
    seen = tuple(sorted({group for group in idp_groups if isinstance(group, str) and group}))
    members: set[str] = set()
    leads: set[str] = set()
    for group in seen:
        for rule in rules:
            team = rule.match(group)
            if team is None or team not in config.teams:
                continue
            members.add(team)
            if rule.lead:
                leads.add(team)
    order = [name for name in config.teams if name in members]
    return TeamAssignment(seen, tuple(order), tuple(name for name in order if name in leads))


def _lookup(claims: Mapping[str, Any], key: str) -> Any:
    value: Any = claims
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _entry_name(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        for key in ENTRY_KEYS:
            value = entry.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def overage_endpoint(claims: Mapping[str, Any], claim: str) -> tuple[bool, str | None]:
    """Whether the claims carry an overage marker for ``claim``, and the source's endpoint."""
    names = claims.get("_claim_names")
    top = claim.split(".")[0]
    if isinstance(names, Mapping) and top in names:
        sources = claims.get("_claim_sources")
        source = sources.get(names[top]) if isinstance(sources, Mapping) else None
        endpoint = source.get("endpoint") if isinstance(source, Mapping) else None
        return True, endpoint if isinstance(endpoint, str) else None
    if claims.get("hasgroups") in (True, "true") and _lookup(claims, claim) is None:
        return True, None
    return False, None


def groups_from_claims(claims: Mapping[str, Any], claim_keys: Sequence[str]) -> list[str]:
    """The group names in the claims under any of ``claim_keys`` (dotted for nested claims).

    A claim may hold a list of names, a list of objects (``path``, ``name``, ``displayName``,
    ``email``, ``id`` or ``value``), or one name. Raises ``GroupsOverageError`` when a claim is
    replaced by an overage marker.
    """
    found: list[str] = []
    for key in claim_keys:
        value = _lookup(claims, key)
        if value is None:
            over, endpoint = overage_endpoint(claims, key)
            if over:
                raise GroupsOverageError(key, endpoint)
            continue
        entries = value if isinstance(value, (list, tuple)) else [value]
        for entry in entries:
            name = _entry_name(entry)
            if name and name not in found:
                found.append(name)
    return found
