"""Who a JupyterHub token belongs to, asked of the hub and remembered for a short while.

A notebook server's MLflow client sends its hub token as ``Authorization: Bearer <token>``
(``MLFLOW_TRACKING_TOKEN``). The hub answers ``GET <hub api>/user`` with the token's owner. Valid
answers are kept for ``ttl`` seconds, keyed by the token's sha256 (the token itself is never
stored); refusals and failures are not kept, so a token the hub starts accepting works at once
and a revoked one stops working within ``ttl``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TTL_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_CACHED = 10_000


@dataclass(frozen=True)
class HubIdentity:
    """The owner of a hub token: a user's or a service's name, and which of the two."""

    name: str
    kind: str


class TokenRefused(Exception):
    """The hub does not know the token (or no longer does)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HubUnavailable(Exception):
    """The hub could not be asked, or answered something other than an identity."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def user_url(hub_api_url: str) -> str:
    """``<hub api>/user``; a URL ending in ``/hub`` (the hub's own base) gets ``/api`` first."""
    base = hub_api_url.rstrip("/")
    if base.endswith("/hub"):
        base += "/api"
    return f"{base}/user"


@dataclass(frozen=True)
class HubAnswer:
    status: int
    body: bytes


def urllib_get(url: str, token: str, timeout: float) -> HubAnswer:
    """``GET url`` with ``Authorization: token <token>``; an HTTP error status is returned."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HubAnswer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return HubAnswer(exc.code, exc.read())


class HubTokens:
    """Identifies hub tokens through the hub's REST API at ``hub_api_url``."""

    def __init__(
        self,
        hub_api_url: str,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        get: Callable[[str, str, float], HubAnswer] = urllib_get,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub_api_url = hub_api_url
        self.ttl = ttl
        self.timeout = timeout
        self._get = get
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[HubIdentity, float]] = {}

    def identify(self, token: str) -> HubIdentity:
        """The token's owner; ``TokenRefused`` or ``HubUnavailable`` otherwise."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] > now:
                return cached[0]
        identity = self._ask(token)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            if self.ttl > 0:
                self._cache[key] = (identity, now + self.ttl)
        return identity

    def _ask(self, token: str) -> HubIdentity:
        if not self.hub_api_url:
            raise HubUnavailable(
                "this MLflow server takes no JupyterHub tokens: no hub is configured "
                "(MLTEAMS_HUB_API_URL); sign in with an MLflow username and password"
            )
        url = user_url(self.hub_api_url)
        try:
            answer = self._get(url, token, self.timeout)
        except (OSError, urllib.error.URLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HubUnavailable(
                f"JupyterHub, which checks notebook tokens for MLflow, did not answer ({reason}); "
                "try again in a minute"
            ) from None
        if answer.status in (401, 403):
            raise TokenRefused(
                "JupyterHub did not accept this token: it is wrong, expired or revoked. In a "
                "notebook server, restart the server to get a fresh one"
            )
        if answer.status != 200:
            raise HubUnavailable(
                f"JupyterHub answered {answer.status} when asked who a token belongs to; "
                "try again in a minute"
            )
        try:
            model = json.loads(answer.body)
            name, kind = model["name"], model.get("kind", "user")
        except (ValueError, KeyError, TypeError):
            raise HubUnavailable("JupyterHub's answer about a token was not a user") from None
        if not isinstance(name, str) or not name or not isinstance(kind, str):
            raise HubUnavailable("JupyterHub's answer about a token was not a user")
        return HubIdentity(name=name, kind=kind)
