"""Registering the ``mlteams`` service with the hub: one call in the hub's configuration.

``configure_service(c)`` (after ``c.MLTeams`` is set; in the Zero to JupyterHub chart, in
``hub.extraConfig``) adds the managed service, its role and the users' access to it, from the
browser, their tokens and their servers' own tokens. An entry
``mlteams`` already in ``c.JupyterHub.services`` (the chart's ``hub.services.mlteams``, which
carries its URL and token) is completed rather than replaced, and so is a ``user`` role already
in ``c.JupyterHub.load_roles``.
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import socket
import sys
from collections.abc import Iterable
from typing import Any

from traitlets.config import Config

from hub_ext.policy.admin_access import ADMIN_SCOPE, CUSTOM_SCOPES, LEAD_SCOPE
from hub_ext.policy.lead_roles import DEFAULT_LEAD_SCOPES, TEAM_PLACEHOLDER
from hub_ext.service.app import CONFIG_ENV, PAGES_SERVICE_NAME, PAGES_TOKEN_ENV, SERVICE_NAME
from hub_ext.service.promotion_settings import DEFAULT_DB_URL
from hub_ext.settings import MLTeams

SERVICE_ROLE = "mlteams-service"
SERVICE_SCOPES = (
    # grant, list and revoke shares of users' servers (includes access:servers, which the hub
    # requires of whoever grants access to a server); not share codes
    "shares",
    # share with a user or a group by name; read a user's groups to find their teams, and a
    # team's groups with their members to share with each of them
    "read:users:name",
    "read:users:groups",
    "read:groups",
    # the team's servers still pending spawn, for the queue the side panel and admin page show
    # (names, state and the options asked for; no access to the servers)
    "read:servers",
)
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
PAGES_ACCESS_SCOPE = f"access:services!service={PAGES_SERVICE_NAME}"
ADMIN_READ_SCOPES = (
    # what the admin pages read and do with the viewer's own token: the hub intersects them
    # with the viewer's own scopes (a lead's are filtered to the team's group)
    ADMIN_SCOPE,
    LEAD_SCOPE,
    "list:users",
    "read:users",
    "read:servers",
    "delete:servers",
)
"""The scopes the service's OAuth clients may ask for on behalf of a signed-in viewer."""
LEAD_PAGE_SCOPES = (f"{LEAD_SCOPE}!group={TEAM_PLACEHOLDER}", PAGES_ACCESS_SCOPE)
"""What a team lead's role gains for the admin pages: the team's lead scope, and the pages."""
DEFAULT_SERVER_SCOPES = ("users:activity!user", "access:servers!server")
SERVICE_ENV = (
    # promotion (hub_ext.service.promotion_settings): the registry, the object store, the
    # database, from the hub's environment (hub.extraEnv in the chart, values from Secrets)
    "MLTEAMS_REGISTRY_URL",
    "MLTEAMS_REGISTRY_USERNAME",
    "MLTEAMS_REGISTRY_PASSWORD",
    "MLTEAMS_OBJECT_STORE_ENDPOINT",
    "MLTEAMS_OBJECT_STORE_KEY_ID",
    "MLTEAMS_OBJECT_STORE_SECRET_KEY",
    "MLTEAMS_OBJECT_STORE_REGION",
    "MLTEAMS_GOVERNED_ROOT",
    "MLTEAMS_SERVICE_DB_URL",
    # the Kubernetes API for the evaluation Jobs: in the hub's pod, or a kubeconfig elsewhere
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "KUBECONFIG",
)
"""The hub's environment variables the service is given when they are set (a managed service
gets only a few of the hub's variables otherwise)."""
"""The scopes of JupyterHub's default ``server`` role, which a server's token gets by default."""


def service_command() -> list[str]:
    """The service's command, with the hub's own interpreter."""
    return [sys.executable, "-m", "hub_ext.service"]


