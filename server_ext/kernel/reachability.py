"""Is the tracking server there? One bounded HTTP request, no MLflow import."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit


def health_url(tracking_uri: str) -> str | None:
    """The server's ``/health`` endpoint, or ``None`` for a non-HTTP tracking URI."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/health"


def probe(tracking_uri: str, timeout: float) -> str | None:
    """``None`` when the server answers, else why not (for the one warning)."""
    url = health_url(tracking_uri)
    if url is None:
        return None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status >= 500:
                return f"it answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            return f"it answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"it did not answer within {timeout:g}s ({reason})"
    return None
