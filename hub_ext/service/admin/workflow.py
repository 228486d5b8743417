"""The admin pages' reads and actions, each checked against the viewer and written to the audit.

Hub data is read and servers are stopped with the viewer's own token (``viewer_hub``), so the hub
applies its own filters too; the service's database holds overrides, requests and the audit; the
cluster gives the pods and takes the ResourceQuotas. Who may do what is the policy's
(``hub_ext.policy.admin_access``, ``hub_ext.policy.overrides``); this module only connects.

An action is stored together with its audit entry in one transaction, before anything is
reported done; a ResourceQuota that could not follow is said in the answer and logged, and is
put right by the next change or the next start of the service.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from tornado.log import app_log

from hub_ext.policy.admin_access import (
    AccessRefused,
    Viewer,
    require_admin,
    require_team,
    visible_teams,
)
from hub_ext.policy.admin_forms import (
    DecisionInput,
    FormError,
    GrantInput,
    QuotaRequestInput,
    TeamOverrideInput,
)
from hub_ext.policy.admin_overview import team_overview
from hub_ext.policy.config import MLTeamsSection, Quota
from hub_ext.policy.gpu_hours import WINDOWS_DAYS, GpuSession, hours_by_window
from hub_ext.policy.ledger import Ledger, PodSummary
from hub_ext.policy.membership import user_teams
from hub_ext.policy.overrides import (
    ActiveOverrides,
    OverrideRefused,
    check_grant,
    check_team_override,
)
from hub_ext.policy.validation import excerpt
from hub_ext.service.admin.cluster import AdminCluster
from hub_ext.service.hub_api import HubAPI, HubRefused
from hub_ext.service.store import OverrideRow, QuotaRequestRow, Store
from hub_ext.service.store.overrides import (
    active_from_rows,
    apply_to,
    override_change,
    override_view,
    team_quotas,
)

DAY = 86400.0
SUMMARIES_KEPT = 50_000
LEAD_GRANT_LIMIT = 2


class AdminError(Exception):
    """An admin action that cannot be done; ``http_status`` and a message for a person."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message


