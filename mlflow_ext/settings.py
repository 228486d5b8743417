"""The plugin's settings, read from the MLflow server's environment.

=================================== ===============================================================
``MLTEAMS_HUB_API_URL``             The hub's REST API as the MLflow server reaches it, e.g.
                                    ``http://hub:8081/hub/api``. Empty: hub tokens are not taken.
``MLTEAMS_HUB_TOKEN_CACHE_SECONDS`` How long a hub token the hub accepted is trusted without asking
                                    again (default 60).
``MLTEAMS_HUB_TIMEOUT_SECONDS``     How long one question to the hub may take (default 5).
``MLTEAMS_HUB_SERVICES``            Comma-separated hub services whose tokens are taken (their
                                    MLflow user is the service's name). Default: none.
``MLTEAMS_REGISTRY_SERVICE_USER``   The MLflow user of the mlteams promotion service, an MLflow
                                    admin: the only one who changes governed models (default
                                    ``mlteams-service``).
``MLTEAMS_GOVERNED_PREFIX``         Registered models named so are governed (default
                                    ``governed.``).
=================================== ===============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlflow_ext.guard import GOVERNED_PREFIX
from mlflow_ext.hub_tokens import DEFAULT_TIMEOUT_SECONDS, DEFAULT_TTL_SECONDS

HUB_API_URL = "MLTEAMS_HUB_API_URL"
TOKEN_CACHE_SECONDS = "MLTEAMS_HUB_TOKEN_CACHE_SECONDS"
HUB_TIMEOUT_SECONDS = "MLTEAMS_HUB_TIMEOUT_SECONDS"
HUB_SERVICES = "MLTEAMS_HUB_SERVICES"
SERVICE_USER = "MLTEAMS_REGISTRY_SERVICE_USER"
PREFIX = "MLTEAMS_GOVERNED_PREFIX"
DEFAULT_SERVICE_USER = "mlteams-service"


class SettingsError(ValueError):
    """A setting in the environment has a value the plugin cannot use."""


@dataclass(frozen=True)
class PluginSettings:
    """What the identity function and the registry guard need to know."""

    hub_api_url: str = ""
    token_cache_seconds: float = DEFAULT_TTL_SECONDS
    hub_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    hub_services: frozenset[str] = frozenset()
    service_user: str = DEFAULT_SERVICE_USER
    governed_prefix: str = GOVERNED_PREFIX

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PluginSettings:
        services = environ.get(HUB_SERVICES, "")
        return cls(
            hub_api_url=environ.get(HUB_API_URL, "").strip(),
            token_cache_seconds=_seconds(environ, TOKEN_CACHE_SECONDS, DEFAULT_TTL_SECONDS),
            hub_timeout_seconds=_seconds(environ, HUB_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS),
            hub_services=frozenset(s.strip() for s in services.split(",") if s.strip()),
            service_user=environ.get(SERVICE_USER, "").strip() or DEFAULT_SERVICE_USER,
            governed_prefix=environ.get(PREFIX, "").strip() or GOVERNED_PREFIX,
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative, not {raw!r}")
    return value
