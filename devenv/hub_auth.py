"""TeamOAuthenticator settings of the local platform (``MLTEAMS_HUB_AUTH=oidc``).

Used by ``devenv/jupyterhub_config.py``; a real deployment writes the same settings under
``hub.config.TeamOAuthenticator`` (see docs/admin/sso.md).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any


def crypt_key(state_dir: str) -> str:
    """The hub's auth-state encryption key, kept in the hub's state folder."""
    path = os.path.join(state_dir, "crypt_key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()


def configure_oidc(c: Any, env: Mapping[str, str], state_dir: str) -> None:
    public_url = env["MLTEAMS_HUB_PUBLIC_URL"].rstrip("/")
    c.JupyterHub.authenticator_class = "mlteams"
    c.CryptKeeper.keys = [bytes.fromhex(crypt_key(state_dir))]
    c.Authenticator.allow_all = False
    c.Authenticator.auth_refresh_age = int(env.get("MLTEAMS_HUB_AUTH_REFRESH_AGE", "300"))
    auth = c.TeamOAuthenticator
    auth.client_id = env["MLTEAMS_OIDC_CLIENT_ID"]
    auth.client_secret = env["MLTEAMS_OIDC_CLIENT_SECRET"]
    auth.authorize_url = env["MLTEAMS_OIDC_AUTHORIZE_URL"]
    auth.token_url = env["MLTEAMS_OIDC_TOKEN_URL"]
    auth.userdata_url = env["MLTEAMS_OIDC_USERINFO_URL"]
    auth.jwks_url = env["MLTEAMS_OIDC_JWKS_URL"]
    auth.oidc_issuer = env["MLTEAMS_OIDC_ISSUER"]
    auth.scope = env.get("MLTEAMS_OIDC_SCOPES", "openid profile email groups").split()
    auth.username_claim = "preferred_username"
    auth.oauth_callback_url = f"{public_url}/hub/oauth_callback"
    auth.login_service = "mlteams SSO"
    auth.admin_groups = {"platform-admins"}
    auth.no_team_contact = "the platform team (#ml-platform)"
