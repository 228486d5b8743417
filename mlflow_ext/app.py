"""``mlflow server --app-name mlteams``: MLflow's basic-auth app with the governed-model guard.

The guard is a Flask ``before_request`` hook placed just before MLflow's own (which
authenticates and then checks MLflow's permissions in one step): it authenticates the caller
through MLflow's ``authenticate_request`` (the configured ``authorization_function``, whose
answer ``mlflow_ext.identity`` keeps for the request, so MLflow's hook gets the same), and
refuses a change of a governed model with its own message, whatever MLflow's permissions would
have said. The promotion service is the MLflow user named in ``MLTEAMS_REGISTRY_SERVICE_USER``,
and only while that user is an MLflow admin.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, request
from mlflow.exceptions import MlflowException
from mlflow.server.handlers import _get_model_registry_store, catch_mlflow_exception

from mlflow_ext.guard import GOVERNED_TAG, RegistryRequest, change_of, check
from mlflow_ext.identity import configured, error_response

log = logging.getLogger(__name__)

def create_app() -> Any:
    """MLflow's server app with authentication (``mlflow.server.auth.create_app``) and the
    guard; the ASGI app under uvicorn, the Flask app otherwise, as MLflow's own factory."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import _before_request as authorize
    from mlflow.server.auth import create_app as create_auth_app

    configured()
    served = create_auth_app(flask_app)
    hooks = flask_app.before_request_funcs.setdefault(None, [])
    hooks.insert(hooks.index(authorize) if authorize in hooks else len(hooks), guard_registry)
    return served


@catch_mlflow_exception
def guard_registry() -> Response | None:
    """Refuse a change of a governed model (or of an ``mlteams.*`` tag) by anyone but the
    promotion service."""
    rule = request.url_rule
    path = rule.rule if rule is not None else request.path
    if change_of(request.method, path) is None:
        return None
    from mlflow.server.auth import authenticate_request

    authorization = authenticate_request()
    if isinstance(authorization, Response):
        return authorization
    settings, _ = configured()
    caller = authorization.username
    registry_request = RegistryRequest(
        method=request.method,
        path=path,
        args=request.args.to_dict(flat=False),
        body=request.get_json(force=True, silent=True),
        caller=caller,
        caller_is_service=_is_service(caller, settings.service_user),
    )
    refusal = check(registry_request, governed_by_tag, prefix=settings.governed_prefix)
    if refusal is None:
        return None
    log.info("refused %s %s by %s: %s", request.method, path, caller, refusal.message)
    return error_response(refusal.http_status, refusal.error_code, refusal.message)


def _is_service(caller: str | None, service_user: str) -> bool:
    if not caller or caller != service_user:
        return False
    from mlflow.server.auth import store

    if store.get_user(caller).is_admin:
        return True
    log.warning("%s is not an MLflow admin: it is not taken as the promotion service", caller)
    return False


def governed_by_tag(name: str) -> bool:
    """Whether the registered model ``name`` exists and carries ``mlteams.governed=true``."""
    try:
        model = _get_model_registry_store().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return str(model.tags.get(GOVERNED_TAG, "")).strip().lower() == "true"
