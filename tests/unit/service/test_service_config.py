"""Registering the mlteams service with the hub, and the service refusing a bad start."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jupyterhub.scopes import _check_scopes_exist, _expand_scope, define_custom_scopes
from traitlets.config import Config

from hub_ext.policy import load_config
from hub_ext.policy.admin_access import ADMIN_SCOPE, LEAD_SCOPE
from hub_ext.policy.lead_roles import DEFAULT_LEAD_SCOPES, check_lead_scopes, lead_role
from hub_ext.service.admin.cluster import AdminCluster
from hub_ext.service.admin.workflow import AdminWorkflow
from hub_ext.service.app import CONFIG_ENV, PAGES_SERVICE_NAME, PAGES_TOKEN_ENV, MLTeamsService
from hub_ext.service.hub_config import (
    ACCESS_SCOPE,
    PAGES_ACCESS_SCOPE,
    SERVICE_SCOPES,
    configure_service,
    lead_page_roles,
)
from hub_ext.service.store import Store
from tests.unit.policy.sample import SAMPLE

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def hub_config(**sections: Any) -> Config:
    c = Config()
    for key, value in SAMPLE.items():
        setattr(c.MLTeams, key, value)
    for key, value in sections.items():
        setattr(c.JupyterHub, key, value)
    return c


def test_configure_service_adds_the_service_its_role_and_users_access() -> None:
    c = hub_config()
    entry = configure_service(c, url="http://127.0.0.1:10101")
    pages = c.JupyterHub.services[1]
    assert c.JupyterHub.services == [entry, pages]
    assert entry["name"] == "mlteams"
    assert entry["url"] == "http://127.0.0.1:10101"
    assert entry["command"] == [sys.executable, "-m", "hub_ext.service"]
    assert entry["oauth_no_confirm"] is True
    passed = json.loads(entry["environment"][CONFIG_ENV])
    assert passed["teams"] == SAMPLE["teams"]
    assert passed["sharing"] == {}
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["mlteams-service"]["services"] == ["mlteams"]
    assert roles["mlteams-service"]["scopes"] == list(SERVICE_SCOPES)
    assert roles["user"]["scopes"] == ["self", ACCESS_SCOPE]
    # a server's own token: the server role's scopes, and access to the service
    assert c.Spawner.server_token_scopes == [
        "users:activity!user",
        "access:servers!server",
        ACCESS_SCOPE,
    ]


def test_the_admin_pages_are_a_listed_service_of_the_same_process() -> None:
    c = hub_config()
    entry = configure_service(c, url="http://127.0.0.1:10101")
    pages = next(s for s in c.JupyterHub.services if s["name"] == PAGES_SERVICE_NAME)
    # same process, its own prefix and OAuth client, in the Services menu
    assert pages["url"] == entry["url"] and "command" not in pages
    assert pages["display"] is True and pages["oauth_no_confirm"] is True
    assert entry["environment"][PAGES_TOKEN_ENV] == pages["api_token"]
    assert len(pages["api_token"]) == 64
    allowed = set(pages["oauth_client_allowed_scopes"])
    assert {PAGES_ACCESS_SCOPE, ADMIN_SCOPE, LEAD_SCOPE, "read:users", "delete:servers"} <= allowed
    # the custom scopes are declared, and they and every allowed scope are ones the hub knows
    assert set(c.JupyterHub.custom_scopes) == {ADMIN_SCOPE, LEAD_SCOPE}
    define_custom_scopes(c.JupyterHub.custom_scopes)
    _check_scopes_exist(allowed | set(entry["oauth_client_allowed_scopes"]))
    # leads open the pages and hold the lead scope of their team only; nobody else is given
    # access to the pages, so the menu link is theirs (and the hub admins')
    lead_scopes = c.TeamOAuthenticator.lead_scopes
    assert f"{LEAD_SCOPE}!group={{team}}" in lead_scopes and PAGES_ACCESS_SCOPE in lead_scopes
    assert set(DEFAULT_LEAD_SCOPES) <= set(lead_scopes)
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert PAGES_ACCESS_SCOPE not in roles["user"]["scopes"]
    vision = lead_role("vision", check_lead_scopes(lead_scopes))
    assert vision["groups"] == ["vision-leads"]
    assert f"{LEAD_SCOPE}!group=vision" in vision["scopes"]
    # the hub reads the pages' overrides from the service's database
    assert c.MLTeams.overrides_db_url
    # a second call keeps one entry and the same token
    token = pages["api_token"]
    configure_service(c)
    assert [s["name"] for s in c.JupyterHub.services].count(PAGES_SERVICE_NAME) == 1
    assert c.TeamOAuthenticator.lead_scopes.count(PAGES_ACCESS_SCOPE) == 1
    assert pages["api_token"] == token


def test_lead_page_roles_for_a_hub_without_managed_roles() -> None:
    c = hub_config()
    roles = {role["name"]: role for role in lead_page_roles(c)}
    teams = SAMPLE["teams"]
    assert set(roles) == {f"mlteams-lead-{team}" for team in teams}
    for name, team in teams.items():
        role = roles[f"mlteams-lead-{name}"]
        assert role["groups"] == [f"{name}-leads"]
        # the lead scope names the team; hub scopes cover each hub group its members may be in
        assert f"{LEAD_SCOPE}!group={name}" in role["scopes"]
        for group in (name, *team.get("groups", ())):
            assert f"delete:servers!group={group}" in role["scopes"]
            assert f"read:users!group={group}" in role["scopes"]
        assert not [s for s in role["scopes"] if "!group=" in s and "{" in s]
        _check_scopes_exist({s for s in role["scopes"] if not s.startswith("custom:")})


def test_configure_service_completes_what_the_chart_declared() -> None:
    chart_service = {"name": "mlteams", "url": "http://hub:10101", "api_token": "from-chart"}
    user_role = {"name": "user", "scopes": ["self", "list:users"]}
    c = hub_config(services=[chart_service], load_roles=[user_role])
    entry = configure_service(c, url="http://127.0.0.1:1")
    assert len(c.JupyterHub.services) == 2
    assert entry["url"] == "http://hub:10101"
    assert entry["api_token"] == "from-chart"
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["user"]["scopes"] == ["self", "list:users", ACCESS_SCOPE]
    # calling it twice changes nothing more
    configure_service(c)
    assert len(c.JupyterHub.services) == 2
    assert [r["name"] for r in c.JupyterHub.load_roles].count("mlteams-service") == 1
    # the servers' /mlteams/promote forwards to the service under its prefix
    assert c.MLTeamsTracking.service_url == "http://hub:10101/services/mlteams/"
    assert roles["user"]["scopes"].count(ACCESS_SCOPE) == 1


def test_the_service_holds_shares_but_no_share_codes_and_no_admin_scope() -> None:
    _check_scopes_exist(set(SERVICE_SCOPES))
    _check_scopes_exist({ACCESS_SCOPE})
    held: set[str] = set()
    for scope in SERVICE_SCOPES:
        held |= set(_expand_scope(scope))
    assert "shares" in held
    assert "access:servers" in held  # the hub requires it of whoever grants access to a server
    assert not {scope for scope in held if scope.startswith(("share-codes", "admin", "tokens"))}
    assert "servers" not in held and "read:users" not in held


def test_the_openapi_description_covers_every_route(tmp_path: Path) -> None:
    described = yaml.safe_load((REPO / "hub_ext/service/openapi.yaml").read_text())
    app = MLTeamsService(
        service_url="http://127.0.0.1:1", hub_api_url="http://127.0.0.1:2/hub/api", api_token="x"
    )
    config = load_config(SAMPLE)
    store = Store(f"sqlite:///{tmp_path / 'service.sqlite'}")
    admin = AdminWorkflow(config, store, AdminCluster())
    served = {
        rule.matcher.regex.pattern.removeprefix("/services/mlteams").rstrip("$")
        for rule in app.make_app(config, admin=admin).wildcard_router.rules
    }
    store.close()
    paths = {
        re.sub(r"\{(?!server\})\w+\}", "([^/]+)", path).replace("{server}", "([^/]*)")
        for path in described["paths"]
    }
    # the rest is HTML: the hub's sign-in callback and the members' page
    assert served - {"/oauth_callback", "/quota-request"} == paths


def run_service(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTERHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub_ext.service"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


HUB_ENV = {
    "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:1",
    "JUPYTERHUB_API_URL": "http://127.0.0.1:2/hub/api",
    "JUPYTERHUB_API_TOKEN": "secret-token-value",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "not started by the hub: missing JUPYTERHUB_SERVICE_URL"),
        (HUB_ENV, f"{CONFIG_ENV} is not set"),
        ({**HUB_ENV, CONFIG_ENV: "{"}, f"{CONFIG_ENV} is not JSON"),
        (
            {**HUB_ENV, CONFIG_ENV: json.dumps({**SAMPLE, "sharing": {"outside_team": "yes"}})},
            'MLTeams.sharing.outside_team: must be true or false, got "yes"',
        ),
        (
            {**HUB_ENV, CONFIG_ENV: json.dumps({**SAMPLE, "sharing": {"outside": True}})},
            "MLTeams.sharing.outside",
        ),
    ],
)
def test_the_service_refuses_to_start_without_what_it_needs(
    env: dict[str, str], message: str
) -> None:
    result = run_service(env)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret-token-value" not in result.stderr + result.stdout


def test_the_admin_guide_shows_the_shipped_values() -> None:
    guide = (REPO / "docs/admin/sharing.md").read_text()
    sharing, chart = (yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", guide, re.S))
    config = load_config({**SAMPLE, **sharing["hub"]["config"]["MLTeams"]})
    assert config.sharing.outside_team is False
    shipped = yaml.safe_load((REPO / "helm-values/mlteams.yaml").read_text())
    for section in ("services", "service", "extraConfig"):
        for key, value in chart["hub"][section].items():
            assert shipped["hub"][section][key] == value, (section, key)
    assert chart["hub"]["networkPolicy"]["ingress"] == shipped["hub"]["networkPolicy"]["ingress"]
    assert chart["proxy"] == shipped["proxy"]


@pytest.mark.parametrize(
    ("configured", "roles", "expected"),
    [
        (["users:activity!user"], [], ["users:activity!user", ACCESS_SCOPE]),
        ([ACCESS_SCOPE, "inherit"], [], [ACCESS_SCOPE, "inherit"]),
        (None, [{"name": "server", "scopes": ["inherit"]}], ["inherit", ACCESS_SCOPE]),
    ],
)
def test_server_token_scopes_keep_what_was_configured(
    configured: list[str] | None, roles: list[dict[str, Any]], expected: list[str]
) -> None:
    c = hub_config(load_roles=roles)
    if configured is not None:
        c.Spawner.server_token_scopes = configured
    configure_service(c)
    assert c.Spawner.server_token_scopes == expected


async def test_a_callable_server_token_scopes_gets_the_access_too() -> None:
    c = hub_config()

    async def scopes(spawner: Any) -> list[str]:
        return ["users:activity!user", f"read:users!user={spawner}"]

    c.Spawner.server_token_scopes = scopes
    configure_service(c)
    assert await c.Spawner.server_token_scopes("x") == [
        "users:activity!user",
        "read:users!user=x",
        ACCESS_SCOPE,
    ]


def test_leads_may_open_the_admin_pages_but_no_other_service() -> None:
    from hub_ext.policy.lead_roles import LeadScopeError

    assert check_lead_scopes([PAGES_ACCESS_SCOPE]) == [PAGES_ACCESS_SCOPE]
    with pytest.raises(LeadScopeError, match="filtered to the lead's team"):
        check_lead_scopes(["access:services!service=jupyterhub-idle-culler"])
    with pytest.raises(LeadScopeError, match="filtered to the lead's team"):
        check_lead_scopes(["access:services"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"gc_threshold": -1}, "MLTeamsService.gc_threshold must be 0"),
        ({"lead_grant_limit": 65}, "MLTeamsService.lead_grant_limit must be from 0 to 64"),
        ({"poll_seconds": 0.5}, "MLTeamsService.poll_seconds must be from 1 to 3600"),
    ],
)
def test_bad_admin_settings_are_refused_naming_the_key(
    settings: dict[str, Any], message: str
) -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError, match=message):
        MLTeamsService(**settings)
