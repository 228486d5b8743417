"""Sharing a running server with the team, in Chromium on the rig: the owner shares through the
mlteams service, a teammate opens the owner's JupyterLab, another team's user is refused, a share
outside the team is refused with the reason, and revoking takes the access back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devenv.hub import LocalHub
from tests.browser.hub_pages import sign_in
from tests.integration.sharing_helpers import SERVICE_API, share, unshare, user_token
from tests.integration.team_hub_helpers import wait_server_sync

pytestmark = pytest.mark.browser

OWNER = "v-alice"
TEAMMATE = "v-dora"
OTHER_TEAM = "n-bob"


def open_shared_server(page: Page, hub: LocalHub) -> None:
    """Open the owner's JupyterLab, confirming access to it when the hub asks (the first time)."""
    page.goto(f"{hub.url}/user/{OWNER}/lab")
    authorize = page.get_by_role("button", name="Authorize")
    expect(authorize.or_(page.locator(".jp-LabShell")).first).to_be_visible(timeout=120_000)
    if authorize.is_visible():
        authorize.click()


@pytest.fixture
def shared_server(team_hub: LocalHub) -> Iterator[str]:
    """The owner's running server and the owner's token; shares and server are gone after."""
    status, body = team_hub.call(
        "POST", f"/users/{OWNER}/server", {"team": "vision", "profile": "cpu"}
    )
    assert status in (201, 202), body
    token = user_token(team_hub, OWNER, note="browser sharing test")
    try:
        wait_server_sync(team_hub, OWNER, ready=True)
        yield token
    finally:
        unshare(team_hub, token, {"team": "vision"})
        team_hub.call("DELETE", f"/users/{OWNER}/server")
        wait_server_sync(team_hub, OWNER, ready=False)


def test_teammate_opens_a_server_shared_with_the_team_and_loses_it_on_revoke(
    team_hub: LocalHub, browser: Browser, results_dir: Path, shared_server: str
) -> None:
    owner_token = shared_server
    status, body = share(team_hub, owner_token, {"team": "vision"})
    assert status == 201, body

    pages: list[Page] = []
    try:
        # the owner sees the shares, signed in to the service through the hub
        owner = sign_in(browser, team_hub, OWNER)
        pages.append(owner)
        owner.goto(f"{team_hub.url}{SERVICE_API}/shares")
        expect(owner.locator("body")).to_contain_text('"vision-engineers"')
        owner.screenshot(path=str(results_dir / "browser-sharing-1-owner-shares.png"))

        # a teammate opens the owner's JupyterLab
        teammate = sign_in(browser, team_hub, TEAMMATE)
        pages.append(teammate)
        open_shared_server(teammate, team_hub)
        expect(teammate.locator(".jp-Launcher, .jp-LauncherBody").first).to_be_visible(
            timeout=120_000
        )
        assert f"/user/{OWNER}/lab" in teammate.url
        teammate.screenshot(path=str(results_dir / "browser-sharing-2-teammate-in-lab.png"))

        # a user of another team opening the same address is refused by the hub
        other = sign_in(browser, team_hub, OTHER_TEAM)
        pages.append(other)
        response = other.goto(f"{team_hub.url}/user/{OWNER}/lab")
        assert response is not None
        expect(other.locator("body")).to_contain_text("403", timeout=60_000)
        expect(other.locator(".jp-LabShell")).to_have_count(0)
        other.screenshot(path=str(results_dir / "browser-sharing-3-other-team-refused.png"))

        # sharing with the other team's user is refused by the service, with the reason
        status, refusal = share(team_hub, owner_token, {"user": OTHER_TEAM})
        assert status == 403
        assert refusal["message"] == (
            f"{OTHER_TEAM} is not in your team Vision; sharing outside your teams is turned "
            "off by your platform admins."
        )
        owner.reload()
        expect(owner.locator("body")).not_to_contain_text(f'"{OTHER_TEAM}"')

        # revoked: the teammate's next session is refused
        assert unshare(team_hub, owner_token, {"team": "vision"})[0] == 204
        owner.reload()
        expect(owner.locator("body")).to_contain_text('{"shares": []}')
        owner.screenshot(path=str(results_dir / "browser-sharing-4-owner-revoked.png"))
        again = sign_in(browser, team_hub, TEAMMATE)
        pages.append(again)
        again.goto(f"{team_hub.url}/user/{OWNER}/lab")
        expect(again.locator("body")).to_contain_text("403", timeout=60_000)
        expect(again.locator(".jp-LabShell")).to_have_count(0)
        again.screenshot(path=str(results_dir / "browser-sharing-5-teammate-after-revoke.png"))
    finally:
        for page in pages:
            page.context.close()