def _now_dt(now: float) -> datetime:
    return datetime.fromtimestamp(now, timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def request_view(row: QuotaRequestRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "team": row.team,
        "user": row.user,
        "gpus": row.gpus,
        "minutes": row.minutes,
        "reason": row.reason,
        "state": row.state,
        "created_at": _iso(row.created_at),
        "decided_at": _iso(row.decided_at),
        "decided_by": row.decided_by,
        "comment": row.comment,
        "override_id": row.override_id,
    }


def _quota_numbers(quota: Quota) -> dict[str, Any]:
    return {
        "gpus": quota.gpus,
        "gpus_per_user": quota.gpus_per_user,
        "cpu": quota.cpu,
        "memory": quota.memory,
    }


@dataclass
class AdminWorkflow:
    config: MLTeamsSection
    store: Store
    cluster: AdminCluster
    lead_grant_limit: int = LEAD_GRANT_LIMIT
    clock: Callable[[], float] = time.time
    _quota_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _summaries: dict[tuple[Any, Any], PodSummary] = field(default_factory=dict)

    # -- reading --------------------------------------------------------------------------------

    async def _in_thread(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(call, *args, **kwargs)

    async def active(self, now: float) -> tuple[ActiveOverrides, list[OverrideRow]]:
        rows = await self._in_thread(self.store.overrides, active_at=_now_dt(now))
        return active_from_rows(rows, now), rows

    async def overview(self, viewer: Viewer, viewer_hub: HubAPI) -> list[dict[str, Any]]:
        """The teams the viewer sees, with their quotas, use, queue and members."""
        teams = visible_teams(viewer, sorted(self.config.teams))
        now = self.clock()
        (active, rows), pods_by_ns, users = await asyncio.gather(
            self.active(now),
            self.cluster.pods(self.config.teams[name].namespace for name in teams),
            self._hub_users(viewer_hub),
        )
        # the GPU-hours come from the periodic sampling (``sample``): a page view writes nothing
        sessions = await self._sessions(now)
        by_team: dict[str, list[GpuSession]] = {}
        for session in sessions:
            by_team.setdefault(session.team, []).append(session)
        ledger = Ledger(namespace_teams=self.config.namespace_teams)
        apply_to(ledger, active)
        by_groups: dict[tuple[str, ...], frozenset[str]] = {}  # users share their groups
        teams_of = {id(model): self._teams_of(model, by_groups) for model in users or ()}
        out = []
        for name in teams:
            team = self.config.teams[name]
            raw_pods = pods_by_ns.get(team.namespace)
            pods = (
                None
                if raw_pods is None
                else [self._summary(p) for p in raw_pods if isinstance(p, Mapping)]
            )
            pods = None if pods is None else [self._with_team(p, name) for p in pods]
            members = None if users is None else [u for u in users if name in teams_of[id(u)]]
            team_rows = [row for row in rows if row.team == name]
            whole = next((row for row in team_rows if row.user is None), None)
            out.append(
                team_overview(
                    self.config,
                    team,
                    quota=ledger.effective_quota(team),
                    override=None if whole is None else override_view(whole),
                    grants=[override_view(row) for row in team_rows if row.user is not None],
                    pods=pods,
                    users=members,
                    hours=hours_by_window(by_team.get(name, ()), team=name, now=now),
                )
            )
        return out

    def _summary(self, manifest: Mapping[str, Any]) -> PodSummary:
        """A pod's summary, made once per version of the pod (the pods come from memory, and
        most have not changed since the last page view)."""
        metadata = manifest.get("metadata") or {}
        key = (metadata.get("uid"), metadata.get("resourceVersion"))
        if key[0] is None or key[1] is None:
            return PodSummary.from_manifest(manifest)
        found = self._summaries.get(key)
        if found is None:
            if len(self._summaries) > SUMMARIES_KEPT:
                self._summaries.clear()
            found = self._summaries[key] = PodSummary.from_manifest(manifest)
        return found

    @staticmethod
    def _with_team(pod: PodSummary, team: str) -> PodSummary:
        return pod if pod.team is not None else replace(pod, team=team)

    def _teams_of(
        self, model: Mapping[str, Any], known: dict[tuple[str, ...], frozenset[str]]
    ) -> frozenset[str]:
        """The teams a hub user is in, from their hub groups (worked out once per set of groups
        in a request: ``known``)."""
        groups = model.get("groups")
        if not isinstance(groups, list):
            return frozenset()
        key = tuple(sorted(group for group in groups if isinstance(group, str)))
        if key not in known:
            known[key] = frozenset(m.name for m in user_teams(self.config, list(key)))
        return known[key]

    async def _hub_users(self, viewer_hub: HubAPI) -> list[dict[str, Any]] | None:
        """The users with servers running or starting, as the viewer may see them."""
        try:
            return await viewer_hub.list_all("users?state=active&include_stopped_servers=0")
        except Exception as exc:  # the hub's trouble leaves the cluster's figures standing
            app_log.warning("mlteams admin: the hub did not list users: %s", exc)
            return None

    async def _record_sessions(
        self, pods_by_ns: Mapping[str, list[dict[str, Any]] | None], now: float
    ) -> None:
        if any(pods is None for pods in pods_by_ns.values()):
            return  # a namespace not listed must not end its sessions
        if set(pods_by_ns) != {team.namespace for team in self.config.teams.values()}:
            return  # only a look at every team's pods can tell which sessions ended
        seen = []
        for namespace, pods in pods_by_ns.items():
            team = self.config.namespace_teams.get(namespace)
            for manifest in pods or ():
                summary = PodSummary.from_manifest(manifest)
                uid = (manifest.get("metadata") or {}).get("uid")
                start = (manifest.get("status") or {}).get("startTime")
                if not summary.gpus or summary.phase != "Running" or not uid or not start:
                    continue
                seen.append(
                    {
                        "pod_uid": uid,
                        "team": summary.team or team,
                        "user": summary.user or "",
                        "server": summary.server or summary.name,
                        "gpus": summary.gpus,
                        "started_at": datetime.fromisoformat(start.replace("Z", "+00:00")),
                    }
                )
        try:
            await self._in_thread(self.store.record_sessions, seen, now=_now_dt(now))
        except Exception as exc:
            app_log.warning("mlteams admin: could not record GPU sessions: %s", exc)

    async def sample(self) -> None:
        """Look at every team's pods once, to keep the GPU-hour records going."""
        now = self.clock()
        pods = await self.cluster.pods(t.namespace for t in self.config.teams.values())
        await self._record_sessions(pods, now)

    async def _sessions(self, now: float) -> list[GpuSession]:
        since = _now_dt(now - max(WINDOWS_DAYS) * DAY)
        rows = await self._in_thread(self.store.gpu_sessions, since=since)
        return [
            GpuSession(
                team=row.team,
                user=row.user,
                gpus=row.gpus,
                started_at=row.started_at.timestamp(),
                last_seen_at=row.last_seen_at.timestamp(),
                ended_at=None if row.ended_at is None else row.ended_at.timestamp(),
            )
            for row in rows
        ]

    async def overrides(self, viewer: Viewer, team: str | None = None) -> list[dict[str, Any]]:
        """The overrides in effect of the teams the viewer sees."""
        if team is not None:
            self._team(team)
            require_team(viewer, team)
        _, rows = await self.active(self.clock())
        return [
            override_view(row)
            for row in rows
            if viewer.sees(row.team) and (team is None or row.team == team)
        ]

    async def audit(
        self, viewer: Viewer, filters: Mapping[str, str | None], limit: int = 200
    ) -> list[dict[str, Any]]:
        """The audit of the teams the viewer sees, newest first."""
        team = filters.get("team")
        if team:
            self._team(team)
            require_team(viewer, team)
        wanted = {k: v for k, v in filters.items() if v and k in ("team", "actor", "action")}
        rows = await self._in_thread(self.store.audit, limit=limit * 4, **wanted)
        out = []
        for row in rows:
            if not viewer.sees(row.team):
                continue
            out.append(
                {
                    "id": row.id,
                    "at": _iso(row.at),
                    "actor": row.actor,
                    "action": row.action,
                    "team": row.team,
                    "model": row.model or None,
                    "subject": row.subject,
                    "before": row.before,
                    "after": row.after,
                    "reason": row.reason or row.detail,
                    "outcome": row.outcome,
                    "promotion_id": row.promotion_id,
                }
            )
            if len(out) >= limit:
                break
        return out

    async def requests(self, viewer: Viewer, state: str | None = "pending") -> list[dict[str, Any]]:
        rows = await self._in_thread(self.store.quota_requests, state=state)
        return [request_view(row) for row in rows if viewer.sees(row.team)]

    async def my_requests(self, user: str) -> list[dict[str, Any]]:
        rows = await self._in_thread(self.store.quota_requests, user=user)
        return [request_view(row) for row in rows]

    async def own_quota(self, team: Any, user: str) -> tuple[int, list[dict[str, Any]]]:
        """A member's GPUs-per-user cap in effect in ``team`` (with their grants) and their quota
        requests there, newest first (at most five)."""
        active, _ = await self.active(self.clock())
        ledger = Ledger(namespace_teams=self.config.namespace_teams)
        apply_to(ledger, active)
        rows = await self._in_thread(self.store.quota_requests, team=team.name, user=user, limit=5)
        return ledger.effective_quota(team, user).gpus_per_user, [request_view(r) for r in rows]

    async def withdraw_request(self, user: str, request_id: str) -> dict[str, Any]:
        """The requester takes back their own pending request."""
        row = await self._in_thread(self.store.quota_request, request_id)
        if row is None or row.user != user:
            raise AdminError(404, "You have no such quota request.")
        now = self.clock()

        def store_it() -> QuotaRequestRow | None:
            with self.store.in_transaction():
                done = self.store.decide_quota_request(
                    request_id,
                    from_state="pending",
                    to_state="withdrawn",
                    decided_at=_now_dt(now),
                    decided_by=user,
                )
                if done is not None:
                    self._audit(
                        actor=user,
                        action="quota-request-withdrawn",
                        team=row.team,
                        now=now,
                        subject=user,
                        before={"state": "pending"},
                        after={"state": "withdrawn"},
                    )
                return done

        done = await self._in_thread(store_it)
        if done is None:
            raise AdminError(409, f"That request was already {row.state}; it cannot be withdrawn.")
        return request_view(done)

    # -- actions --------------------------------------------------------------------------------

    def _team(self, name: str) -> Any:
        team = self.config.teams.get(name)
        if team is None:
            raise AdminError(404, f"There is no team {excerpt(name)}.")
        return team

    def _audit(
        self,
        *,
        actor: str,
        action: str,
        team: str,
        now: float,
        subject: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
        outcome: str = "done",
    ) -> None:
        self.store.append_audit(
            at=_now_dt(now),
            actor=actor,
            action=action,
            team=team,
            model="",
            subject=subject,
            before=before,
            after=after,
            reason=reason,
            outcome=outcome,
        )

    async def stop_server(
        self,
        viewer: Viewer,
        viewer_hub: HubAPI,
        *,
        team: str,
        user: str,
        server: str,
        reason: str,
    ) -> dict[str, Any]:
        """Stop one server of ``team`` (its pod must be in the team's namespace)."""
        found = self._team(team)
        require_team(viewer, team)
        pods = (await self.cluster.pods([found.namespace], fresh=True)).get(found.namespace)
        if pods is None:
            raise AdminError(503, "The cluster did not answer; try again in a minute.")
        key = f"{user}/{server}"
        held = [
            p for p in (PodSummary.from_manifest(m) for m in pods) if p.server == key and p.active
        ]
        if not held:
            raise AdminError(
                404,
                f"{excerpt(user)} has no running server {excerpt(server) or '(default)'} in "
                f"team {team}.",
            )
        path = f"users/{quote(user, safe='')}/" + (
            f"servers/{quote(server, safe='')}" if server else "server"
        )
        try:
            await viewer_hub.request("DELETE", path)
        except HubRefused as exc:
            if exc.status == 403:
                raise AdminError(403, "The hub does not let you stop this server.") from None
            if exc.status == 400 and "not running" in exc.message.lower():
                raise AdminError(409, "That server has already stopped.") from None
            raise AdminError(exc.status, f"The hub refused: {exc.message}") from None
        now = self.clock()
        gpus = sum(p.gpus for p in held)
        await self._in_thread(
            self._audit,
            actor=viewer.name,
            action="server-stopped",
            team=team,
            now=now,
            subject=key,
            before={"running": True, "gpus": gpus},
            after={"running": False},
            reason=reason,
        )
        return {"team": team, "user": user, "server": server, "stopped": True}

    async def set_team_override(
        self, viewer: Viewer, team_name: str, form: TeamOverrideInput
    ) -> dict[str, Any]:
        team = self._team(team_name)
        require_team(viewer, team_name)
        now = self.clock()
        active, _ = await self.active(now)
        ledger = Ledger(namespace_teams=self.config.namespace_teams)
        apply_to(ledger, active)
        current = ledger.effective_quota(team)
        try:
            check_team_override(
                team=team, current=current, change=form.change, by_admin=viewer.admin
            )
        except OverrideRefused as exc:
            raise AdminError(exc.http_status, exc.message) from None
        values = {
            "id": uuid.uuid4().hex,
            "team": team_name,
            "user": None,
            **{k: v for k, v in form.change.model_dump().items() if k in _TEAM_FIELDS},
            "reason": form.reason,
            "created_at": _now_dt(now),
            "created_by": viewer.name,
            "expires_at": None if form.expires_at is None else _now_dt(form.expires_at),
        }

        def store_it() -> tuple[OverrideRow | None, OverrideRow]:
            with self.store.in_transaction():
                previous, row = self.store.replace_team_override(
                    team=team_name, values=values, now=_now_dt(now), actor=viewer.name
                )
                after_active = active_from_rows(self.store.overrides(active_at=_now_dt(now)), now)
                self._audit(
                    actor=viewer.name,
                    action="quota-override",
                    team=team_name,
                    now=now,
                    before=_quota_numbers(current),
                    after={
                        **_quota_numbers(team_quotas(self.config, after_active)[team_name]),
                        "expires_at": _iso(row.expires_at),
                    },
                    reason=form.reason,
                )
                return previous, row

        _, row = await self._in_thread(store_it)
        problems = await self.sync_quotas({team_name})
        return {"override": override_view(row), "quota_problems": problems}

    async def grant(self, viewer: Viewer, team_name: str, form: GrantInput) -> dict[str, Any]:
        team = self._team(team_name)
        require_team(viewer, team_name)
        try:
            check_grant(
                team=team,
                user=form.user,
                extra_gpus=form.extra_gpus,
                by_admin=viewer.admin,
                lead_limit=self.lead_grant_limit,
            )
        except OverrideRefused as exc:
            raise AdminError(exc.http_status, exc.message) from None
        row = await self._in_thread(
            self._store_grant,
            actor=viewer.name,
            team=team_name,
            user=form.user,
            extra_gpus=form.extra_gpus,
            expires_at=form.expires_at,
            reason=form.reason,
        )
        problems = await self.sync_quotas({team_name})
        return {"override": override_view(row), "quota_problems": problems}

    def _store_grant(
        self,
        *,
        actor: str,
        team: str,
        user: str,
        extra_gpus: int,
        expires_at: float | None,
        reason: str,
        request_id: str | None = None,
    ) -> OverrideRow:
        now = self.clock()
        with self.store.in_transaction():
            row = self.store.add_override(
                id=uuid.uuid4().hex,
                team=team,
                user=user,
                extra_gpus=extra_gpus,
                reason=reason,
                created_at=_now_dt(now),
                created_by=actor,
                expires_at=None if expires_at is None else _now_dt(expires_at),
                request_id=request_id,
            )
            self._audit(
                actor=actor,
                action="quota-grant",
                team=team,
                now=now,
                subject=user,
                before=None,
                after={"extra_gpus": extra_gpus, "expires_at": _iso(row.expires_at)},
                reason=reason,
            )
        return row

    async def revoke(self, viewer: Viewer, override_id: str, reason: str) -> dict[str, Any]:
        row = await self._in_thread(self.store.override, override_id)
        if row is None or not viewer.sees(row.team):
            raise AdminError(404, "There is no such override.")
        if row.user is None or row.gpus is not None or row.gpus_per_user is not None:
            require_admin(viewer, "end a team's quota override")
        now = self.clock()

        def store_it() -> OverrideRow | None:
            with self.store.in_transaction():
                revoked = self.store.revoke_override(override_id, by=viewer.name, now=_now_dt(now))
                if revoked is not None:
                    self._audit(
                        actor=viewer.name,
                        action="override-revoked",
                        team=row.team,
                        now=now,
                        subject=row.user,
                        before=override_change(row),
                        after=None,
                        reason=reason,
                    )
                return revoked

        revoked = await self._in_thread(store_it)
        if revoked is None:
            raise AdminError(409, "That override has already ended.")
        problems = await self.sync_quotas({row.team})
        return {"override": override_view(revoked), "quota_problems": problems}

    async def request_quota(
        self, user: str, groups: Sequence[str], form: QuotaRequestInput
    ) -> dict[str, Any]:
        """A member asks for more GPUs for a while; the team's leads decide."""
        team = self._team(form.team)
        if team.name not in {m.name for m in user_teams(self.config, groups)}:
            raise AdminError(403, f"You are not a member of team {team.name}.")
        now = self.clock()
        pending = await self._in_thread(
            self.store.quota_requests, team=team.name, user=user, state="pending"
        )
        if pending:
            raise AdminError(
                409,
                f"You already have a request pending in team {team.name}; wait for its "
                "decision or withdraw it.",
            )

        def store_it() -> QuotaRequestRow:
            with self.store.in_transaction():
                row = self.store.add_quota_request(
                    id=uuid.uuid4().hex,
                    team=team.name,
                    user=user,
                    gpus=form.gpus,
                    minutes=form.minutes,
                    reason=form.reason,
                    state="pending",
                    created_at=_now_dt(now),
                )
                self._audit(
                    actor=user,
                    action="quota-requested",
                    team=team.name,
                    now=now,
                    subject=user,
                    after={"gpus": form.gpus, "minutes": form.minutes},
                    reason=form.reason,
                    outcome="pending",
                )
                return row

        row = await self._in_thread(store_it)
        return request_view(row)

    async def decide_request(
        self, viewer: Viewer, request_id: str, decision: DecisionInput
    ) -> dict[str, Any]:
        row = await self._in_thread(self.store.quota_request, request_id)
        if row is None or not viewer.sees(row.team):
            raise AdminError(404, "There is no such quota request.")
        if row.user == viewer.name:
            raise AccessRefused(
                "You cannot decide your own quota request; another lead or a platform admin must."
            )
        if row.state != "pending":
            raise AdminError(409, f"That request was already {row.state}.")
        team = self._team(row.team)
        if decision.approve:
            try:
                check_grant(
                    team=team,
                    user=row.user,
                    extra_gpus=row.gpus,
                    by_admin=viewer.admin,
                    lead_limit=self.lead_grant_limit,
                )
            except OverrideRefused as exc:
                raise AdminError(exc.http_status, exc.message) from None
        now = self.clock()

        def store_it() -> QuotaRequestRow | None:
            with self.store.in_transaction():
                override_id = None
                if decision.approve:
                    override = self._store_grant(
                        actor=viewer.name,
                        team=row.team,
                        user=row.user,
                        extra_gpus=row.gpus,
                        expires_at=now + row.minutes * 60.0,
                        reason=f"quota request {row.id}: {row.reason}",
                        request_id=row.id,
                    )
                    override_id = override.id
                decided = self.store.decide_quota_request(
                    request_id,
                    from_state="pending",
                    to_state="approved" if decision.approve else "rejected",
                    decided_at=_now_dt(now),
                    decided_by=viewer.name,
                    comment=decision.comment,
                    override_id=override_id,
                )
                if decided is None:
                    raise _Raced()
                self._audit(
                    actor=viewer.name,
                    action="quota-request-approved"
                    if decision.approve
                    else "quota-request-rejected",
                    team=row.team,
                    now=now,
                    subject=row.user,
                    before={"state": "pending", "gpus": row.gpus, "minutes": row.minutes},
                    after={"state": decided.state},
                    reason=decision.comment or None,
                )
                return decided

        try:
            decided = await self._in_thread(store_it)
        except _Raced:
            raise AdminError(409, "Someone else decided that request first.") from None
        problems = await self.sync_quotas({row.team}) if decision.approve else []
        return {"request": request_view(decided), "quota_problems": problems}

    async def sync_quotas(self, teams: Iterable[str] | None = None) -> list[str]:
        """Bring the ResourceQuotas of ``teams`` (default: every team) to their quota in effect
        now, when the hub provisions the teams; the problems, logged too."""
        async with self._quota_lock:
            active, _ = await self.active(self.clock())
            quotas = team_quotas(self.config, active)
            wanted = set(quotas) if teams is None else set(teams)
            problems = await self.cluster.apply_quotas(
                self.config, {name: quota for name, quota in quotas.items() if name in wanted}
            )
        for problem in problems:
            app_log.error("mlteams admin: ResourceQuota not updated: %s", problem)
        return problems

    async def expire_due(self, last: Mapping[str, OverrideRow] | None) -> dict[str, OverrideRow]:
        """Called periodically with what was in effect at the previous call (``None`` at the
        service's start): each override that has reached its expiry since is written to the
        audit, and the ResourceQuotas of the teams whose overrides changed follow (every team's
        at start, whatever happened while the service was down). Returns what is in effect now."""
        now = self.clock()
        _, rows = await self.active(now)
        current = {row.id: row for row in rows}
        if last is None:
            await self.sync_quotas()
            return current
        expired = [
            row
            for key, row in last.items()
            if key not in current
            and row.expires_at is not None
            and row.expires_at.timestamp() <= now
        ]
        for row in expired:
            await self._in_thread(
                self._audit,
                actor="mlteams-service",
                action="override-expired",
                team=row.team,
                now=now,
                subject=row.user,
                before=override_change(row),
                after=None,
                reason="reached its expiry",
            )
        changed = {
            row.team
            for key, row in {**last, **current}.items()
            if (key in last) != (key in current)
        }
        if changed:
            await self.sync_quotas(changed)
        return current


_TEAM_FIELDS = ("gpus", "gpus_per_user", "cpu", "memory")


class _Raced(Exception):
    """Another decision was stored first."""


def refusal(exc: Exception) -> tuple[int, str] | None:
    """The status and message of an error the admin API answers with; ``None`` for others."""
    if isinstance(exc, AdminError | OverrideRefused):
        return exc.http_status, exc.message
    if isinstance(exc, AccessRefused):
        return exc.http_status, exc.message
    if isinstance(exc, FormError):
        return 400, exc.message
    return None
