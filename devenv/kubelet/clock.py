"""Timestamps in the formats the Kubernetes API uses."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime | None = None) -> str:
    """A ``metav1.Time``: second precision, UTC."""
    return (moment or now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime | None = None) -> str:
    """A ``metav1.MicroTime``: microsecond precision, UTC."""
    return (moment or now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_epoch(seconds: float) -> str:
    return rfc3339(datetime.fromtimestamp(seconds, timezone.utc))
