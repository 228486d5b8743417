"""The local OpenID Connect provider (``oidc-provider`` from npm) of the demo and the tests."""

from .provider import DEMO_PASSWORD, DEMO_USERS, LocalOIDC, OIDCUser

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "LocalOIDC", "OIDCUser"]
