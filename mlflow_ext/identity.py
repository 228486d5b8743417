"""MLflow's ``authorization_function``: a JupyterHub token, or MLflow's own username and password.

``Authorization: Bearer <token>`` (what MLflow's clients send for ``MLFLOW_TRACKING_TOKEN``) is
a JupyterHub token: the hub says whose it is, and that hub user is the MLflow user, created in
MLflow's user store on first sight with a random password nobody knows (so MLflow's per-user
permissions, and MANAGE for what a user creates, work as for password users). Any other request
goes to MLflow's own basic-auth check: the promotion service and admins sign in so.

Refused: a token the hub does not accept (401), a hub service's token unless the service is
listed in ``MLTEAMS_HUB_SERVICES`` (403), a hub user whose MLflow user is the promotion
service's or an MLflow admin (403: admins sign in with their password). The hub unreachable is
a 503 with a message, never a traceback.

Configure with ``authorization_function = mlflow_ext.identity:authenticate`` in the file
``MLFLOW_AUTH_CONFIG_PATH`` names.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading

from flask import Response, g, request
from mlflow.exceptions import MlflowException
from mlflow.server.auth import authenticate_request_basic_auth, store
from werkzeug.datastructures import Authorization

from mlflow_ext.hub_tokens import HubIdentity, HubTokens, HubUnavailable, TokenRefused
from mlflow_ext.settings import PluginSettings

log = logging.getLogger(__name__)

_AUTHORIZATION = "mlteams_authorization"
_lock = threading.Lock()
_state: tuple[PluginSettings, HubTokens] | None = None


def configured() -> tuple[PluginSettings, HubTokens]:
    """The settings and the token checker of this process, made on first use."""
    global _state
    with _lock:
        if _state is None:
            settings = PluginSettings.from_env()
            tokens = HubTokens(
                settings.hub_api_url,
                ttl=settings.token_cache_seconds,
                timeout=settings.hub_timeout_seconds,
            )
            _state = (settings, tokens)
        return _state


def error_response(status: int, error_code: str, message: str) -> Response:
    """An MLflow-style JSON error."""
    response = Response(
        json.dumps({"error_code": error_code, "message": message}),
        status=status,
        mimetype="application/json",
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mlflow"'
    return response


def authenticate() -> Authorization | Response:
    """Who sent the current request (MLflow calls this several times a request: the answer is
    kept for the request)."""
    known = g.get(_AUTHORIZATION)
    if known is not None:
        return known
    result = _authenticate()
    if isinstance(result, Authorization):
        setattr(g, _AUTHORIZATION, result)
    return result


def _authenticate() -> Authorization | Response:
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return authenticate_request_basic_auth()
    token = credentials.strip()
    if not token:
        return error_response(401, "UNAUTHENTICATED", "the Bearer token is empty")
    settings, tokens = configured()
    try:
        identity = tokens.identify(token)
    except TokenRefused as exc:
        return error_response(401, "UNAUTHENTICATED", exc.message)
    except HubUnavailable as exc:
        log.warning("hub token not checked: %s", exc.message)
        return error_response(503, "TEMPORARILY_UNAVAILABLE", exc.message)
    refused = _refusal(identity, settings)
    if refused is not None:
        return error_response(403, "PERMISSION_DENIED", refused)
    try:
        if _ensure_user(identity.name):
            return error_response(
                403,
                "PERMISSION_DENIED",
                f"{identity.name} is an MLflow admin: admins sign in with their MLflow username "
                "and password, not a JupyterHub token",
            )
    except MlflowException as exc:
        log.warning("MLflow user %s not made: %s", identity.name, exc.message)
        return error_response(503, "TEMPORARILY_UNAVAILABLE", "MLflow's user store failed")
    return Authorization("bearer", {"username": identity.name})


def _refusal(identity: HubIdentity, settings: PluginSettings) -> str | None:
    if identity.kind == "service" and identity.name not in settings.hub_services:
        return (
            f"the JupyterHub service {identity.name} may not use MLflow with its hub token "
            "(MLTEAMS_HUB_SERVICES does not list it)"
        )
    if identity.kind not in ("user", "service"):
        return f"JupyterHub tokens of a {identity.kind} are not taken"
    if identity.name == settings.service_user:
        return (
            f"{identity.name} is the MLflow user of the mlteams promotion service: it signs in "
            "with its password, never with a JupyterHub token"
        )
    return None


def _ensure_user(username: str) -> bool:
    """Create ``username`` in MLflow's user store when it is not there; whether it is an
    admin."""
    if not store.has_user(username):
        try:
            store.create_user(username, secrets.token_urlsafe(32), is_admin=False)
            log.info("MLflow user %s created for its JupyterHub token", username)
        except MlflowException:
            # another worker made it at the same moment; anything else fails below
            if not store.has_user(username, use_primary=True):
                raise
    return bool(store.get_user(username).is_admin)
