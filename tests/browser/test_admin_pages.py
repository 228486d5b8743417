"""The admin pages in Chromium on the rig: who sees which team, a lead stopping a server, an
admin's quota override that lets a fifth GPU server in, survives a restart of the hub and the
service and is ended by hand, a short one that reverts at its expiry, a member's quota request
approved by the lead, and the audit trail of it all. Screenshots of each state in test-results/
(admin-*.png)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from devenv.hub import LocalHub
from tests.browser.hub_pages import sign_in
from tests.integration.sharing_helpers import SERVICE_API, as_user, user_token
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import poll

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

PAGES = "/services/mlteams-admin/"
# four members who fill team vision's 4 GPUs (1 each), and the ones who want a fifth
FILLERS = ("v-00", "v-01", "v-02", "v-03")
FIFTH = "v-04"
ASKER = "v-05"
GPU1 = {"team": "vision", "profile": "gpu1"}
GRANT_SECONDS = 120
"""How long the member's approved request lasts: long enough for their spawn to get in."""


def spawn(hub: LocalHub, user: str) -> tuple[int, Any]:
    return hub.call("POST", f"/users/{user}/server", GPU1)


def stop_all(hub: LocalHub, users: tuple[str, ...]) -> None:
    for user in users:
        hub.call("DELETE", f"/users/{user}/server")
    for user in users:
        wait_server_sync(hub, user, ready=False)


def shot(page: Page, results_dir: Path, name: str) -> None:
    page.screenshot(path=str(results_dir / f"admin-{name}.png"), full_page=True)


def form_figure(hub: LocalHub, page: Page) -> str:
    """The vision section of the spawn form, as the member sees it now."""
    page.goto(f"{hub.url}/hub/spawn")
    return page.locator('fieldset[data-team="vision"]').inner_text()


def form_shows(hub: LocalHub, page: Page, words: str) -> str:
    """The vision section of the spawn form once it shows ``words`` (the hub reads the overrides
    again at most every 2 seconds); the last one seen otherwise."""
    return poll(lambda: form_figure(hub, page), lambda text: words in text, timeout=60)


def audit_shows(hub: LocalHub, page: Page, words: tuple[str, ...]) -> None:
    """The audit page lists each of ``words`` (an action, a reason); an expiry is written by the
    service's periodic check (every 15 s here), so the page is read again until it is there."""

    def audit_text() -> str:
        page.goto(f"{hub.url}{PAGES}audit")
        return page.get_by_test_id("audit").inner_text()

    text = poll(audit_text, lambda seen: all(word in seen for word in words), timeout=90)
    assert [word for word in words if word not in text] == [], text[:3000]


def vision_quota(hub: LocalHub, token: str) -> int:
    status, body = as_user(hub, token, "GET", f"{SERVICE_API}/admin/teams")
    assert status == 200, body
    team = next(team for team in body["teams"] if team["team"] == "vision")
    return int(team["quota"]["gpus"])


@pytest.fixture(scope="module")
def admin_token(team_hub: LocalHub) -> str:
    return user_token(team_hub, "admin", "admin pages browser test")


@pytest.fixture(scope="module")
def vision_full(team_hub: LocalHub) -> Iterator[None]:
    """Team vision's four GPUs held by four members, one each; stopped afterwards."""
    for user in FILLERS:
        status, body = spawn(team_hub, user)
        assert status in (201, 202), body
    try:
        for user in FILLERS:
            wait_server_sync(team_hub, user, ready=True)
        yield
    finally:
        stop_all(team_hub, (*FILLERS, FIFTH, ASKER))


