"""Spawn refusals as JupyterHub understands them: a 4xx that is not a hub failure.

JupyterHub 6 has ``SpawnException``: a refusal with a status code below 500 is a handled
"failure", not an "error", and never counts toward the consecutive-failure limit that makes the
hub exit. JupyterHub 5 counts every failed spawn; there, a refusal gives back its count.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from tornado import web

try:
    from jupyterhub.spawner import SpawnException
except ImportError:
    SpawnException = None


def refusal(message: str, *, status: int, reason: str) -> web.HTTPError:
    """The exception to raise from ``start`` for a spawn refused by policy.

    JupyterHub shows ``jupyterhub_message`` on the spawn form and the spawn-pending page when it
    is set, and the exception's ``str()`` (status, class and reason) otherwise: every refusal
    carries the plain message.
    """
    if SpawnException is not None:
        error: web.HTTPError = SpawnException(message, reason=reason, status_code=status)
    else:
        error = web.HTTPError(status, log_message=message)
    error.jupyterhub_message = message  # type: ignore[attr-defined]  # read by JupyterHub
    return error


def forgive_failure(settings: MutableMapping[str, Any]) -> None:
    """On JupyterHub 5, offset the failure count that the coming refusal will add.

    ``settings`` must be the tornado application's settings (``handler.settings``), where the
    spawning handler keeps ``failure_count``.
    """
    if SpawnException is None:
        settings["failure_count"] = settings.get("failure_count", 0) - 1
