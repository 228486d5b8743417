"""TeamOAuthenticator: identity-provider groups become teams, team leads get scoped roles."""

from hub_ext.auth.authenticator import TeamOAuthenticator

__all__ = ["TeamOAuthenticator"]
