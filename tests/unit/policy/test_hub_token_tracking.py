"""A server's MLflow token: its own hub token, unless the admins configured MLflow credentials."""

from __future__ import annotations

import pytest

from hub_ext.policy.notebook_pod import TrackingSettings, hub_token_tracking
from server_ext import contract as env

pytestmark = pytest.mark.unit

TOKEN = "f" * 32


@pytest.mark.parametrize(
    ("settings", "token", "expected"),
    [
        (TrackingSettings(tracking_uri="http://m"), TOKEN, {env.TRACKING_TOKEN: TOKEN}),
        (TrackingSettings(tracking_uri="http://m", credentials_secret="s"), TOKEN, {}),
        (
            TrackingSettings(
                tracking_uri="http://m", credentials_secret="s", credentials_kind="basic"
            ),
            TOKEN,
            {},
        ),
        (TrackingSettings(), TOKEN, {}),
        (TrackingSettings(enabled=False, tracking_uri="http://m"), TOKEN, {}),
        (TrackingSettings(tracking_uri="http://m"), None, {}),
        (TrackingSettings(tracking_uri="http://m"), "", {}),
    ],
    ids=["no secret", "token secret", "basic secret", "no tracking", "off", "no token", "empty"],
)
def test_the_hub_token_is_the_tracking_token_only_without_configured_credentials(
    settings: TrackingSettings, token: str | None, expected: dict[str, str]
) -> None:
    assert hub_token_tracking(settings, token) == expected
