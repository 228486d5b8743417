from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Error,
    Page,
    Response,
    sync_playwright,
)

from tests.security import collector

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        raise RuntimeError("Debian's chromium is needed for the browser tests: run `make setup`")
    return path


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no browser download).

    Playwright's synchronous API runs an event loop while it is open, so the browser lives only
    as long as the browser tests, which run last.
    """
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        record_pages(chromium)
        try:
            yield chromium
        finally:
            chromium.close()


RECORDED_TYPES = {"document", "xhr", "fetch", "eventsource"}
"""The pages and the API answers a page received (not its scripts, styles, images or fonts),
kept for the secrets check (tests/security)."""


def record_pages(chromium: Browser) -> None:
    """Every context of ``chromium`` (and so every page) hands its pages' and API answers'
    bodies to the session's response recorder."""
    recorder = collector.current()
    if recorder is None:
        return

    def on_response(response: Response) -> None:
        request = response.request
        if request.resource_type not in RECORDED_TYPES:
            return
        try:
            body = response.body()
        except Error:  # a redirect, or a page closed before its body arrived
            return
        recorder.record("browser", request.method, response.url, response.status, body)

    def listening(context: BrowserContext) -> BrowserContext:
        context.on("response", on_response)
        return context

    new_context, new_page = chromium.new_context, chromium.new_page

    def context_with_recording(**kwargs: Any) -> BrowserContext:
        return listening(new_context(**kwargs))

    def page_with_recording(**kwargs: Any) -> Page:
        page = new_page(**kwargs)
        listening(page.context)
        return page

    chromium.new_context = context_with_recording  # type: ignore[method-assign]
    chromium.new_page = page_with_recording  # type: ignore[method-assign]
