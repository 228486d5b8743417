"""The admin pages and their API on the rig: the real hub's custom scopes decide who sees which
team and who gets the menu link, the pages sign in through the hub, and an admin's quota
override reaches the spawn form, the team's ResourceQuota and the audit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from devenv.hub import LocalHub
from tests.integration.sharing_helpers import SERVICE_API, as_user, signed_in, user_token
from tests.kube_helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ADMIN_API = f"{SERVICE_API}/admin"
PAGES = "/services/mlteams-admin/"


@pytest.fixture(scope="module")
def tokens(team_hub: LocalHub) -> dict[str, str]:
    return {
        user: user_token(team_hub, user, "admin pages test")
        for user in ("v-lead", "n-bob", "admin")
    }


def test_a_lead_sees_only_their_team_and_a_member_is_refused(
    team_hub: LocalHub, tokens: dict[str, str]
) -> None:
    status, body = as_user(team_hub, tokens["admin"], "GET", f"{ADMIN_API}/teams")
    assert status == 200, body
    assert {"vision", "nlp"} <= {team["team"] for team in body["teams"]}

    status, body = as_user(team_hub, tokens["v-lead"], "GET", f"{ADMIN_API}/teams")
    assert status == 200, body
    assert [team["team"] for team in body["teams"]] == ["vision"]
    assert body["teams"][0]["configured"]["gpus"] == 4

    status, body = as_user(team_hub, tokens["v-lead"], "GET", f"{ADMIN_API}/audit?team=nlp")
    assert status == 403, body
    assert "not team nlp" in body["message"]

    status, body = as_user(team_hub, tokens["n-bob"], "GET", f"{ADMIN_API}/teams")
    assert status == 403, body
    assert "team leads and platform admins" in body["message"]


def test_the_menu_link_and_the_pages_are_for_leads_and_admins(team_hub: LocalHub) -> None:
    lead = signed_in(team_hub, "v-lead")
    member = signed_in(team_hub, "v-alice")
    try:
        # the hub lists the pages in its Services menu only for those who may open them
        assert PAGES in lead.get(f"{team_hub.url}/hub/home", timeout=30).text
        assert PAGES not in member.get(f"{team_hub.url}/hub/home", timeout=30).text

        # the pages sign in through the hub (OAuth, no confirmation) and extend its page.html
        page = lead.get(team_hub.url + PAGES, timeout=60)
        assert page.status_code == 200, page.text[:500]
        assert 'id="jupyterhub-logo"' in page.text
        assert 'data-testid="team-vision"' in page.text
        assert 'data-testid="team-nlp"' not in page.text
        other = lead.get(team_hub.url + PAGES + "teams/nlp", timeout=60)
        assert other.status_code == 403
        assert "not team nlp" in other.text

        # a member holds no access to the pages: the hub's own sign-in refuses them
        refused = member.get(team_hub.url + PAGES, timeout=60)
        assert refused.status_code == 403
        assert "do not have permission to access" in refused.text
        assert "mlteams-admin" in refused.text
    finally:
        lead.close()
        member.close()


@pytest.fixture
async def kube_api(team_hub: LocalHub) -> AsyncIterator[client.ApiClient]:
    from tests.kube_helpers import api_client

    api = await api_client(team_hub.kubeconfig)
    async with api:
        yield api


async def quota_gpus(api: client.ApiClient) -> str:
    quota = await client.CoreV1Api(api).read_namespaced_resource_quota("mlteams-quota", "it-vision")
    return str(quota.spec.hard["requests.nvidia.com/gpu"])


@pytest.fixture
def override(team_hub: LocalHub, tokens: dict[str, str]) -> Iterator[dict[str, Any]]:
    status, body = as_user(
        team_hub,
        tokens["admin"],
        "POST",
        f"{ADMIN_API}/teams/vision/override",
        {"gpus": 6, "hours": 1, "reason": "conference deadline"},
    )
    assert status == 201, body
    try:
        yield body
    finally:
        as_user(
            team_hub,
            tokens["admin"],
            "POST",
            f"{ADMIN_API}/overrides/{body['override']['id']}/revoke",
            {"reason": "test over"},
        )


async def test_an_override_reaches_the_spawn_form_the_resource_quota_and_the_audit(
    team_hub: LocalHub,
    tokens: dict[str, str],
    override: dict[str, Any],
    kube_api: client.ApiClient,
) -> None:
    assert override["quota_problems"] == []
    assert await eventually(lambda: _equals(quota_gpus(kube_api), "6"), what="quota of 6 GPUs")

    member = signed_in(team_hub, "v-17")
    try:
        form = member.get(f"{team_hub.url}/hub/spawn", timeout=60).text
    finally:
        member.close()
    assert re.search(r"of 6 GPUs free", form), form[:2000]

    status, body = as_user(
        team_hub, tokens["v-lead"], "GET", f"{ADMIN_API}/audit?action=quota-override"
    )
    assert status == 200, body
    entry = body["audit"][0]
    assert (entry["actor"], entry["team"], entry["reason"]) == (
        "admin",
        "vision",
        "conference deadline",
    )
    assert (entry["before"]["gpus"], entry["after"]["gpus"]) == (4, 6)

    status, body = as_user(
        team_hub,
        tokens["admin"],
        "POST",
        f"{ADMIN_API}/overrides/{override['override']['id']}/revoke",
        {"reason": "back to normal"},
    )
    assert status == 200, body
    assert await eventually(lambda: _equals(quota_gpus(kube_api), "4"), what="quota back to 4")


async def _equals(value: Any, wanted: str) -> bool:
    return (await value) == wanted


def service_environment(hub: LocalHub) -> dict[str, str]:
    """The environment of this hub's mlteams service process, as the hub gave it."""
    wanted = f"127.0.0.1:{hub.hub_port}/hub"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if b"hub_ext.service" not in command:
                continue
            raw = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        environment = dict(
            item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item
        )
        if wanted in environment.get("JUPYTERHUB_API_URL", ""):
            return environment
    raise AssertionError("the hub's mlteams service process was not found")


def test_no_secret_of_the_service_in_its_answers_pages_or_log(
    team_hub: LocalHub, tokens: dict[str, str]
) -> None:
    environment = service_environment(team_hub)
    secret_names = (
        "MLTEAMS_ADMIN_PAGES_TOKEN",
        "JUPYTERHUB_API_TOKEN",
        "MLTEAMS_REGISTRY_PASSWORD",
        "MLTEAMS_OBJECT_STORE_SECRET_KEY",
    )
    secrets = {name: environment[name] for name in secret_names if environment.get(name)}
    assert {"MLTEAMS_ADMIN_PAGES_TOKEN", "JUPYTERHUB_API_TOKEN"} <= set(secrets)
    seen = []
    for path in ("teams", "teams?format=csv", "overrides", "quota-requests?state=all", "audit"):
        status, body = as_user(team_hub, tokens["admin"], "GET", f"{ADMIN_API}/{path}")
        assert status == 200, body
        seen.append(str(body))
    lead = signed_in(team_hub, "v-lead")
    try:
        for page in ("", "requests", "audit", "teams/vision"):
            seen.append(lead.get(f"{team_hub.url}{PAGES}{page}", timeout=60).text)
    finally:
        lead.close()
    assert team_hub.child is not None
    seen.append(team_hub.child.log_path.read_text(errors="replace"))
    for name, value in secrets.items():
        assert not [text for text in seen if value in text], f"{name} was shown or logged"
