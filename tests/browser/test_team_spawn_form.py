"""A data scientist in two teams sees each team's profiles with live availability in Chromium;
a profile the team cannot fit right now is shown disabled with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from devenv.hub import LocalHub
from tests.integration.team_hub_helpers import wait_server_sync

pytestmark = pytest.mark.browser

NLP_USERS = ("n-bob", "n-erin")


def test_spawn_form_shows_availability_and_disables_over_quota_profile(
    team_hub: LocalHub, browser: Browser, results_dir: Path
) -> None:
    for user in NLP_USERS:
        status, body = team_hub.call(
            "POST", f"/users/{user}/server", {"team": "nlp", "profile": "gpu2"}
        )
        assert status in (201, 202), body
    for user in NLP_USERS:
        wait_server_sync(team_hub, user, ready=True)

    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        page.goto(f"{team_hub.url}/hub/login")
        page.fill("input#username_input", "both-carol")
        page.fill("input#password_input", team_hub.password)
        page.click("#login_submit")
        page.goto(f"{team_hub.url}/hub/spawn")

        vision = page.locator('fieldset[data-team="vision"]')
        nlp = page.locator('fieldset[data-team="nlp"]')
        expect(vision).to_contain_text("team vision: 4 of 4 GPUs free")
        expect(nlp).to_contain_text("team nlp: 0 of 4 GPUs free")
        expect(page.locator("#mlteams-nlp-gpu2")).to_be_disabled()
        expect(nlp.locator('[data-profile="gpu2"] .mlteams-reason')).to_contain_text("GPUs")
        expect(page.locator("#mlteams-vision-gpu1")).to_be_enabled()
        expect(page.locator("#mlteams-vision-cpu")).to_be_checked()
        page.screenshot(path=str(results_dir / "browser-team-spawn-form.png"), full_page=True)
    finally:
        page.close()
        for user in NLP_USERS:
            team_hub.call("DELETE", f"/users/{user}/server")
        for user in NLP_USERS:
            wait_server_sync(team_hub, user, ready=False)


def test_forged_form_choice_of_another_teams_profile_is_refused(
    team_hub: LocalHub, browser: Browser, results_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        page.goto(f"{team_hub.url}/hub/login")
        page.fill("input#username_input", "v-alice")
        page.fill("input#password_input", team_hub.password)
        page.click("#login_submit")
        page.goto(f"{team_hub.url}/hub/spawn")
        expect(page.locator('fieldset[data-team="nlp"]')).to_have_count(0)
        # a hand-edited form: another team's profile, which the page never offered
        page.evaluate(
            """() => {
                const radio = document.querySelector('input[name="choice"]');
                radio.value = 'nlp/gpu2';
                radio.checked = true;
            }"""
        )
        page.locator(
            "#spawn_form input[type=submit], #spawn_form button[type=submit]"
        ).first.click()
        expect(page.locator("body")).to_contain_text("not a member of team", timeout=30_000)
        expect(page.locator("body")).not_to_contain_text("SpawnException")
        page.screenshot(path=str(results_dir / "browser-forged-form-refused.png"), full_page=True)
    finally:
        page.close()
    status, model = team_hub.call("GET", "/users/v-alice")
    assert status == 200
    assert not model.get("servers"), "no server was started for the forged choice"
