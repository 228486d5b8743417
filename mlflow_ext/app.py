"""``mlflow server --app-name mlteams``: MLflow's basic-auth app with the governed-model guard.

The guard runs as a Flask ``before_request`` hook registered after MLflow's own, so the caller
is authenticated (``g.mlflow_authenticated_user``) and MLflow's permission check has passed by
the time it looks at the request. The promotion service is the MLflow user named in
``MLTEAMS_REGISTRY_SERVICE_USER``, and only while that user is an MLflow admin.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, request
from mlflow.exceptions import MlflowException
from mlflow.server.handlers import _get_model_registry_store, catch_mlflow_exception

from mlflow_ext.guard import GOVERNED_TAG, RegistryRequest, change_of, check
from mlflow_ext.identity import configured, error_response

log = logging.getLogger(__name__)

_AUTHENTICATED_USER = "mlflow_authenticated_user"
"""Where MLflow's ``_before_request`` leaves the authenticated username."""


def create_app() -> Any:
    """MLflow's server app with authentication (``mlflow.server.auth.create_app``) and the
    guard; the ASGI app under uvicorn, the Flask app otherwise, as MLflow's own factory."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as create_auth_app

    configured()
    served = create_auth_app(flask_app)
    flask_app.before_request(guard_registry)
    return served


@catch_mlflow_exception
def guard_registry() -> Response | None:
    """Refuse a change of a governed model (or of an ``mlteams.*`` tag) by anyone but the
    promotion service."""
    rule = request.url_rule
    path = rule.rule if rule is not None else request.path
    if change_of(request.method, path) is None:
        return None
    settings, _ = configured()
    caller = g.get(_AUTHENTICATED_USER)
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
