"""Chromium signs in through the local OIDC provider's own form and lands in the hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devenv.oidc import DEMO_PASSWORD
from devenv.oidc.login import sign_in
from tests.conftest import OIDCHub

pytestmark = pytest.mark.browser


def sso_login(page: Page, rig: OIDCHub, user: str) -> None:
    page.goto(f"{rig.url}/hub/login")
    page.get_by_role("button", name="Sign in with mlteams SSO").click()
    page.wait_for_url(f"{rig.oidc.issuer}/interaction/**", timeout=60_000)
    page.fill("#username", user)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in")
    allow = page.locator("#allow")
    page.wait_for_load_state()
    if "/interaction/" in page.url and allow.count():
        allow.click()


def test_sso_login_lands_in_hub_with_team_groups(
    oidc_hub: OIDCHub, browser: Browser, results_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        sso_login(page, oidc_hub, "carol")
        page.wait_for_url(f"{oidc_hub.url}/hub/**", timeout=60_000)
        expect(page.get_by_text("carol").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(results_dir / "sso-login-carol.png"))
        groups = oidc_hub.hub.api("GET", "/users/carol")["groups"]
        assert sorted(groups) == ["nlp", "vision"]
    finally:
        page.close()


def test_lead_sees_only_their_team_in_admin_page(
    oidc_hub: OIDCHub, browser: Browser, results_dir: Path
) -> None:
    for user in ("alice", "bob"):
        assert sign_in(oidc_hub.url, user, DEMO_PASSWORD).has_hub_session(oidc_hub.url)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        sso_login(page, oidc_hub, "lena")
        page.wait_for_url(f"{oidc_hub.url}/hub/**", timeout=60_000)
        page.goto(f"{oidc_hub.url}/hub/admin")
        rows = page.locator("tbody tr")
        expect(rows.filter(has_text="alice").first).to_be_visible(timeout=60_000)
        expect(rows.filter(has_text="lena").first).to_be_visible()
        page.screenshot(path=str(results_dir / "sso-lead-admin-page.png"), full_page=True)
        names = " ".join(rows.all_inner_texts())
        assert "bob" not in names
    finally:
        page.close()


def test_user_in_no_team_sees_refusal_page(
    oidc_hub: OIDCHub, browser: Browser, results_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        sso_login(page, oidc_hub, "dave")
        message = page.get_by_text("not a member of any ML team")
        expect(message).to_be_visible(timeout=60_000)
        expect(page.get_by_text("staff", exact=False).first).to_be_visible()
        page.screenshot(path=str(results_dir / "sso-no-team-refused.png"), full_page=True)
        assert "nlp" not in page.inner_text("body")
        status = page.request.get(f"{oidc_hub.url}/hub/home", max_redirects=0).status
        assert status == 302
    finally:
        page.close()