def loopback_url() -> str:
    """A free port on 127.0.0.1, for a hub whose services run on its own host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def configure_service(
    c: Config, *, url: str | None = None, keep_env: Iterable[str] = ()
) -> dict[str, Any]:
    """Add the ``mlteams`` managed service, its role and users' access to it to ``c``.

    ``url`` is where the service listens (the chart's ``hub.services.mlteams.url`` wins; default a
    free loopback port); ``keep_env`` names environment variables of the hub to pass on to the
    service beside ``SERVICE_ENV``. Returns the service's entry.
    """
    services = list(c.JupyterHub.get("services", []))
    entry = next((s for s in services if s.get("name") == SERVICE_NAME), None)
    if entry is None:
        entry = {"name": SERVICE_NAME}
        services.append(entry)
    entry.setdefault("url", url or loopback_url())
    entry.setdefault("command", service_command())
    entry.setdefault("display", False)
    # operated by the platform, like the hub itself: no "authorize access" page when signing in
    entry.setdefault("oauth_no_confirm", True)
    environment = dict(entry.get("environment") or {})
    environment[CONFIG_ENV] = json.dumps(MLTeams(config=c).raw(), default=str)
    kept = (*SERVICE_ENV, *keep_env)
    environment.update({name: os.environ[name] for name in kept if name in os.environ})
    entry.setdefault("oauth_client_allowed_scopes", [ACCESS_SCOPE, *ADMIN_READ_SCOPES])
    pages = _pages_entry(services, entry["url"])
    environment[PAGES_TOKEN_ENV] = pages["api_token"]
    entry["environment"] = environment
    c.JupyterHub.services = services
    c.JupyterHub.custom_scopes = {**CUSTOM_SCOPES, **dict(c.JupyterHub.get("custom_scopes", {}))}
    if not c.MLTeamsTracking.get("service_url"):
        # where the servers' /mlteams/promote forwards to: the service itself, under its prefix
        c.MLTeamsTracking.service_url = entry["url"].rstrip("/") + f"/services/{SERVICE_NAME}/"
    roles = _with_roles(list(c.JupyterHub.get("load_roles", [])))
    c.JupyterHub.load_roles = roles
    c.Spawner.server_token_scopes = _server_token_scopes(
        c.Spawner.get("server_token_scopes"), roles
    )
    c.TeamOAuthenticator.lead_scopes = _with_page_scopes(c.TeamOAuthenticator.get("lead_scopes"))
    if not c.MLTeams.get("overrides_db_url"):
        # the hub reads the admin pages' quota overrides from the service's database
        c.MLTeams.overrides_db_url = os.environ.get("MLTEAMS_SERVICE_DB_URL", DEFAULT_DB_URL)
    return entry


def _server_token_scopes(configured: Any, roles: list[dict[str, Any]]) -> Any:
    """The scopes of a server's own token (``$JUPYTERHUB_API_TOKEN``) with access to the service
    added: code in a user's server may call it as the user, and nothing else new."""
    if callable(configured):

        async def with_access(spawner: Any) -> list[str]:
            scopes = configured(spawner)
            if inspect.isawaitable(scopes):
                scopes = await scopes
            return [*scopes, ACCESS_SCOPE]

        return with_access
    if not configured:
        server_role = next((r for r in roles if r.get("name") == "server"), None)
        configured = server_role["scopes"] if server_role else DEFAULT_SERVER_SCOPES
    return list(configured) if ACCESS_SCOPE in configured else [*configured, ACCESS_SCOPE]


def _with_roles(roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``roles`` with the service's role, and the access scope in the users' role."""
    service_role = next((r for r in roles if r.get("name") == SERVICE_ROLE), None)
    if service_role is None:
        roles.append(
            {
                "name": SERVICE_ROLE,
                "description": "Shares users' servers within their teams (jupyterhub-mlteams)",
                "scopes": list(SERVICE_SCOPES),
                "services": [SERVICE_NAME],
            }
        )
    user_role = next((r for r in roles if r.get("name") == "user"), None)
    if user_role is None:
        roles.append({"name": "user", "scopes": ["self", ACCESS_SCOPE]})
    elif ACCESS_SCOPE not in user_role.get("scopes", []):
        user_role["scopes"] = [*user_role.get("scopes", ["self"]), ACCESS_SCOPE]
    return roles


def _pages_entry(services: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The ``mlteams-admin`` entry: the admin pages, served by the same process at ``url``,
    listed in the hub's Services menu for those who may open them."""
    entry = next((s for s in services if s.get("name") == PAGES_SERVICE_NAME), None)
    if entry is None:
        entry = {"name": PAGES_SERVICE_NAME}
        services.append(entry)
    entry.setdefault("url", url)
    entry.setdefault("display", True)
    entry.setdefault("oauth_no_confirm", True)
    # a fresh secret at every start of the hub, which restarts the service with it
    entry.setdefault("api_token", secrets.token_hex(32))
    entry.setdefault("oauth_client_allowed_scopes", [PAGES_ACCESS_SCOPE, *ADMIN_READ_SCOPES])
    return entry


def _with_page_scopes(configured: Any) -> list[str]:
    """The team-lead scopes with what the admin pages need added (once)."""
    scopes = list(configured) if configured else list(DEFAULT_LEAD_SCOPES)
    return scopes + [scope for scope in LEAD_PAGE_SCOPES if scope not in scopes]


def lead_page_roles(c: Config) -> list[dict[str, Any]]:
    """For a hub whose authenticator does not manage the lead roles (another authenticator's
    groups, or the hub's own login as on the local platform): one role per team, assigned to its
    ``<team>-leads`` group, with what ``TeamOAuthenticator``'s lead role holds. There the team's
    members may be in any of the team's hub groups (its own, its identity-provider groups), so
    each scope filtered to the team is given for each of them; the lead scope names the team."""
    from hub_ext.policy.lead_roles import lead_roles
    from hub_ext.policy.sharing import team_hub_groups

    config = MLTeams(config=c).load()
    roles = lead_roles(config.teams, _with_page_scopes(None))
    for role in roles:
        team = config.teams[role["name"].removeprefix("mlteams-lead-")]
        scopes: list[str] = []
        for scope in role["scopes"]:
            base, _, scope_filter = scope.partition("!")
            if scope_filter != f"group={team.name}" or base == LEAD_SCOPE:
                scopes.append(scope)
                continue
            scopes += [f"{base}!group={group}" for group in team_hub_groups(team)]
        role["scopes"] = list(dict.fromkeys(scopes))
    return roles
