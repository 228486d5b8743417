"""Browser steps more than one test takes through the hub's own pages."""

from __future__ import annotations

from playwright.sync_api import Browser, Page

from devenv.hub import LocalHub


def sign_in(
    browser: Browser, hub: LocalHub, user: str, *, width: int = 1300, height: int = 850
) -> Page:
    """A new browser session of ``user``, signed in through the hub's login page."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("input#username_input", user)
    page.fill("input#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return page
