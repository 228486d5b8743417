"""docs/admin/sso.md says what the code does: lead scopes, traitlets and error messages.

The error messages are read from the page and produced by the authenticator: each row of
"Errors people may see" is triggered with the input that causes it, and the page the hub would
show must carry the documented status and text.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from oauthenticator.oauth2 import STATE_COOKIE_NAME, _serialize_state
from tornado import httputil, web
from tornado.httpclient import HTTPClientError

from hub_ext.auth.authenticator import TeamOAuthenticator
from hub_ext.policy.lead_roles import DEFAULT_LEAD_SCOPES
from tests.unit.auth.test_authenticator import (
    ISSUER,
    JWKS_URL,
    OTHER_KEY,
    FakeProvider,
    id_token,
    login,
    make,
)

pytestmark = pytest.mark.unit

DOC = (Path(__file__).resolve().parents[3] / "docs" / "admin" / "sso.md").read_text()
ERRORS_SECTION = DOC.split("## Errors people may see")[1].split("\n## ")[0]
DOCUMENTED_ERRORS = {
    row["what"]: (int(row["status"]), row["page"])
    for row in re.finditer(
        r'^\| (?P<what>[^|]+?) \| (?P<status>\d{3}), "(?P<page>[^"]+)" \|$',
        ERRORS_SECTION,
        re.MULTILINE,
    )
}


def shown(error: web.HTTPError) -> str:
    """The message the hub's error page shows for ``error``."""
    message = getattr(error, "jupyterhub_message", None)
    if message:
        return str(message)
    return error.log_message % error.args if error.args else str(error.log_message)


def assert_page_says(documented: str, page: str) -> None:
    """Every part of ``documented`` between the ellipses is in ``page``, in that order."""
    at = 0
    for part in (piece.strip() for piece in documented.split("…")):
        if not part:
            continue
        found = page.find(part, at)
        assert found >= 0, f"{part!r} is not in {page!r} (after the parts before it)"
        at = found + len(part)


async def refused_login(provider: FakeProvider, **settings: object) -> web.HTTPError:
    with pytest.raises(web.HTTPError) as caught:
        await login(make(provider, **settings))
    return caught.value


def member_of(*groups: str) -> FakeProvider:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "alice", "groups": list(groups)}
    return provider


async def no_team() -> web.HTTPError:
    return await refused_login(member_of("/staff"), no_team_contact="#ml-platform on Slack")


async def id_token_refused(token: str) -> web.HTTPError:
    provider = member_of("/ml/vision")
    provider.id_token = token
    return await refused_login(provider, jwks_url=JWKS_URL, oidc_issuer=ISSUER)


async def foreign_signature() -> web.HTTPError:
    return await id_token_refused(id_token(OTHER_KEY))


async def expired_token() -> web.HTTPError:
    return await id_token_refused(id_token(expires_in=-3600))


async def code_rejected() -> web.HTTPError:
    provider = member_of("/ml/vision")
    provider.token_error = HTTPClientError(400, "Bad Request")
    return await refused_login(provider)


async def state_mismatch() -> web.HTTPError:
    secret = b"0" * 32
    cookie = web.create_signed_value(
        secret, STATE_COOKIE_NAME, _serialize_state({"state_id": "from-the-login"})
    ).decode()
    forged = _serialize_state({"state_id": "forged"})
    request = httputil.HTTPServerRequest(
        start_line=httputil.RequestStartLine(
            "GET", f"/hub/oauth_callback?code=c0de&state={forged}", "HTTP/1.1"
        ),
        headers=httputil.HTTPHeaders(
            {"Host": "hub.example.com", "Cookie": f"{STATE_COOKIE_NAME}={cookie}"}
        ),
        connection=mock.Mock(),
    )
    app = web.Application(cookie_secret=secret, hub=SimpleNamespace(base_url="/hub/"))
    handler = TeamOAuthenticator.callback_handler(app, request)
    with pytest.raises(web.HTTPError) as caught:
        handler.check_state()
    return caught.value


async def provider_down() -> web.HTTPError:
    provider = member_of("/ml/vision")
    provider.down = True
    return await refused_login(provider)


async def groups_overage() -> web.HTTPError:
    provider = FakeProvider()
    provider.userinfo = {
        "preferred_username": "many",
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x/getMemberObjects"}},
    }
    return await refused_login(provider)


TRIGGERS: dict[str, Callable[[], Awaitable[web.HTTPError]]] = {
    "no team": no_team,
    "the ID token is not signed by the provider's keys": foreign_signature,
    "the ID token expired": expired_token,
    "the code was already used or is invalid": code_rejected,
    "the `state` does not match the browser's cookie": state_mismatch,
    "the provider cannot be reached": provider_down,
    "Azure AD groups overage": groups_overage,
}


def test_every_documented_error_is_triggered() -> None:
    assert set(DOCUMENTED_ERRORS) == set(TRIGGERS)


@pytest.mark.parametrize("what", list(TRIGGERS))
async def test_documented_error_is_the_real_one(what: str) -> None:
    status, documented = DOCUMENTED_ERRORS[what]
    error = await TRIGGERS[what]()
    assert error.status_code == status
    assert_page_says(documented, shown(error))


async def test_user_in_no_groups_reads_the_documented_sentence() -> None:
    documented = re.search(r'is refused with "([^"]+)"', DOC)
    assert documented, "docs/admin/sso.md no longer quotes the page of a user in no groups"
    error = await refused_login(member_of())
    assert error.status_code == 403
    assert documented.group(1) in shown(error)


async def test_bad_group_rule_stops_the_hub_with_the_documented_message() -> None:
    documented = re.search(
        r"Bad rules stop the hub at start\s+with the key, such as `([^`]+)`", DOC
    )
    assert documented, "docs/admin/sso.md no longer quotes a bad rule's message"
    auth = make(
        FakeProvider(),
        group_rules=[
            {"glob": "okta-ml-vision-*", "team": "vision"},
            {"glob": "x*", "team": "ghost"},
        ],
    )
    with pytest.raises(ValueError) as caught:
        await auth.load_managed_roles()
    assert str(caught.value) == re.sub(r"\s+", " ", documented.group(1))


def test_default_lead_scopes_are_documented() -> None:
    listed = re.sub(r"\s+", " ", DOC.split("default scopes (`lead_scopes`) are:")[1])
    for scope in DEFAULT_LEAD_SCOPES:
        assert scope.replace("{team}", "<team>") in listed


def test_documented_settings_exist() -> None:
    traits = set(TeamOAuthenticator.class_trait_names())
    for name in re.findall(r"`TeamOAuthenticator\.([a-z_]+)", DOC):
        assert name in traits
    for name in (
        "groups_claims",
        "group_rules",
        "keycloak_subgroups",
        "lead_scopes",
        "jwks_url",
        "oidc_issuer",
        "no_team_contact",
        "allow_users_without_team",
        "graph_group_lookup",
    ):
        assert re.search(rf"\b{name}\b", DOC), name
        assert name in traits
