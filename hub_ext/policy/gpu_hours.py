"""GPU-hours per user over a window, from the service's sampled records of GPU pods.

The ``mlteams`` service notes every GPU pod of the team namespaces when it looks at the cluster
(its uid, team, user, GPUs, when it started, when it was last seen, when it was found gone). A
pod counts from its start to when it was found gone, or to when it was last seen while it runs:
what the service did not see is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HOUR = 3600.0
DAY = 24 * HOUR
WINDOWS_DAYS = (7, 30)


@dataclass(frozen=True)
class GpuSession:
    """One GPU pod's life as the service saw it, times in epoch seconds."""

    team: str
    user: str
    gpus: int
    started_at: float
    last_seen_at: float
    ended_at: float | None = None

    @property
    def end(self) -> float:
        return self.last_seen_at if self.ended_at is None else self.ended_at


def session_hours(session: GpuSession, since: float, until: float) -> float:
    """The GPU-hours of ``session`` inside ``[since, until]``."""
    start = max(session.started_at, since)
    end = min(session.end, until)
    if end <= start or session.gpus <= 0:
        return 0.0
    return session.gpus * (end - start) / HOUR


def gpu_hours(
    sessions: Iterable[GpuSession], *, team: str, now: float, days: int
) -> dict[str, float]:
    """GPU-hours per user of ``team`` over the ``days`` before ``now``, rounded to 0.01."""
    since = now - days * DAY
    totals: dict[str, float] = {}
    for session in sessions:
        if session.team != team:
            continue
        hours = session_hours(session, since, now)
        if hours:
            totals[session.user] = totals.get(session.user, 0.0) + hours
    return {user: round(hours, 2) for user, hours in totals.items()}


def hours_by_window(
    sessions: Iterable[GpuSession], *, team: str, now: float
) -> dict[str, Mapping[int, float]]:
    """Per user of ``team``: GPU-hours over each of ``WINDOWS_DAYS``."""
    listed = list(sessions)
    windows = {days: gpu_hours(listed, team=team, now=now, days=days) for days in WINDOWS_DAYS}
    users = sorted({user for totals in windows.values() for user in totals})
    return {user: {days: windows[days].get(user, 0.0) for days in WINDOWS_DAYS} for user in users}
