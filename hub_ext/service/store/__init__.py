"""The ``mlteams`` service's state: promotions, governed models, the append-only audit, quota
overrides and requests, and the GPU sessions it has seen.

SQLAlchemy Core over any database it speaks (sqlite on the hub's volume by default, PostgreSQL in
production); the schema is made by alembic migrations shipped here (``migrations/``), applied by
``Store.migrate`` at every start. The audit has no update or delete here, and database triggers
refuse both. Calls are synchronous: the service runs them in a thread.

Rows come back as frozen dataclasses, never as live database objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, insert, or_, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as DBInterfaceError
from sqlalchemy.pool import NullPool

from hub_ext.service.store.tables import (
    audit,
    governed_models,
    gpu_sessions,
    promotions,
    quota_overrides,
    quota_requests,
)

__all__ = [
    "AuditRow",
    "GovernedModelRow",
    "GpuSessionRow",
    "NameTaken",
    "OverrideRow",
    "PromotionRow",
    "QuotaRequestRow",
    "Store",
    "StoreUnavailable",
]


class StoreUnavailable(Exception):
    """The database did not answer (the service answers 503)."""


class NameTaken(Exception):
    """A governed model of that team and name, or that registered name, exists already."""


@dataclass(frozen=True)
class GovernedModelRow:
    name: str
    team: str
    model: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class PromotionRow:
    id: str
    team: str
    model: str
    governed_name: str
    requester: str
    run_id: str
    artifact_path: str
    state: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    version: int | None = None
    previous_version: int | None = None
    gate_results: list[dict[str, Any]] | None = None
    measured: dict[str, float] | None = None
    facts: dict[str, Any] | None = None
    human: dict[str, str] | None = None
    card: str | None = None
    card_sha256: str | None = None
    artifact_sha256: str | None = None
    frozen_uri: str | None = None
    approver: str | None = None
    decision_comment: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    team: str
    model: str
    outcome: str
    promotion_id: str | None = None
    from_version: int | None = None
    to_version: int | None = None
    gate_results: list[dict[str, Any]] | None = None
    approver: str | None = None
    card_sha256: str | None = None
    artifact_sha256: str | None = None
    detail: str | None = None
    subject: str | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None


@dataclass(frozen=True)
class OverrideRow:
    """A team's quota changed for a while (``user`` None), or a user's extra GPUs."""

    id: str
    team: str
    reason: str
    created_at: datetime
    created_by: str
    user: str | None = None
    gpus: int | None = None
    gpus_per_user: int | None = None
    cpu: int | None = None
    memory: int | None = None
    extra_gpus: int | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    request_id: str | None = None

    def active_at(self, when: datetime) -> bool:
        """Made by ``when``, and neither revoked nor expired then (``Store.overrides``'s test)."""
        return (
            self.created_at <= when
            and (self.revoked_at is None or self.revoked_at > when)
            and (self.expires_at is None or self.expires_at > when)
        )


@dataclass(frozen=True)
class QuotaRequestRow:
    id: str
    team: str
    user: str
    gpus: int
    minutes: int
    reason: str
    state: str
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    comment: str | None = None
    override_id: str | None = None


@dataclass(frozen=True)
class GpuSessionRow:
    pod_uid: str
    team: str
    user: str
    server: str
    gpus: int
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None


def _aware(value: Any) -> Any:
    """sqlite gives datetimes back without their zone; they were written in UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _row(kind: type[Any], mapping: Any) -> Any:
    names = {f.name for f in fields(kind)}
    return kind(**{key: _aware(value) for key, value in mapping.items() if key in names})


def _checked(table: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(table.columns.keys()))
    if unknown:
        raise TypeError(f"{table.name} has no column {', '.join(unknown)}")
    return dict(values)


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """``values`` a few at a time, so that no statement binds thousands of parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


UNAVAILABLE = (OperationalError, DBInterfaceError)


class Store:
    """The service's database at ``url`` (any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, **_engine_options(url))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._local = threading.local()

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision``, the newest by default (nothing to do when it is
        there)."""
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("hub_ext.service.store") / "migrations")
        )
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # two services starting at once migrate one after the other
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7102026)")
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(str(exc.orig)) from None

    # -- connections and transactions -------------------------------------------------------------

    @contextmanager
    def in_transaction(self) -> Iterator[None]:
        """Everything the store writes inside happens together, or not at all."""
        if getattr(self._local, "connection", None) is not None:
            yield
            return
        try:
            with self.engine.begin() as connection:
                self._local.connection = connection
                try:
                    yield
                finally:
                    self._local.connection = None
        except UNAVAILABLE as exc:
            raise StoreUnavailable(str(exc.orig)) from None

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        current = getattr(self._local, "connection", None)
        if current is not None:
            yield current
            return
        try:
            with self.engine.begin() as connection:
                yield connection
        except UNAVAILABLE as exc:
            raise StoreUnavailable(str(exc.orig)) from None

    # -- governed models --------------------------------------------------------------------------

    def add_governed_model(self, **values: Any) -> GovernedModelRow:
        row = _checked(governed_models, values)
        try:
            with self._connection() as connection:
                connection.execute(insert(governed_models).values(**row))
        except IntegrityError:
            raise NameTaken(
                f"governed model {values.get('name')!r} of team {values.get('team')!r} exists"
            ) from None
        return _row(GovernedModelRow, row)

    def governed_model(self, team: str, model: str) -> GovernedModelRow | None:
        query = select(governed_models).where(
            governed_models.c.team == team, governed_models.c.model == model
        )
        with self._connection() as connection:
            found = connection.execute(query).mappings().first()
        return None if found is None else _row(GovernedModelRow, found)

    def governed_models(self, team: str) -> list[GovernedModelRow]:
        """The team's governed models, by model name."""
        query = (
            select(governed_models)
            .where(governed_models.c.team == team)
            .order_by(governed_models.c.model)
        )
        with self._connection() as connection:
            found = connection.execute(query).mappings().all()
        return [_row(GovernedModelRow, row) for row in found]

    # -- promotions -------------------------------------------------------------------------------

    def add_promotion(self, **values: Any) -> PromotionRow:
        row = _checked(promotions, values)
        with self._connection() as connection:
            connection.execute(insert(promotions).values(**row))
        created = self.promotion(row["id"])
        assert created is not None
        return created

    def promotion(self, promotion_id: str) -> PromotionRow | None:
        query = select(promotions).where(promotions.c.id == promotion_id)
        with self._connection() as connection:
            found = connection.execute(query).mappings().first()
        return None if found is None else _row(PromotionRow, found)

    def promotions(
        self,
        team: str | None = None,
        model: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[PromotionRow]:
        """Newest first."""
        query = select(promotions)
        for column, value in (("team", team), ("model", model), ("state", state)):
            if value is not None:
                query = query.where(promotions.c[column] == value)
        query = query.order_by(promotions.c.created_at.desc(), promotions.c.id).limit(limit)
        with self._connection() as connection:
            return [_row(PromotionRow, m) for m in connection.execute(query).mappings()]

    def transition(
        self, promotion_id: str, *, from_states: set[str], to_state: str, **values: Any
    ) -> PromotionRow | None:
        """Move a promotion from one of ``from_states`` to ``to_state`` (with ``values``) in one
        statement; ``None`` when it was in none of them (someone else moved it first)."""
        changes = _checked(promotions, {**values, "state": to_state})
        statement = (
            update(promotions)
            .where(promotions.c.id == promotion_id, promotions.c.state.in_(sorted(from_states)))
            .values(**changes)
        )
        with self._connection() as connection:
            moved = connection.execute(statement).rowcount
        return self.promotion(promotion_id) if moved == 1 else None

    # -- audit ------------------------------------------------------------------------------------

    def append_audit(self, **values: Any) -> AuditRow:
        row = _checked(audit, values)
        row.setdefault("at", datetime.now(timezone.utc))
        with self._connection() as connection:
            result = connection.execute(insert(audit).values(**row))
            key = result.inserted_primary_key
        return _row(AuditRow, {**row, "id": key[0] if key else 0})

    def audit(
        self,
        team: str | None = None,
        model: str | None = None,
        promotion_id: str | None = None,
        limit: int = 200,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        before_id: int | None = None,
    ) -> list[AuditRow]:
        """Newest first; with ``before_id``, only the entries older than that one (the next page
        after an entry of that id)."""
        query = select(audit)
        for column, value in (
            ("team", team),
            ("model", model),
            ("promotion_id", promotion_id),
            ("actor", actor),
            ("action", action),
            ("subject", subject),
        ):
            if value is not None:
                query = query.where(audit.c[column] == value)
        if before_id is not None:
            query = query.where(audit.c.id < before_id)
        query = query.order_by(audit.c.id.desc()).limit(limit)
        with self._connection() as connection:
            return [_row(AuditRow, m) for m in connection.execute(query).mappings()]

    # -- quota overrides --------------------------------------------------------------------------

    def add_override(self, **values: Any) -> OverrideRow:
        row = _checked(quota_overrides, values)
        with self._connection() as connection:
            connection.execute(insert(quota_overrides).values(**row))
        created = self.override(row["id"])
        assert created is not None
        return created

    def override(self, override_id: str) -> OverrideRow | None:
        query = select(quota_overrides).where(quota_overrides.c.id == override_id)
        with self._connection() as connection:
            found = connection.execute(query).mappings().first()
        return None if found is None else _row(OverrideRow, found)

    def overrides(
        self,
        *,
        active_at: datetime | None = None,
        team: str | None = None,
        user: str | None = None,
        limit: int = 500,
    ) -> list[OverrideRow]:
        """Newest first; with ``active_at``, only those active at that time: made by then, and
        neither revoked nor expired then (an override revoked since was active before)."""
        query = select(quota_overrides)
        for column, value in (("team", team), ("user", user)):
            if value is not None:
                query = query.where(quota_overrides.c[column] == value)
        if active_at is not None:
            query = query.where(*_active_at(active_at))
        query = query.order_by(quota_overrides.c.created_at.desc(), quota_overrides.c.id)
        with self._connection() as connection:
            found = connection.execute(query.limit(limit)).mappings()
            return [_row(OverrideRow, m) for m in found]

    def replace_team_override(
        self, *, team: str, values: Mapping[str, Any], now: datetime, actor: str
    ) -> tuple[OverrideRow | None, OverrideRow]:
        """Revoke the team's active whole-team override (by ``actor``, at ``now``) and add the one
        of ``values`` in its place, together: afterwards the new one is the only one active.
        Returns the one replaced, as revoked (None when there was none), and the new one.

        Two admins replacing at once leave one active too: on PostgreSQL the second waits for
        the first; on sqlite the second revokes the first's, though it may name an older one as
        the one it replaced."""
        if values.get("user") is not None:
            raise ValueError("a team's override is for no one user")
        row = _checked(quota_overrides, {**values, "team": team, "user": None})
        current = (
            quota_overrides.c.team == team,
            quota_overrides.c.user.is_(None),
            quota_overrides.c.revoked_at.is_(None),
            or_(quota_overrides.c.expires_at.is_(None), quota_overrides.c.expires_at > now),
        )
        with self.in_transaction(), self._connection() as connection:
            if connection.dialect.name == "postgresql":
                # two admins replacing at once: the second waits, then sees the first's (a key of
                # two numbers, apart from the one number Store.migrate locks)
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(7102026, hashtext(:team))"), {"team": team}
                )
            query = (
                select(quota_overrides)
                .where(*current)
                .order_by(quota_overrides.c.created_at.desc(), quota_overrides.c.id)
            )
            found = connection.execute(query).mappings().first()
            previous = None if found is None else _row(OverrideRow, found)
            # every active one, not only the one read: none is left active beside the new one
            connection.execute(
                update(quota_overrides).where(*current).values(revoked_at=now, revoked_by=actor)
            )
            connection.execute(insert(quota_overrides).values(**row))
            created = self.override(row["id"])
            if previous is not None:
                previous = self.override(previous.id)
        assert created is not None
        return previous, created

    def revoke_override(self, override_id: str, *, by: str, now: datetime) -> OverrideRow | None:
        """Revoke it; None when it was revoked already (by someone else first) or is not there."""
        statement = (
            update(quota_overrides)
            .where(quota_overrides.c.id == override_id, quota_overrides.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by)
        )
        with self._connection() as connection:
            revoked = connection.execute(statement).rowcount
        return self.override(override_id) if revoked == 1 else None

    # -- quota requests ---------------------------------------------------------------------------

    def add_quota_request(self, **values: Any) -> QuotaRequestRow:
        row = _checked(quota_requests, values)
        with self._connection() as connection:
            connection.execute(insert(quota_requests).values(**row))
        created = self.quota_request(row["id"])
        assert created is not None
        return created

    def quota_request(self, request_id: str) -> QuotaRequestRow | None:
        query = select(quota_requests).where(quota_requests.c.id == request_id)
        with self._connection() as connection:
            found = connection.execute(query).mappings().first()
        return None if found is None else _row(QuotaRequestRow, found)

    def quota_requests(
        self,
        *,
        team: str | None = None,
        user: str | None = None,
        state: str | None = None,
        limit: int = 200,
    ) -> list[QuotaRequestRow]:
        """Newest first."""
        query = select(quota_requests)
        for column, value in (("team", team), ("user", user), ("state", state)):
            if value is not None:
                query = query.where(quota_requests.c[column] == value)
        query = query.order_by(quota_requests.c.created_at.desc(), quota_requests.c.id)
        with self._connection() as connection:
            found = connection.execute(query.limit(limit)).mappings()
            return [_row(QuotaRequestRow, m) for m in found]

    def decide_quota_request(
        self, request_id: str, *, from_state: str = "pending", to_state: str, **values: Any
    ) -> QuotaRequestRow | None:
        """Move a request from ``from_state`` to ``to_state`` (with ``values``) in one statement;
        None when it was not in ``from_state`` (someone else decided it first)."""
        changes = _checked(quota_requests, {**values, "state": to_state})
        statement = (
            update(quota_requests)
            .where(quota_requests.c.id == request_id, quota_requests.c.state == from_state)
            .values(**changes)
        )
        with self._connection() as connection:
            moved = connection.execute(statement).rowcount
        return self.quota_request(request_id) if moved == 1 else None

    # -- GPU sessions -----------------------------------------------------------------------------

    def record_sessions(self, seen: Iterable[Mapping[str, Any]], *, now: datetime) -> None:
        """One sample of the cluster: ``seen`` are the pods holding GPUs at ``now`` (each with
        pod_uid, team, user, server, gpus and started_at). A pod new here opens a session, one
        open already is seen again at ``now``, and an open one not in ``seen`` ends when it was
        last seen.

        A session that has ended stays ended, even when its pod is seen again: a pod's uid is
        never given to another pod, so that pod was missed by a sample (a listing cut short), and
        reopening the session would count the time it was missed as held. Its row keeps the first
        end, and a report made from it stays true. The sampler is one at a time; two samples
        writing at once may both add a new pod, and one of them fails."""
        pods = {pod["pod_uid"]: _checked(gpu_sessions, pod) for pod in seen}
        uids = sorted(pods)
        column = gpu_sessions.c
        with self.in_transaction(), self._connection() as connection:
            known: dict[str, datetime | None] = {}
            for some in _chunks(uids):
                query = select(column.pod_uid, column.ended_at).where(column.pod_uid.in_(some))
                known.update({uid: ended for uid, ended in connection.execute(query)})
            open_query = select(column.pod_uid).where(column.ended_at.is_(None))
            still_open = [uid for uid in known if known[uid] is None]
            gone = sorted(set(connection.execute(open_query).scalars()) - set(pods))
            new = [
                {**pods[uid], "last_seen_at": now, "ended_at": None}
                for uid in uids
                if uid not in known
            ]
            if new:
                connection.execute(insert(gpu_sessions), new)
            for some in _chunks(sorted(still_open)):
                connection.execute(
                    update(gpu_sessions)
                    .where(column.pod_uid.in_(some), column.ended_at.is_(None))
                    .values(last_seen_at=now)
                )
            for some in _chunks(gone):
                connection.execute(
                    update(gpu_sessions)
                    .where(column.pod_uid.in_(some), column.ended_at.is_(None))
                    .values(ended_at=column.last_seen_at)
                )

    def gpu_sessions(self, *, since: datetime, team: str | None = None) -> list[GpuSessionRow]:
        """The sessions that held GPUs at some time from ``since`` on (those still open
        included), by when they started."""
        query = select(gpu_sessions).where(gpu_sessions.c.last_seen_at >= since)
        if team is not None:
            query = query.where(gpu_sessions.c.team == team)
        query = query.order_by(gpu_sessions.c.started_at, gpu_sessions.c.pod_uid)
        with self._connection() as connection:
            return [_row(GpuSessionRow, m) for m in connection.execute(query).mappings()]


def _active_at(when: datetime) -> tuple[Any, ...]:
    """The conditions of an override active at ``when``, as ``OverrideRow.active_at`` has them."""
    column = quota_overrides.c
    return (
        column.created_at <= when,
        or_(column.revoked_at.is_(None), column.revoked_at > when),
        or_(column.expires_at.is_(None), column.expires_at > when),
    )


def _engine_options(url: str) -> dict[str, Any]:
    """A sqlite file is opened by its path for each transaction (no pool): a file moved,
    removed or put back from a backup is seen at the next request, never written to under its
    old name; other databases keep a pool, checked before each use."""
    parsed = make_url(url)
    in_memory = parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed)
    if parsed.get_backend_name() == "sqlite" and not in_memory:
        return {"poolclass": NullPool}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()
