"""A person logs in through the hub's page in Chromium and lands in JupyterLab on the rig."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from devenv.hub import LocalHub

pytestmark = pytest.mark.browser


def test_login_spawns_and_reaches_jupyterlab(
    hub: LocalHub, browser: Browser, results_dir: Path
) -> None:
    user = "browser-bob"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("input#username_input", user)
        page.fill("input#password_input", hub.password)
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{user}/lab**", timeout=240_000)
        expect(page.locator(".jp-Launcher, .jp-LauncherBody").first).to_be_visible(timeout=120_000)
        shot = results_dir / "browser-jupyterlab.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        page.close()
        hub.api("DELETE", f"/users/{user}/server")
