"""What a data scientist sees about their files in Chromium: where each team's home lives, the
team folder, and a spawn refused by the team's storage quota in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devenv.cluster import LocalCluster
from devenv.hub import LocalHub
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import wait_for

pytestmark = pytest.mark.browser


def _log_in(page: Page, hub: LocalHub, user: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input#username_input", user)
    page.fill("input#password_input", hub.password)
    page.click("#login_submit")
    page.goto(f"{hub.url}/hub/spawn")


def test_the_spawn_form_says_where_each_teams_home_lives(
    team_hub: LocalHub, browser: Browser, results_dir: Path
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        _log_in(page, team_hub, "both-carol")
        vision = page.get_by_test_id("mlteams-storage-vision")
        expect(vision).to_contain_text(
            "Your home: a volume of 10 GiB in namespace it-vision, kept when the server stops."
        )
        expect(vision).to_contain_text("Your home in team NLP is separate.")
        expect(vision).to_contain_text("Team folder: /home/jovyan/team")
        nlp = page.get_by_test_id("mlteams-storage-nlp")
        expect(nlp).to_contain_text("Your home in team Vision is separate.")
        expect(nlp).not_to_contain_text("Team folder")
        page.screenshot(path=str(results_dir / "browser-storage-form.png"), full_page=True)
    finally:
        page.close()


def _audio_member(hub: LocalHub, *users: str) -> None:
    hub.call("POST", "/users", {"usernames": list(users)})
    hub.call("POST", "/groups/audio-engineers")
    status, body = hub.call("POST", "/groups/audio-engineers/users", {"users": list(users)})
    assert status == 200, body


def test_a_home_over_the_storage_quota_is_refused_on_the_spawn_page(
    team_hub: LocalHub, cluster: LocalCluster, browser: Browser, results_dir: Path
) -> None:
    # team audio's quota holds one 8Gi home: a-dan's takes it
    _audio_member(team_hub, "a-dan", "a-eve")
    status, body = team_hub.call("POST", "/users/a-dan/server", {"team": "audio", "profile": "cpu"})
    assert status in (201, 202), body
    wait_server_sync(team_hub, "a-dan", ready=True)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        _log_in(page, team_hub, "a-eve")
        expect(page.locator("#mlteams-audio-cpu")).to_be_checked()
        page.locator(
            "#spawn_form input[type=submit], #spawn_form button[type=submit]"
        ).first.click()
        # the form again with the error, or the pending page's failure: the same words
        body = page.locator("body")
        expect(body).to_contain_text("Team Audio has no storage left for your home", timeout=30_000)
        expect(body).to_contain_text("#ml-audio")
        expect(body).not_to_contain_text("exceeded quota")
        page.screenshot(path=str(results_dir / "browser-storage-quota.png"), full_page=True)
    finally:
        page.close()
        team_hub.call("DELETE", "/users/a-dan/server")
        wait_server_sync(team_hub, "a-dan", ready=False)
        # deleting the user deletes their home, which gives the quota back to team audio
        status, body = team_hub.call("DELETE", "/users/a-dan")
        assert status == 204, body

        def home_gone() -> bool:
            quota = cluster.api.get("/api/v1/namespaces/it-audio/resourcequotas/mlteams-quota")
            return quota.get("status", {}).get("used", {}).get("requests.storage") == "0"

        wait_for(home_gone, timeout=60, interval=0.5, what="a-dan's home deleted")