def test_who_sees_what_and_a_lead_stops_a_server(
    team_hub: LocalHub, browser: Browser, results_dir: Path
) -> None:
    status, body = team_hub.call("POST", "/users/v-alice/server", GPU1)
    assert status in (201, 202), body
    wait_server_sync(team_hub, "v-alice", ready=True)
    admin = sign_in(browser, team_hub, "admin")
    lead = sign_in(browser, team_hub, "v-lead")
    member = sign_in(browser, team_hub, "v-dora")
    try:
        # a platform admin: every team
        admin.goto(team_hub.url + PAGES)
        expect(admin.get_by_test_id("team-vision")).to_be_visible()
        expect(admin.get_by_test_id("team-nlp")).to_be_visible()
        expect(admin.get_by_test_id("viewer-role")).to_contain_text("platform admin")
        shot(admin, results_dir, "1-admin-teams")

        # a lead: the menu link, then only their team
        lead.goto(f"{team_hub.url}/hub/home")
        lead.get_by_role("button", name="Services").or_(
            lead.get_by_role("link", name="Services")
        ).first.click()
        link = lead.locator(f'a.dropdown-item[href*="{PAGES}"]')
        expect(link).to_be_visible()
        shot(lead, results_dir, "2-lead-menu")
        link.click()
        expect(lead.get_by_test_id("team-vision")).to_be_visible()
        expect(lead.get_by_test_id("team-nlp")).to_have_count(0)
        expect(lead.get_by_test_id("in-use-vision")).to_contain_text("1")
        shot(lead, results_dir, "3-lead-teams")

        # the lead stops a vision server, with a reason; its pod goes
        lead.get_by_test_id("open-team-vision").click()
        lead.get_by_test_id("stop-reason-v-alice-").fill("idle over the weekend")
        lead.get_by_test_id("stop-v-alice-").click()
        expect(lead.get_by_test_id("flash")).to_contain_text("stopped")
        shot(lead, results_dir, "4-lead-stopped")
        audit_shows(team_hub, lead, ("server-stopped", "v-alice/", "idle over the weekend"))
        wait_server_sync(team_hub, "v-alice", ready=False)
        status, model = team_hub.call("GET", "/users/v-alice")
        assert not model["servers"], model

        # another team's page: 403 with the reason
        response = lead.goto(f"{team_hub.url}{PAGES}teams/nlp")
        assert response is not None and response.status == 403
        expect(lead.get_by_test_id("admin-error-message")).to_contain_text("not team nlp")
        shot(lead, results_dir, "5-lead-other-team-403")

        # a member: no menu link, and the hub refuses the pages
        member.goto(f"{team_hub.url}/hub/home")
        expect(member.locator(f'a[href*="{PAGES}"]')).to_have_count(0)
        response = member.goto(team_hub.url + PAGES)
        assert response is not None and response.status == 403
        expect(member.locator("body")).to_contain_text("permission")
        shot(member, results_dir, "6-member-403")
    finally:
        for page in (admin, lead, member):
            page.context.close()
        team_hub.call("DELETE", "/users/v-alice/server")


def test_an_override_lets_a_fifth_gpu_server_in_survives_restarts_ends_and_expires(
    team_hub: LocalHub,
    browser: Browser,
    results_dir: Path,
    vision_full: None,
    admin_token: str,
) -> None:
    status, body = spawn(team_hub, FIFTH)
    assert status == 429, body
    assert "0 of 4 GPUs free" in body["message"]

    admin = sign_in(browser, team_hub, "admin")
    fifth = sign_in(browser, team_hub, FIFTH)
    try:
        # an override until ended by hand
        admin.goto(f"{team_hub.url}{PAGES}teams/vision")
        admin.get_by_test_id("override-gpus").fill("6")
        admin.get_by_test_id("override-reason").fill("conference deadline, one week")
        admin.get_by_test_id("override-submit").click()
        expect(admin.get_by_test_id("flash")).to_contain_text("Quota changed")
        expect(admin.get_by_test_id("quota-vision")).to_contain_text("6 GPUs")
        shot(admin, results_dir, "7-override-set")

        assert "team vision: 2 of 6 GPUs free" in form_shows(team_hub, fifth, "of 6 GPUs")
        shot(fifth, results_dir, "8-spawn-form-six")

        # the hub and its managed service restart; the override is still in force
        team_hub.stop()
        team_hub.start()
        assert "of 6 GPUs free" in form_shows(team_hub, fifth, "of 6 GPUs")
        status, body = spawn(team_hub, FIFTH)
        assert status in (201, 202), body
        wait_server_sync(team_hub, FIFTH, ready=True)
        assert vision_quota(team_hub, admin_token) == 6

        # the admin ends it: the configured 4 GPUs again (the fifth server keeps running)
        admin.goto(f"{team_hub.url}{PAGES}teams/vision")
        overrides = admin.get_by_test_id("overrides")
        overrides.locator('[data-testid^="revoke-reason-"]').fill("deadline moved")
        overrides.locator('button[data-testid^="revoke-"]').click()
        expect(admin.get_by_test_id("quota-vision")).to_contain_text("4 GPUs")
        assert vision_quota(team_hub, admin_token) == 4

        # an override for one minute (0.02 hours) reverts by itself at its expiry, for the next
        # spawn and in the ResourceQuota
        admin.get_by_test_id("override-gpus").fill("6")
        admin.get_by_test_id("override-hours").fill("0.02")
        admin.get_by_test_id("override-reason").fill("one more evaluation run")
        set_at = time.time()
        admin.get_by_test_id("override-submit").click()
        expect(admin.get_by_test_id("quota-vision")).to_contain_text("6 GPUs")
        reverted = poll(
            lambda: vision_quota(team_hub, admin_token), lambda gpus: gpus == 4, timeout=60 + 90
        )
        assert reverted == 4 and time.time() >= set_at + 60 - 2
        # the fifth now runs, so another member looks at the form
        other = sign_in(browser, team_hub, "v-06")
        try:
            assert "of 4 GPUs free" in form_shows(team_hub, other, "of 4 GPUs")
        finally:
            other.context.close()
        admin.goto(f"{team_hub.url}{PAGES}teams/vision")
        expect(admin.get_by_test_id("quota-vision")).to_contain_text("4 GPUs")
        shot(admin, results_dir, "9-override-expired")
        audit_shows(
            team_hub,
            admin,
            (
                "quota-override",
                "conference deadline, one week",
                "override-revoked",
                "deadline moved",
                "one more evaluation run",
                "override-expired",
            ),
        )
    finally:
        admin.context.close()
        fifth.context.close()
        stop_all(team_hub, (FIFTH,))


