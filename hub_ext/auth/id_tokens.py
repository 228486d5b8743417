"""ID token checks: signature against the provider's published keys, expiry, audience, issuer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LEEWAY_SECONDS = 60


class IdTokenError(Exception):
    """The ID token is not acceptable; ``message`` is meant for the person logging in."""

    def __init__(self, message: str, unknown_key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unknown_key = unknown_key


def _signing_key(token: str, jwks: Mapping[str, Any]) -> tuple[Any, str]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise IdTokenError(f"The sign-in token is malformed ({exc}).") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise IdTokenError(f"The sign-in token uses an algorithm that is not accepted ({alg}).")
    try:
        keyset = jwt.PyJWKSet.from_dict(dict(jwks))
    except jwt.PyJWTError as exc:
        raise IdTokenError(f"The identity provider's signing keys are unusable ({exc}).") from None
    kid = header.get("kid")
    candidates = [key for key in keyset.keys if kid is None or key.key_id == kid]
    if not candidates:
        raise IdTokenError(
            "The sign-in token was signed with a key the identity provider does not publish.",
            unknown_key=True,
        )
    return candidates[0].key, alg


def verify_id_token(
    token: str,
    jwks: Mapping[str, Any],
    audience: str,
    issuer: str | None = None,
    leeway: int = LEEWAY_SECONDS,
) -> dict[str, Any]:
    """The token's claims, if it is signed by one of ``jwks``, unexpired and for ``audience``."""
    key, alg = _signing_key(token, jwks)
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer or None,
            leeway=leeway,
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise IdTokenError("The sign-in token has expired. Please sign in again.") from None
    except jwt.InvalidSignatureError:
        raise IdTokenError(
            "The sign-in token's signature is not valid: it was not issued by the identity "
            "provider this hub trusts."
        ) from None
    except jwt.InvalidAudienceError:
        raise IdTokenError("The sign-in token was issued for another application.") from None
    except jwt.InvalidIssuerError:
        raise IdTokenError("The sign-in token was issued by another identity provider.") from None
    except jwt.PyJWTError as exc:
        raise IdTokenError(f"The sign-in token is not valid ({exc}).") from None
