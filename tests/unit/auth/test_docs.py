"""docs/admin/sso.md says what the code does: lead scopes, traitlets and error messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub_ext.auth import authenticator
from hub_ext.auth import id_tokens as auth_tokens
from hub_ext.auth.authenticator import TeamOAuthenticator
from hub_ext.policy import group_rules as groups_mapping
from hub_ext.policy.lead_roles import DEFAULT_LEAD_SCOPES

pytestmark = pytest.mark.unit

DOC = (Path(__file__).resolve().parents[3] / "docs" / "admin" / "sso.md").read_text()
SOURCES = "".join(
    Path(module.__file__).read_text() for module in (authenticator, auth_tokens, groups_mapping)
)


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


@pytest.mark.parametrize(
    "fragment",
    [
        "The sign-in token's signature is not valid",
        "The sign-in token has expired. Please sign in again.",
        "The identity provider did not accept this sign-in",
        "cannot be reached right now",
        "(Azure AD groups overage)",
    ],
)
def test_documented_errors_are_the_real_ones(fragment: str) -> None:
    assert fragment in DOC
    assert fragment in re.sub(r'"\s*\n\s*(f?)"', "", SOURCES)
