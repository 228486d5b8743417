"""Hub tokens as MLflow identities: the hub's answers, the short cache, the failures.

The hub's answers are injected (``get``) so the failures a real hub rarely gives can be had at
will; tests/integration/test_registry_guard.py asks the real hub.
"""

from __future__ import annotations

import hashlib
import json
import socket

import pytest

from mlflow_ext.hub_tokens import (
    HubAnswer,
    HubIdentity,
    HubTokens,
    HubUnavailable,
    TokenRefused,
    urllib_get,
    user_url,
)
from mlflow_ext.settings import PluginSettings, SettingsError

pytestmark = pytest.mark.unit

TOKEN = "a" * 32


class FakeHub:
    """Answers ``GET /user`` from a table of tokens, counting the questions."""

    def __init__(self) -> None:
        self.users = {TOKEN: {"name": "v-alice", "kind": "user"}}
        self.status: int | None = None
        self.asked: list[tuple[str, str, float]] = []

    def __call__(self, url: str, token: str, timeout: float) -> HubAnswer:
        self.asked.append((url, token, timeout))
        if self.status is not None:
            return HubAnswer(self.status, b"oops")
        if token in self.users:
            return HubAnswer(200, json.dumps(self.users[token]).encode())
        return HubAnswer(403, b'{"status": 403}')


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def tokens(hub: FakeHub, clock: Clock, ttl: float = 60) -> HubTokens:
    return HubTokens("http://hub:8081/hub/api/", ttl=ttl, timeout=3, get=hub, clock=clock)


def test_the_hub_says_whose_token_it_is_and_the_answer_is_kept_for_the_ttl(
    hub: FakeHub, clock: Clock
) -> None:
    checker = tokens(hub, clock)
    assert checker.identify(TOKEN) == HubIdentity("v-alice", "user")
    assert hub.asked == [("http://hub:8081/hub/api/user", TOKEN, 3)]
    clock.now += 59
    assert checker.identify(TOKEN).name == "v-alice"
    assert len(hub.asked) == 1
    clock.now += 2
    del hub.users[TOKEN]  # revoked
    with pytest.raises(TokenRefused, match="wrong, expired or revoked"):
        checker.identify(TOKEN)
    assert len(hub.asked) == 2


def test_the_cache_keeps_no_token(hub: FakeHub, clock: Clock) -> None:
    checker = tokens(hub, clock)
    checker.identify(TOKEN)
    assert list(checker._cache) == [hashlib.sha256(TOKEN.encode()).hexdigest()]
    assert TOKEN not in repr(checker._cache)


def test_refusals_and_failures_are_not_kept(hub: FakeHub, clock: Clock) -> None:
    checker = tokens(hub, clock)
    hub.status = 502
    with pytest.raises(HubUnavailable, match="answered 502"):
        checker.identify(TOKEN)
    hub.status = None
    assert checker.identify(TOKEN).name == "v-alice"
    new = "b" * 32
    with pytest.raises(TokenRefused):
        checker.identify(new)
    hub.users[new] = {"name": "n-bob", "kind": "user"}
    assert checker.identify(new).name == "n-bob"


def test_a_ttl_of_zero_asks_every_time(hub: FakeHub, clock: Clock) -> None:
    checker = tokens(hub, clock, ttl=0)
    checker.identify(TOKEN)
    checker.identify(TOKEN)
    assert len(hub.asked) == 2


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"name": ""}', b'["v-alice"]'])
def test_an_answer_that_is_not_a_user_is_unavailable_not_a_crash(
    hub: FakeHub, clock: Clock, body: bytes
) -> None:
    checker = HubTokens("http://hub/hub/api", get=lambda *_: HubAnswer(200, body), clock=clock)
    with pytest.raises(HubUnavailable, match="not a user"):
        checker.identify(TOKEN)


def test_a_hub_that_does_not_answer_is_unavailable_with_a_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    checker = HubTokens(f"http://127.0.0.1:{port}/hub/api", timeout=2)
    with pytest.raises(HubUnavailable, match="did not answer"):
        checker.identify(TOKEN)


def test_no_hub_configured_is_unavailable_with_what_to_do() -> None:
    with pytest.raises(HubUnavailable, match="MLTEAMS_HUB_API_URL"):
        HubTokens("").identify(TOKEN)


def test_urllib_get_returns_error_statuses() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError):
        urllib_get(f"http://127.0.0.1:{port}/", TOKEN, 1)


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://hub:8081/hub/api", "http://hub:8081/hub/api/user"),
        ("http://hub:8081/hub/api/", "http://hub:8081/hub/api/user"),
        ("http://hub:8081/hub/", "http://hub:8081/hub/api/user"),
        ("http://hub:8081/prefix/hub/api", "http://hub:8081/prefix/hub/api/user"),
    ],
)
def test_the_user_url(given: str, url: str) -> None:
    assert user_url(given) == url


def test_settings_from_the_environment() -> None:
    assert PluginSettings.from_env({}) == PluginSettings()
    settings = PluginSettings.from_env(
        {
            "MLTEAMS_HUB_API_URL": " http://hub/hub/api ",
            "MLTEAMS_HUB_TOKEN_CACHE_SECONDS": "5",
            "MLTEAMS_HUB_SERVICES": "mlteams, grader,",
            "MLTEAMS_REGISTRY_SERVICE_USER": "svc",
            "MLTEAMS_GOVERNED_PREFIX": "prod.",
        }
    )
    assert settings.hub_api_url == "http://hub/hub/api"
    assert settings.token_cache_seconds == 5
    assert settings.hub_services == {"mlteams", "grader"}
    assert (settings.service_user, settings.governed_prefix) == ("svc", "prod.")
    with pytest.raises(SettingsError, match="MLTEAMS_HUB_TIMEOUT_SECONDS must be a number"):
        PluginSettings.from_env({"MLTEAMS_HUB_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(SettingsError, match="must not be negative"):
        PluginSettings.from_env({"MLTEAMS_HUB_TOKEN_CACHE_SECONDS": "-1"})