def test_a_members_request_approved_by_the_lead_lets_them_in_and_expires(
    team_hub: LocalHub,
    browser: Browser,
    results_dir: Path,
    vision_full: None,
    admin_token: str,
) -> None:
    status, body = spawn(team_hub, ASKER)
    assert status == 429, body
    asker_token = user_token(team_hub, ASKER, "quota request")

    # refused, the member follows the spawn form's link and asks for two GPUs for 2 minutes
    # (0.033 hours)
    asker = sign_in(browser, team_hub, ASKER)
    try:
        asker.goto(f"{team_hub.url}/hub/spawn")
        with asker.context.expect_page() as opened:
            asker.get_by_test_id("mlteams-ask-gpus-vision").click()
        ask = opened.value
        ask.wait_for_load_state()
        expect(ask.get_by_test_id("ask-team")).to_have_value("vision")
        ask.get_by_test_id("ask-gpus").fill("2")
        ask.get_by_test_id("ask-hours").fill("0.033")
        ask.get_by_test_id("ask-reason").fill("ablation runs before Friday")
        ask.get_by_test_id("ask-submit").click()
        expect(ask.get_by_test_id("flash")).to_contain_text("Asked")
        expect(ask.get_by_test_id("my-requests")).to_contain_text("pending")
        shot(ask, results_dir, "10-member-asks")
    finally:
        asker.context.close()

    lead = sign_in(browser, team_hub, "v-lead")
    try:
        lead.goto(f"{team_hub.url}{PAGES}requests")
        expect(lead.get_by_test_id(f"request-{ASKER}")).to_contain_text("2")
        shot(lead, results_dir, "11-request-waiting")
        lead.get_by_test_id(f"comment-{ASKER}").fill("fine for the ablations")
        approved_at = time.time()
        lead.get_by_test_id(f"approve-{ASKER}").click()
        expect(lead.get_by_test_id("flash")).to_contain_text("Approved")
        shot(lead, results_dir, "12-request-approved")

        # the asker's form shows the raised cap (the hub reads overrides at most every 2 s),
        # and their next spawn gets in on the grant; the outcome is in their own list
        asker = sign_in(browser, team_hub, ASKER)
        try:
            assert "you hold 0 of your 4" in form_shows(team_hub, asker, "of your 4")
            shot(asker, results_dir, "13-spawn-form-granted")
        finally:
            asker.context.close()
        status, body = spawn(team_hub, ASKER)
        assert status in (201, 202), body
        wait_server_sync(team_hub, ASKER, ready=True)
        status, mine = as_user(team_hub, asker_token, "GET", f"{SERVICE_API}/quota-requests")
        assert [r["state"] for r in mine["requests"]] == ["approved"]

        # the grant ends on time: the team's figure is 4 again
        left = approved_at + GRANT_SECONDS - time.time()
        assert vision_quota(team_hub, admin_token) == 6
        reverted = poll(
            lambda: vision_quota(team_hub, admin_token), lambda gpus: gpus == 4, timeout=left + 90
        )
        assert reverted == 4 and time.time() >= approved_at + GRANT_SECONDS - 2

        # every step is in the audit trail with its reason: asked, approved, expired
        audit_shows(
            team_hub,
            lead,
            (
                "quota-requested",
                "ablation runs before Friday",
                "quota-request-approved",
                "fine for the ablations",
                "override-expired",
            ),
        )
        shot(lead, results_dir, "14-audit")
    finally:
        lead.context.close()
