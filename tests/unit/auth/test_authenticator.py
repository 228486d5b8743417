"""TeamOAuthenticator with the provider's answers recorded: teams, leads, refusals, refresh."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from hub_ext.auth.authenticator import LoginRefused, TeamOAuthenticator
from hub_ext.policy.lead_roles import LeadScopeError, check_lead_scopes, lead_roles

pytestmark = pytest.mark.unit

TOKEN_URL = "https://idp.example.com/token"
USERINFO_URL = "https://idp.example.com/userinfo"
JWKS_URL = "https://idp.example.com/jwks"
ISSUER = "https://idp.example.com"
TEAMS = {
    "vision": {
        "groups": ["/ml/vision"],
        "lead_groups": ["/ml/vision/leads"],
        "quota": {"gpus": 4},
        "profiles": ["cpu"],
        "contact": "#ml-vision",
    },
    "nlp": {"groups": ["nlp-engineers"], "quota": {"gpus": 4}, "profiles": ["cpu"]},
}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwks() -> dict[str, Any]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}


def id_token(key: Any = KEY, expires_in: int = 300, aud: str = "hub") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u1", "aud": aud, "iat": now - 10, "exp": now + expires_in}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


class FakeProvider:
    """Answers the authenticator's HTTP requests like an OIDC provider would."""

    def __init__(self) -> None:
        self.userinfo: dict[str, Any] = {}
        self.id_token: str | None = None
        self.token_error: Exception | None = None
        self.down = False
        self.graph: list[str] = []
        self.calls: list[str] = []

    async def fetch(self, request: Any, **kwargs: Any) -> Any:
        body = json.dumps(self.answer(request.url)).encode()
        return type("Response", (), {"body": body})()

    def answer(self, url: str) -> Any:
        self.calls.append(url)
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        if url == TOKEN_URL:
            if self.token_error:
                raise self.token_error
            info = {"access_token": "at", "token_type": "Bearer", "refresh_token": "rt"}
            if self.id_token:
                info["id_token"] = self.id_token
            return info
        if url.startswith(USERINFO_URL):
            return dict(self.userinfo)
        if url == JWKS_URL:
            return public_jwks()
        if url.startswith("https://graph.microsoft.com/"):
            return {"value": self.graph}
        raise AssertionError(f"unexpected request {url}")


class FakeUser:
    def __init__(self, name: str, auth_state: dict[str, Any]) -> None:
        self.name = name
        self.auth_state = auth_state
        self.groups: list[str] | None = None

    async def get_auth_state(self) -> dict[str, Any]:
        return self.auth_state

    def sync_groups(self, names: list[str]) -> None:
        self.groups = list(names)


def make(provider: FakeProvider, **settings: Any) -> TeamOAuthenticator:
    config = Config()
    config.MLTeams.teams = TEAMS
    config.MLTeams.profiles = {"cpu": {"image": "example/cpu:1"}}
    config.TeamOAuthenticator.client_id = "hub"
    config.TeamOAuthenticator.client_secret = "secret"
    config.TeamOAuthenticator.token_url = TOKEN_URL
    config.TeamOAuthenticator.userdata_url = USERINFO_URL
    config.TeamOAuthenticator.authorize_url = "https://idp.example.com/auth"
    config.TeamOAuthenticator.username_claim = "preferred_username"
    config.TeamOAuthenticator.enable_pkce = False
    for key, value in settings.items():
        setattr(config.TeamOAuthenticator, key, value)
    auth = TeamOAuthenticator(config=config)
    auth.http_client = provider
    return auth


class FakeHandler:
    def get_argument(self, name: str, default: Any = None) -> Any:
        return {"code": "c0de"}.get(name, default)

    request = type("R", (), {"host": "hub.example.com", "protocol": "https"})()


async def login(auth: TeamOAuthenticator) -> dict[str, Any]:
    auth.oauth_callback_url = "https://hub.example.com/hub/oauth_callback"
    return await auth.get_authenticated_user(FakeHandler(), None)


async def test_groups_become_teams_and_lead_groups() -> None:
    provider = FakeProvider()
    provider.userinfo = {
        "preferred_username": "lena",
        "groups": ["/ml/vision/leads", "nlp-engineers", "/staff"],
    }
    model = await login(make(provider))
    assert model["name"] == "lena"
    assert model["groups"] == ["nlp", "vision", "vision-leads"]
    assert model["auth_state"]["mlteams"] == {
        "idp_groups": ["/ml/vision/leads", "/staff", "nlp-engineers"],
        "teams": ["vision", "nlp"],
        "leads": ["vision"],
    }
    assert not model["admin"]


async def test_no_team_is_refused_with_groups_seen_and_contact() -> None:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "dave", "groups": ["/staff", "Everyone"]}
    with pytest.raises(LoginRefused) as caught:
        await login(make(provider, no_team_contact="#ml-platform on Slack"))
    message = caught.value.message
    assert caught.value.status_code == 403
    assert "'/staff', 'Everyone'" in message
    assert "#ml-platform on Slack" in message
    for secret in ("vision", "nlp", "/ml/"):
        assert secret not in message


