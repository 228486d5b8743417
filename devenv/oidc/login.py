"""Sign in to the hub through the local provider's own pages, as a browser would (no JavaScript).

Used by the tests (and handy to check a running demo): follows the redirects from the hub to the
provider's sign-in and consent forms, submits them, and returns to the hub's callback.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"', re.IGNORECASE)
MAX_STEPS = 20


@dataclass
class SignIn:
    """Where a scripted sign-in ended: the last response and the session holding the cookies."""

    session: requests.Session
    response: requests.Response

    def has_hub_session(self, hub_url: str) -> bool:
        """Whether the hub accepts the session's cookie (its home page does not ask to log in)."""
        home = self.session.get(f"{hub_url}/hub/home", allow_redirects=False, timeout=30)
        return home.status_code == 200


def _follow(
    session: requests.Session, response: requests.Response, stop: Callable[[str], bool]
) -> requests.Response:
    for _ in range(MAX_STEPS):
        if not response.is_redirect:
            return response
        target = urljoin(response.url, response.headers["Location"])
        if stop(target):
            response.headers["X-Stopped-At"] = target
            return response
        response = session.get(target, allow_redirects=False, timeout=60)
    raise RuntimeError(f"more than {MAX_STEPS} redirects, last {response.url}")


def _submit(session: requests.Session, page: requests.Response, data: dict[str, str]):
    found = FORM_ACTION.search(page.text)
    if not found:
        raise RuntimeError(f"no form at {page.url} (HTTP {page.status_code}): {page.text[:300]}")
    action = urljoin(page.url, html.unescape(found.group(1)))
    return session.post(action, data=data, allow_redirects=False, timeout=60)


def sign_in(
    hub_url: str,
    username: str,
    password: str,
    session: requests.Session | None = None,
    stop_before_callback: bool = False,
) -> SignIn:
    """Log in to the hub at ``hub_url`` through the provider's forms.

    With ``stop_before_callback``, the redirect back to the hub's ``oauth_callback`` is not
    followed: its URL is in the response header ``X-Stopped-At``.
    """
    session = session or requests.Session()
    callback = f"{hub_url}/hub/oauth_callback"

    def stop(url: str) -> bool:
        return stop_before_callback and url.startswith(callback)

    start = session.get(f"{hub_url}/hub/oauth_login", allow_redirects=False, timeout=60)
    page = _follow(session, start, stop)
    page = _follow(
        session, _submit(session, page, {"username": username, "password": password}), stop
    )
    if "X-Stopped-At" not in page.headers and 'id="allow"' in page.text:
        page = _follow(session, _submit(session, page, {}), stop)
    return SignIn(session, page)
