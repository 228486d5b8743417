"""The teams overview of the admin page, shaped from what the cluster, the hub and the service's
records say.

Plain data in, the JSON of ``GET /api/admin/teams`` out: per team its quota (configured, and in
effect with the run-time overrides), the GPUs in use (pods running) and reserved (pods not
running yet), the spawns waiting for GPUs, the servers running; per member their servers with
profile, GPUs, start and last activity, and GPU-hours over 7 and 30 days. Sorting, filtering and
the CSV export work on the same rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from hub_ext.policy.config import MLTeamsConfig, Quota, Team
from hub_ext.policy.ledger import PodSummary
from hub_ext.policy.quantities import describe_cpu, describe_memory
from hub_ext.policy.team_figures import pending_spawns, spawn_queue

USER_SORT_KEYS = ("user", "gpus", "servers", "gpu_hours_7d", "gpu_hours_30d", "last_activity")
CSV_COLUMNS = (
    "team",
    "user",
    "server",
    "profile",
    "gpus",
    "phase",
    "started",
    "last_activity",
    "gpu_hours_7d",
    "gpu_hours_30d",
)


class OverviewError(ValueError):
    """A sort or filter the overview does not know; the message names the choices."""


def describe_time(value: Any) -> str:
    """An ISO time as the pages show it, in UTC to the minute (``2026-12-07 13:00 UTC``); empty
    for none, and the text itself when it is no time."""
    if not value:
        return ""
    text = str(value)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def quota_view(quota: Quota) -> dict[str, Any]:
    """A quota as the pages show it: GPUs as numbers, CPU and memory in words (None: no limit)."""
    return {
        "gpus": quota.gpus,
        "gpus_per_user": quota.gpus_per_user,
        "cpu": None if quota.cpu is None else describe_cpu(quota.cpu),
        "memory": None if quota.memory is None else describe_memory(quota.memory),
    }


def _server_name(pod: PodSummary) -> str:
    if pod.server is None:
        return pod.name
    return pod.server.partition("/")[2]


def _hub_servers(model: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    servers = model.get("servers")
    if not isinstance(servers, Mapping):
        return {}
    return {str(k): v for k, v in servers.items() if isinstance(v, Mapping)}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def member_rows(
    pods: Sequence[PodSummary],
    users: Iterable[Mapping[str, Any]],
    hours: Mapping[str, Mapping[int, float]],
) -> list[dict[str, Any]]:
    """One row per user with a pod, a server the hub knows, or GPU-hours in the team."""
    by_user: dict[str, dict[str, Any]] = {}

    def row(name: str) -> dict[str, Any]:
        if name not in by_user:
            used = hours.get(name, {})
            by_user[name] = {
                "user": name,
                "servers": [],
                "gpus": 0,
                "last_activity": None,
                "gpu_hours_7d": float(used.get(7, 0.0)),
                "gpu_hours_30d": float(used.get(30, 0.0)),
            }
        return by_user[name]

    hub_models = {m["name"]: m for m in users if isinstance(m.get("name"), str)}
    for pod in pods:
        if not pod.active or pod.user is None:
            continue
        server = _server_name(pod)
        hub_server = _hub_servers(hub_models.get(pod.user, {})).get(server, {})
        entry = row(pod.user)
        entry["servers"].append(
            {
                "name": server,
                "pod": pod.name,
                "profile": pod.profile,
                "gpus": pod.gpus,
                "phase": pod.phase,
                "started": _text(hub_server.get("started")),
                "last_activity": _text(hub_server.get("last_activity")),
            }
        )
        entry["gpus"] += pod.gpus
    for name in hours:
        row(name)
    for entry in by_user.values():
        activity = [s["last_activity"] for s in entry["servers"] if s["last_activity"]]
        entry["last_activity"] = max(activity) if activity else None
        entry["servers"].sort(key=lambda server: server["name"])
    return sorted(by_user.values(), key=lambda entry: entry["user"])


def team_overview(
    config: MLTeamsConfig,
    team: Team,
    *,
    quota: Quota,
    override: Mapping[str, Any] | None,
    grants: Sequence[Mapping[str, Any]],
    pods: Sequence[PodSummary] | None,
    users: Sequence[Mapping[str, Any]] | None,
    hours: Mapping[str, Mapping[int, float]],
) -> dict[str, Any]:
    """One team of the overview. ``pods`` is ``None`` when the cluster did not answer, ``users``
    when the hub did not; the answer's ``notes`` then say so and those figures are ``None``."""
    notes = []
    if pods is None:
        notes.append(f"The cluster did not list the pods of namespace {team.namespace}.")
    if users is None:
        notes.append("The hub did not answer: the queue, start times and activity are missing.")
    listed = list(pods or ())
    active = [pod for pod in listed if pod.active]
    running = [pod for pod in active if pod.phase == "Running"]
    pending: list[Any] = []
    for model in users or ():
        pending += pending_spawns(config, team.name, model) or []
    return {
        "team": team.name,
        "display_name": team.display_name,
        "namespace": team.namespace,
        "configured": quota_view(team.quota),
        "quota": quota_view(quota),
        "override": dict(override) if override else None,
        "grants": [dict(grant) for grant in grants],
        "gpus_in_use": None if pods is None else sum(pod.gpus for pod in running),
        "gpus_reserved": (
            None if pods is None else sum(pod.gpus for pod in active if pod.phase != "Running")
        ),
        "servers_running": None if pods is None else len(running),
        "queue": None if users is None else spawn_queue(pending, active),
        "members": member_rows(active, users or (), hours),
        "notes": notes,
    }