async def test_no_team_admin_and_opt_in_may_log_in() -> None:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "root", "groups": ["platform-admins"]}
    model = await login(make(provider, admin_users={"root"}))
    assert model["admin"] is True and model["groups"] == []
    model = await login(make(provider, admin_groups={"platform-admins"}))
    assert model["admin"] is True
    model = await login(make(provider, allow_users_without_team=True))
    assert model["groups"] == [] and not model["admin"]


async def test_refresh_follows_group_changes_and_ends_session_without_team() -> None:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "carol", "groups": ["/ml/vision"]}
    auth = make(provider)
    model = await login(auth)
    user = FakeUser("carol", model["auth_state"])
    provider.userinfo["groups"] = ["nlp-engineers"]
    refreshed = await auth.refresh_user(user)
    assert refreshed["groups"] == ["nlp"]
    provider.userinfo["groups"] = ["/elsewhere"]
    assert await auth.refresh_user(user) is False
    assert user.groups == []


async def test_provider_down_is_a_clear_503_and_keeps_groups_at_refresh() -> None:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "alice", "groups": ["/ml/vision"]}
    auth = make(provider)
    model = await login(auth)
    provider.down = True
    with pytest.raises(LoginRefused) as caught:
        await login(auth)
    assert caught.value.status_code == 503
    assert "cannot be reached" in caught.value.message
    assert "idp.example.com" in caught.value.message
    user = FakeUser("alice", model["auth_state"])
    with pytest.raises(LoginRefused):
        await auth.refresh_user(user)
    assert user.groups is None


async def test_rejected_code_is_refused() -> None:
    provider = FakeProvider()
    provider.token_error = HTTPClientError(400, "Bad Request")
    with pytest.raises(LoginRefused) as caught:
        await login(make(provider))
    assert caught.value.status_code == 403
    assert "did not accept this sign-in" in caught.value.message


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (lambda: id_token(OTHER_KEY), "signature is not valid"),
        (lambda: id_token(expires_in=-3600), "has expired"),
        (lambda: id_token(aud="someone-else"), "issued for another application"),
        (lambda: "not-a-jwt", "malformed"),
        (lambda: None, "sent no ID token"),
    ],
)
async def test_bad_id_tokens_are_refused(token: Any, expected: str) -> None:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "alice", "groups": ["/ml/vision"]}
    provider.id_token = token()
    with pytest.raises(LoginRefused) as caught:
        await login(make(provider, jwks_url=JWKS_URL, oidc_issuer=ISSUER))
    assert caught.value.status_code == 403
    assert expected in caught.value.message


async def test_good_id_token_is_accepted() -> None:
    provider = FakeProvider()
    provider.userinfo = {"preferred_username": "alice", "groups": ["/ml/vision"]}
    provider.id_token = id_token()
    model = await login(make(provider, jwks_url=JWKS_URL, oidc_issuer=ISSUER))
    assert model["groups"] == ["vision"]


async def test_azure_overage_refused_or_read_from_graph() -> None:
    provider = FakeProvider()
    provider.userinfo = {
        "preferred_username": "many",
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x/getMemberObjects"}},
    }
    with pytest.raises(LoginRefused) as caught:
        await login(make(provider))
    assert "too many groups" in caught.value.message
    provider.graph = ["nlp-engineers", "/ml/vision"]
    model = await login(make(provider, graph_group_lookup=True))
    assert model["groups"] == ["nlp", "vision"]
    assert any(url.startswith("https://graph.microsoft.com/") for url in provider.calls)


async def test_lead_roles_are_filtered_to_the_team() -> None:
    roles = await make(FakeProvider()).load_managed_roles()
    by_name = {role["name"]: role for role in roles}
    assert set(by_name) == {"mlteams-lead-vision", "mlteams-lead-nlp"}
    vision = by_name["mlteams-lead-vision"]
    assert vision["groups"] == ["vision-leads"]
    assert "admin-ui" in vision["scopes"]
    assert "delete:servers!group=vision" in vision["scopes"]
    for scope in vision["scopes"]:
        assert scope == "admin-ui" or scope.endswith("!group=vision")
        assert scope.split("!")[0] != "groups"


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["groups"], "lead_scopes[0]: 'groups' is never given"),
        (["admin-ui", "admin:users!group={team}"], "lead_scopes[1]: 'admin:users!group={team}'"),
        (["read:users"], "lead_scopes[0]: 'read:users' must be filtered"),
        (["read:users!user=x"], "must be filtered to the lead's team"),
    ],
)
def test_bad_lead_scopes_name_the_key(scopes: list[str], expected: str) -> None:
    with pytest.raises(LeadScopeError) as caught:
        check_lead_scopes(scopes)
    assert expected in str(caught.value)


async def test_bad_group_rule_stops_hub_start() -> None:
    auth = make(FakeProvider(), group_rules=[{"glob": "x*", "team": "ghost"}])
    with pytest.raises(ValueError, match=r"TeamOAuthenticator.group_rules\[0\].team"):
        await auth.load_managed_roles()


def test_team_named_like_leads_group_is_refused() -> None:
    with pytest.raises(LeadScopeError, match=r"MLTeams.teams.vision-leads: the name is taken"):
        lead_roles(["vision", "vision-leads"], ["admin-ui"])
