"""TeamOAuthenticator: an OAuthenticator that maps SSO groups to teams."""

from oauthenticator.generic import GenericOAuthenticator


class TeamOAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator whose users' identity-provider groups become hub team groups."""