def sort_members(
    rows: Sequence[Mapping[str, Any]], key: str = "user", descending: bool = False
) -> list[Mapping[str, Any]]:
    """The member rows sorted by ``key`` (one of ``USER_SORT_KEYS``); ties by user name."""
    if key not in USER_SORT_KEYS:
        raise OverviewError(f"sort must be one of {', '.join(USER_SORT_KEYS)}, got {key!r}")
    if key == "user":
        return sorted(rows, key=lambda row: str(row["user"]), reverse=descending)

    def value(row: Mapping[str, Any]) -> Any:
        found = row.get(key)
        if key == "servers":
            return len(found or ())
        return found if found is not None else ("" if key == "last_activity" else 0)

    by_name = sorted(rows, key=lambda row: str(row["user"]))
    return sorted(by_name, key=value, reverse=descending)


def filter_members(rows: Iterable[Mapping[str, Any]], text: str) -> list[Mapping[str, Any]]:
    """The rows whose user, server or profile contains ``text`` (any case); all when empty."""
    needle = text.strip().lower()
    if not needle:
        return list(rows)

    def matches(row: Mapping[str, Any]) -> bool:
        words = [str(row["user"])]
        for server in row.get("servers") or ():
            words += [str(server.get("name") or ""), str(server.get("profile") or "")]
        return any(needle in word.lower() for word in words)

    return [row for row in rows if matches(row)]


def csv_text(teams: Iterable[Mapping[str, Any]]) -> str:
    """The overview as CSV: one line per server (a member without one gets one line)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for team in teams:
        for member in team["members"]:
            servers = member["servers"] or [{}]
            for server in servers:
                writer.writerow(
                    [
                        _cell(team["team"]),
                        _cell(member["user"]),
                        _cell(server.get("name", "")),
                        _cell(server.get("profile") or ""),
                        server.get("gpus", 0),
                        _cell(server.get("phase", "")),
                        _cell(server.get("started") or ""),
                        _cell(server.get("last_activity") or ""),
                        member["gpu_hours_7d"],
                        member["gpu_hours_30d"],
                    ]
                )
    return out.getvalue()


def _cell(value: str) -> str:
    """A text cell that a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
