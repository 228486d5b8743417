"""``/mlteams/team/live``: the team's live figures for the side panel, from the ``mlteams``
service.

The request goes on to the service's ``GET /api/teams/<team>`` for this server's team, with the
server's own hub token, and its answer comes back as it is, a refusal (4xx) included. When the
hub gave the server no service, or the service does not answer, the answer is still 200: the
team's limits as the hub gave them to the server at spawn, marked ``source: "spawn"``, with a
note that says why nothing live is shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tornado import web

from server_ext.server.api import team_summary
from server_ext.server.promote_handlers import ServiceDown, ServiceHandler

LIVE_TIMEOUT_SECONDS = 15.0
SPAWN = "spawn"
NOT_SET_UP_NOTE = (
    "Live figures are unavailable (the team service is not set up for this server); these are "
    "your team's limits as they were when your server started."
)
NOT_ANSWERING_NOTE = (
    "Live figures are unavailable (the team service is not answering); these are your team's "
    "limits as they were when your server started."
)
NOT_SET_UP_REASON = "Promotion is not set up for this server: the hub gave it no team service."
NOT_ANSWERING_REASON = "The promotion service is not answering right now; try again in a minute."


def spawn_figures(summary: Mapping[str, Any], note: str, reason: str) -> dict[str, Any]:
    """The team figures from what the hub gave the server at spawn (``api.team_summary``), in
    the shape of the service's answer; what only the service knows is null or empty."""
    quota = summary.get("quota") or {}
    return {
        "team": summary.get("team"),
        "display_name": summary.get("team_display_name") or summary.get("team"),
        "source": SPAWN,
        "note": note,
        "gpus": {
            "limit": quota.get("gpus"),
            "in_use": None,
            "free": None,
            "per_user_limit": quota.get("gpus_per_user"),
            "you_hold": summary.get("gpus"),
            "queue": [],
        },
        "promotion": {
            "available": False,
            "reason": reason,
            "high_stakes": None,
            "approvers": None,
            "gates": [],
        },
    }


class TeamLiveHandler(ServiceHandler):
    """``GET /mlteams/team/live``: the team's GPUs in use and free, the GPUs you hold, the spawn
    queue and the promotion gates, live from the service, or the spawn-time limits."""

    @web.authenticated
    async def get(self) -> None:
        team, _ = self.identity()
        try:
            response = await self.call_service(
                "GET", f"teams/{quote(team, safe='')}", timeout=LIVE_TIMEOUT_SECONDS
            )
        except ServiceDown as exc:
            self.write_json(fallback(set_up=exc.status_code != 409))
            return
        if response.code >= 500:
            self.log.warning("mlteams: the team service answered %s", response.code)
            self.write_json(fallback(set_up=True))
            return
        self.relay(response)


def fallback(*, set_up: bool) -> dict[str, Any]:
    """The spawn-time figures of this server; ``set_up``: the hub gave it a service, which did
    not answer."""
    if set_up:
        return spawn_figures(team_summary(os.environ), NOT_ANSWERING_NOTE, NOT_ANSWERING_REASON)
    return spawn_figures(team_summary(os.environ), NOT_SET_UP_NOTE, NOT_SET_UP_REASON)


def team_live_handlers() -> list[tuple[str, type]]:
    return [(r"/mlteams/team/live", TeamLiveHandler)]
