"""The identity provider stopped while people sign in and work, on the rig's OIDC hub (which
refreshes each user's sign-in every 2 seconds, so every request of a signed-in user asks the
provider again).

While it is down: a sign-in reaching the hub's callback fails with the hub's 503 page naming the
provider (no session, no traceback); at a signed-in member's next refresh the hub cannot check
their groups, so it ends their hub session (its pages send them to sign in) instead of running on
unchecked groups, and their hub groups (teams) stay what the provider last said; their running
server keeps answering them. Once the provider is back on the same port, sign-in works again and
the member's teams are the provider's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from devenv.oidc import DEMO_PASSWORD
from devenv.oidc.login import SignIn, sign_in
from tests.conftest import OIDCHub
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

MEMBER = "gina"
NEWCOMER = "hugo"
UNREACHABLE = "cannot be reached"


def hub_groups(rig: OIDCHub, user: str) -> list[str]:
    return sorted(rig.hub.api("GET", f"/users/{user}")["groups"])


@pytest.fixture
def member_server(oidc_hub: OIDCHub) -> Iterator[SignIn]:
    """``MEMBER`` signed in, with a running server opened in their browser session."""
    signed = sign_in(oidc_hub.url, MEMBER, DEMO_PASSWORD)
    assert signed.has_hub_session(oidc_hub.url)
    hub = oidc_hub.hub
    status, body = hub.call("POST", f"/users/{MEMBER}/server", {"profile": "cpu"})
    assert status in (201, 202), body
    try:
        wait_server_sync(hub, MEMBER, ready=True)
        # a page first: the server signs the browser in through the hub (OAuth)
        page = signed.session.get(f"{oidc_hub.url}/user/{MEMBER}/", timeout=120)
        assert page.url.startswith(f"{oidc_hub.url}/user/{MEMBER}/"), page.url
        opened = signed.session.get(f"{oidc_hub.url}/user/{MEMBER}/api/status", timeout=60)
        assert opened.status_code == 200, opened.text[:500]
        yield signed
    finally:
        hub.call("DELETE", f"/users/{MEMBER}/server")
        wait_server_sync(hub, MEMBER, ready=False)
        signed.session.close()


def test_the_provider_down_refuses_sign_in_clearly_and_running_servers_keep_answering(
    oidc_hub: OIDCHub, member_server: SignIn
) -> None:
    url = oidc_hub.url
    teams = hub_groups(oidc_hub, MEMBER)
    assert teams == ["nlp"]
    halted = sign_in(url, NEWCOMER, DEMO_PASSWORD, stop_before_callback=True)
    callback = halted.response.headers["X-Stopped-At"]

    oidc_hub.oidc.stop()
    try:
        # a sign-in that reaches the hub now: the hub's page says the provider is unreachable
        answer = halted.session.get(callback, allow_redirects=False, timeout=60)
        assert answer.status_code == 503, answer.text[:500]
        assert UNREACHABLE in answer.text and "Traceback" not in answer.text
        assert not halted.has_hub_session(url)

        # once the member's sign-in is due for a refresh (every 2 s here), the hub cannot
        # check their groups with the provider: it ends their hub session (its pages send them
        # to sign in again) rather than go on with unchecked groups; their teams stay as they were
        def refreshed_home() -> requests.Response | None:
            home = member_server.session.get(f"{url}/hub/home", allow_redirects=False, timeout=60)
            return home if home.status_code != 200 else None

        home = wait_for(refreshed_home, timeout=30, interval=1, what="a refresh of the sign-in")
        assert home.status_code == 302, home.text[:500]
        assert "/hub/login" in home.headers["Location"], home.headers
        assert hub_groups(oidc_hub, MEMBER) == teams

        # their running server keeps answering them
        for path in ("api/status", "api/contents"):
            served = member_server.session.get(f"{url}/user/{MEMBER}/{path}", timeout=60)
            assert served.status_code == 200, (path, served.text[:500])
    finally:
        oidc_hub.oidc.start()

    # back: sign-in works, and the member's teams are the provider's
    assert sign_in(url, NEWCOMER, DEMO_PASSWORD).has_hub_session(url)
    again = sign_in(url, MEMBER, DEMO_PASSWORD, session=member_server.session)
    assert again.has_hub_session(url)
    assert hub_groups(oidc_hub, MEMBER) == teams
    served = member_server.session.get(f"{url}/user/{MEMBER}/api/status", timeout=60)
    assert served.status_code == 200, served.text[:500]
