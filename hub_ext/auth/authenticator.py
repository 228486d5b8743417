"""TeamOAuthenticator: an OAuthenticator that maps SSO groups to teams.

* At login and at each refresh (``auth_refresh_age``, and before every spawn) the identity
  provider's groups are read from the user's claims and turned into hub groups named like the
  teams (``vision``) plus ``<team>-leads`` for leads (``hub_ext.policy.group_rules``).
* Each team's leads get the role ``mlteams-lead-<team>`` through their ``<team>-leads`` group,
  with scopes filtered to the team (``hub_ext.policy.lead_roles``).
* A user in no team is refused at login with the groups the hub saw; at a refresh they lose
  their hub session.
* ID tokens are checked against the provider's keys (``jwks_url``); a provider that cannot be
  reached gives a clear error page.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Bool, List, Unicode, default

from hub_ext.auth.id_tokens import IdTokenError, verify_id_token
from hub_ext.policy import MLTeamsConfig
from hub_ext.policy.group_rules import (
    GroupRule,
    GroupsOverageError,
    TeamAssignment,
    assign_teams,
    groups_from_claims,
    overage_endpoint,
    parse_rules,
    rule_for,
    team_rules,
)
from hub_ext.policy.lead_roles import DEFAULT_LEAD_SCOPES, check_lead_scopes, lead_roles
from hub_ext.policy.membership import no_team_message
from hub_ext.settings import MLTeams

STATE_KEY = "mlteams"


class LoginRefused(web.HTTPError):
    """The login cannot go on; the message is shown on the hub's error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message
        self.jupyterhub_message = message
        self.reason = "Sign-in refused" if status == 403 else "Sign-in failed"

    def get_message(self) -> str:
        return self.message


class TeamOAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose users' identity-provider groups become hub team groups."""

    manage_groups = Bool(
        True,
        config=True,
        help="""Hub groups follow the identity provider: each user's groups are set to their
        teams (and `<team>-leads`) at every login and refresh. Keep it on.""",
    )
    manage_roles = Bool(
        True,
        config=True,
        help="""Let the authenticator define the team-lead roles (`mlteams-lead-<team>`,
        assigned to the hub groups `<team>-leads`). Keep it on.""",
    )
    reset_managed_roles_on_startup = Bool(
        True,
        config=True,
        help="Remove lead roles of teams that are no longer configured when the hub starts.",
    )
    groups_claims = List(
        Unicode(),
        default_value=["groups"],
        config=True,
        help="""Claims of the user info (or ID token, with `userdata_from_id_token`) that hold
        the user's groups; nested claims are written with dots (`realm_access.roles`). Each may
        be a list of names, a list of objects with `path`, `name`, `displayName`, `email`, `id`
        or `value`, or one name.""",
    )
    group_rules: List[Any] = List(
        config=True,
        help="""Extra mapping rules, after the `groups` and `lead_groups` of each team under
        `MLTeams.teams`: a list of `{glob: "okta-ml-vision-*", team: vision}` or
        `{regex: "ml-(?P<team>[a-z0-9-]+)-owners", lead: true}` (a regex without `team` takes
        the team from its named group `team`). See docs/admin/sso.md.""",
    )
    keycloak_subgroups = Bool(
        True,
        config=True,
        help="""A team group written as a path (`/ml/vision`) also matches the groups below it
        (`/ml/vision/interns`), as members of Keycloak sub-groups are members of the parent.""",
    )
    lead_scopes = List(
        Unicode(),
        default_value=list(DEFAULT_LEAD_SCOPES),
        config=True,
        help="""Scopes of the team-lead roles. `{team}` stands for the team's hub group; every
        scope other than `admin-ui` and `read:hub` must end in `!group={team}`, and `groups`,
        `admin:*` and `tokens` are never given.""",
    )
    no_team_contact = Unicode(
        "",
        config=True,
        help="""Whom a user in no team should ask, shown on the refusal page
        (`#ml-platform on Slack`).""",
    )
    allow_users_without_team = Bool(
        False,
        config=True,
        help="""Let users who map to no team log in (they cannot start a server). Hub admins
        (`admin_users`, `admin_groups`) may always log in.""",
    )
    jwks_url = Unicode(
        "",
        config=True,
        help="""The provider's signing keys (the `jwks_uri` of its OpenID configuration). When
        set, the ID token of every login and token refresh must be signed by one of them,
        unexpired, for `client_id`, and from `oidc_issuer` when that is set.""",
    )
    oidc_issuer = Unicode(
        "",
        config=True,
        help="The `iss` value the provider's ID tokens must carry (its issuer URL).",
    )
    graph_group_lookup = Bool(
        False,
        config=True,
        help="""Azure AD: when the token carries the groups overage claim instead of the groups,
        read the user's group object IDs from Microsoft Graph (`graph_member_objects_url`) with
        the user's access token (needs the `GroupMember.Read.All` permission).""",
    )
    graph_member_objects_url = Unicode(
        "https://graph.microsoft.com/v1.0/me/getMemberObjects",
        config=True,
        help="The Microsoft Graph endpoint used by `graph_group_lookup`.",
    )

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @default("any_allow_config")
    def _any_allow_config_default(self) -> bool:
        return True

    _teams_config: MLTeamsConfig | None = None
    _rules: list[GroupRule] | None = None
    _jwks: dict[str, Any] | None = None

    # -- configuration -------------------------------------------------------------------------

    @property
    def teams_config(self) -> MLTeamsConfig:
        if self._teams_config is None:
            self._teams_config = MLTeams(parent=self).load()
        return self._teams_config

    @property
    def rules(self) -> list[GroupRule]:
        if self._rules is None:
            extra = parse_rules(self.group_rules, self.teams_config.teams)
            self._rules = team_rules(self.teams_config, extra, self.keycloak_subgroups)
        return self._rules

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        """One lead role per team, assigned to the hub group ``<team>-leads``."""
        check_lead_scopes(self.lead_scopes)
        self.rules  # noqa: B018  (checks group_rules at hub start)
        return lead_roles(self.teams_config.teams, self.lead_scopes)

    # -- from claims to teams ------------------------------------------------------------------

    def assignment_of(self, idp_groups: list[str]) -> TeamAssignment:
        return assign_teams(self.teams_config, idp_groups, self.rules)

    def is_admin_by_group(self, idp_groups: list[str]) -> bool:
        admin_rules = [rule_for(group, "", subgroups=False) for group in self.admin_groups]
        return any(rule.match(group) is not None for rule in admin_rules for group in idp_groups)

    async def _graph_groups(self, auth_state: dict[str, Any]) -> list[str]:
        body = json.dumps({"securityEnabledOnly": False})
        response = await self.httpfetch(
            self.graph_member_objects_url,
            "Fetching group memberships from Microsoft Graph...",
            method="POST",
            headers={
                "Authorization": f"Bearer {auth_state['access_token']}",
                "Content-Type": "application/json",
            },
            body=body,
        )
        values = response.get("value", []) if isinstance(response, dict) else []
        return [value for value in values if isinstance(value, str)]

    async def idp_groups(self, auth_state: dict[str, Any]) -> list[str]:
        """The identity provider's groups of the user, from the claims in ``auth_state``."""
        claims = auth_state.get(self.user_auth_state_key) or {}
        try:
            return groups_from_claims(claims, self.groups_claims)
        except GroupsOverageError as exc:
            if not self.graph_group_lookup:
                raise LoginRefused(403, str(exc)) from None
            over = [key for key in self.groups_claims if overage_endpoint(claims, key)[0]]
            self.log.info("groups overage in %s: reading groups from Microsoft Graph", over)
            return await self._graph_groups(auth_state)

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_state = auth_model["auth_state"]
        groups = await self.idp_groups(auth_state)
        assignment = self.assignment_of(groups)
        auth_state[STATE_KEY] = assignment.as_dict()
        if self.is_admin_by_group(groups):
            auth_model["admin"] = True
        return auth_model

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The hub groups: the user's teams, and ``<team>-leads`` for the teams they lead."""
        saved = auth_state.get(STATE_KEY)
        if saved is None:
            groups = await self.idp_groups(auth_state)
            return set(self.assignment_of(groups).hub_groups)
        teams, leads = saved.get("teams", []), saved.get("leads", [])
        return set(TeamAssignment((), tuple(teams), tuple(leads)).hub_groups)

    def may_enter_without_team(self, auth_model: dict[str, Any]) -> bool:
        return self.allow_users_without_team or bool(auth_model.get("admin"))

    def refusal_message(self, auth_model: dict[str, Any]) -> str:
        seen = (auth_model.get("auth_state") or {}).get(STATE_KEY, {}).get("idp_groups", [])
        message = no_team_message(seen)
        if self.no_team_contact:
            message += f" Contact: {self.no_team_contact}."
        return message

    # -- login, refresh ------------------------------------------------------------------------

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> Any:
        auth_model = await super().authenticate(handler, data, **kwargs)
        teams = auth_model["auth_state"][STATE_KEY]["teams"]
        if not teams and not self.may_enter_without_team(auth_model):
            self.log.warning(
                "Refusing login of %s: no team for groups %s",
                auth_model["name"],
                auth_model["auth_state"][STATE_KEY]["idp_groups"],
            )
            raise LoginRefused(403, self.refusal_message(auth_model))
        return auth_model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        if auth_model is None:
            return False
        state = (auth_model.get("auth_state") or {}).get(STATE_KEY, {})
        return bool(state.get("teams")) or self.may_enter_without_team(auth_model)

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        try:
            refreshed = await super().refresh_user(user, handler, **kwargs)
        except LoginRefused as exc:
            if exc.status_code >= 500:
                raise
            self.log.warning("Ending the session of %s at refresh: %s", user.name, exc.message)
            user.sync_groups([])
            return False
        if not isinstance(refreshed, dict):
            return refreshed
        state = refreshed["auth_state"][STATE_KEY]
        if not state["teams"] and not self.may_enter_without_team(refreshed):
            self.log.warning(
                "Ending the session of %s: no team any more (groups %s)",
                user.name,
                state["idp_groups"],
            )
            user.sync_groups([])
            return False
        return refreshed

    # -- tokens and the provider ---------------------------------------------------------------

    async def fetch(self, req: Any, label: str = "fetching", parse_json: bool = True, **kw: Any):
        try:
            return await super().fetch(req, label=label, parse_json=parse_json, **kw)
        except HTTPClientError as exc:
            if exc.code == 599:
                raise self._unreachable(req.url) from None
            raise
        except OSError:
            raise self._unreachable(req.url) from None

    def _unreachable(self, url: str) -> LoginRefused:
        parsed = urlparse(url)
        return LoginRefused(
            503,
            f"The sign-in service ({parsed.scheme}://{parsed.netloc}) cannot be reached right "
            "now, so you cannot sign in. Try again in a few minutes; if it persists, tell a "
            "platform admin.",
        )

    async def _provider_keys(self, refresh: bool = False) -> dict[str, Any]:
        if self._jwks is None or refresh:
            self._jwks = await self.httpfetch(
                self.jwks_url, "Fetching the identity provider's signing keys...", method="GET"
            )
        return self._jwks or {}

    async def check_id_token(self, token: str) -> dict[str, Any]:
        """The claims of a verified ID token; ``LoginRefused`` when it is not acceptable."""
        for attempt in (False, True):
            keys = await self._provider_keys(refresh=attempt)
            try:
                return verify_id_token(token, keys, self.client_id, self.oidc_issuer or None)
            except IdTokenError as exc:
                if exc.unknown_key and not attempt:
                    continue
                self.log.warning("Rejected an ID token: %s", exc.message)
                raise LoginRefused(403, exc.message) from None
        raise AssertionError("unreachable")

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            token_info = await super().get_token_info(handler, params)
        except HTTPClientError as exc:
            if exc.code in (400, 401):
                raise LoginRefused(
                    403,
                    "The identity provider did not accept this sign-in (the code is invalid, "
                    "expired or already used). Please sign in again.",
                ) from None
            raise
        if self.jwks_url:
            id_token = token_info.get("id_token")
            if not id_token:
                raise LoginRefused(403, "The identity provider sent no ID token.")
            await self.check_id_token(id_token)
        return token_info
