"""TeamOAuthenticator against the local OIDC provider: teams from groups, leads, refusals,
group changes at the provider, and clear errors for bad tokens, wrong state and a provider down.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import requests

from devenv.oidc import DEMO_PASSWORD
from devenv.oidc.login import SignIn, sign_in
from tests.conftest import OIDCHub
from tests.integration.team_hub_helpers import wait_server_sync
from tests.kube_helpers import wait_for

pytestmark = pytest.mark.integration


def login(rig: OIDCHub, user: str, **kwargs) -> SignIn:
    return sign_in(rig.url, user, DEMO_PASSWORD, **kwargs)


def hub_groups(rig: OIDCHub, user: str) -> list[str]:
    return sorted(rig.hub.api("GET", f"/users/{user}")["groups"])


def api_as(signed: SignIn, hub_url: str, path: str, method: str = "GET") -> requests.Response:
    """A hub API call with the browser session's cookie (and its XSRF token)."""
    xsrf = signed.session.cookies.get("_xsrf", path="/hub/") or ""
    return signed.session.request(
        method, f"{hub_url}/hub/api{path}", headers={"X-XSRFToken": xsrf}, timeout=30
    )


@pytest.fixture
def restore_groups(oidc_hub: OIDCHub) -> Iterator[dict[str, list[str]]]:
    changed: dict[str, list[str]] = {}
    yield changed
    for user, groups in changed.items():
        oidc_hub.oidc.set_groups(user, groups)


def test_groups_become_teams_and_leads(oidc_hub: OIDCHub) -> None:
    for user in ("alice", "bob", "carol"):
        assert login(oidc_hub, user).has_hub_session(oidc_hub.url)
    assert hub_groups(oidc_hub, "alice") == ["vision"]
    assert hub_groups(oidc_hub, "bob") == ["nlp"]
    assert hub_groups(oidc_hub, "carol") == ["nlp", "vision"]
    lena = login(oidc_hub, "lena")
    assert lena.has_hub_session(oidc_hub.url)
    assert hub_groups(oidc_hub, "lena") == ["vision", "vision-leads"]
    leads = oidc_hub.hub.api("GET", "/groups/vision-leads")
    assert "mlteams-lead-vision" in leads.get("roles", ["mlteams-lead-vision"])

    listed = api_as(lena, oidc_hub.url, "/users")
    assert listed.status_code == 200, listed.text
    names = {user["name"] for user in listed.json()}
    assert {"alice", "carol", "lena"} <= names
    assert "bob" not in names
    assert api_as(lena, oidc_hub.url, "/users/bob").status_code == 404
    assert api_as(lena, oidc_hub.url, "/users/bob/server", "DELETE").status_code == 404
    stop_alice = api_as(lena, oidc_hub.url, "/users/alice/server", "DELETE")
    assert stop_alice.status_code in (202, 204, 400), stop_alice.text
    assert api_as(lena, oidc_hub.url, "/groups").status_code == 200
    start_alice = api_as(lena, oidc_hub.url, "/users/alice/server", "POST")
    assert start_alice.status_code in (403, 404), start_alice.text


def test_user_in_no_team_is_refused_with_groups_seen(oidc_hub: OIDCHub) -> None:
    refused = login(oidc_hub, "dave")
    assert refused.response.status_code == 403
    page = refused.response.text
    assert "not a member of any ML team" in page
    assert "staff" in page
    assert "#ml-platform" in page
    for other in ("vision", "nlp", "platform-admins"):
        assert other not in page
    assert not refused.has_hub_session(oidc_hub.url)


def test_group_change_at_provider_changes_team_at_next_spawn(
    oidc_hub: OIDCHub, restore_groups: dict[str, list[str]]
) -> None:
    hub = oidc_hub.hub
    assert login(oidc_hub, "erin").has_hub_session(oidc_hub.url)
    assert hub_groups(oidc_hub, "erin") == ["vision"]
    restore_groups["erin"] = ["vision"]
    oidc_hub.oidc.set_groups("erin", ["nlp"])
    try:
        status, body = hub.call("POST", "/users/erin/server", {"profile": "cpu"})
        assert status in (201, 202), body
        wait_server_sync(hub, "erin", ready=True)
        assert hub_groups(oidc_hub, "erin") == ["nlp"]
        state = hub.api("GET", "/users/erin?include_stopped_servers")["servers"][""]["state"]
        assert state.get("namespace") == "team-nlp", state
    finally:
        hub.call("DELETE", "/users/erin/server")
        wait_server_sync(hub, "erin", ready=False)


def test_removed_from_every_team_loses_session_at_refresh(
    oidc_hub: OIDCHub, restore_groups: dict[str, list[str]]
) -> None:
    signed = login(oidc_hub, "frank")
    assert signed.has_hub_session(oidc_hub.url)
    restore_groups["frank"] = ["vision"]
    oidc_hub.oidc.set_groups("frank", ["staff"])
    wait_for(
        lambda: not signed.has_hub_session(oidc_hub.url),
        timeout=60,
        interval=1,
        what="frank's hub session to end",
    )
    assert hub_groups(oidc_hub, "frank") == []
    assert not signed.has_hub_session(oidc_hub.url)


@pytest.mark.parametrize(
    ("fault", "expected"), [("forged", "signature is not valid"), ("expired", "has expired")]
)
def test_bad_id_token_is_refused_without_session(
    oidc_hub: OIDCHub, fault: str, expected: str
) -> None:
    oidc_hub.oidc.spoil_next_id_token(fault)
    try:
        refused = login(oidc_hub, "gina")
    finally:
        oidc_hub.oidc.spoil_next_id_token(None)
    assert refused.response.status_code == 403, refused.response.text[:500]
    assert expected in refused.response.text
    assert not refused.has_hub_session(oidc_hub.url)


def test_wrong_state_is_refused_without_session(oidc_hub: OIDCHub) -> None:
    halted = login(oidc_hub, "gina", stop_before_callback=True)
    callback = urlparse(halted.response.headers["X-Stopped-At"])
    query = {key: values[0] for key, values in parse_qs(callback.query).items()}
    assert "code" in query and "state" in query
    query["state"] = "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ=="
    forged = urlunparse(callback._replace(query=urlencode(query)))
    answer = halted.session.get(forged, allow_redirects=False, timeout=30)
    assert answer.status_code == 400
    assert "OAuth state mismatch" in answer.text
    assert not halted.has_hub_session(oidc_hub.url)


def test_provider_down_is_a_clear_error_without_session(oidc_hub: OIDCHub) -> None:
    halted = login(oidc_hub, "hugo", stop_before_callback=True)
    oidc_hub.oidc.stop()
    try:
        answer = halted.session.get(
            halted.response.headers["X-Stopped-At"], allow_redirects=False, timeout=60
        )
        assert answer.status_code == 503, answer.text[:500]
        assert "cannot be reached" in answer.text
        assert not halted.has_hub_session(oidc_hub.url)
    finally:
        oidc_hub.oidc.start()
    assert login(oidc_hub, "hugo").has_hub_session(oidc_hub.url)
