"""The ``mlteams`` service's state: promotions, governed models and the append-only audit.

SQLAlchemy Core over any database it speaks (sqlite on the hub's volume by default, PostgreSQL in
production); the schema is made by alembic migrations shipped here (``migrations/``), applied by
``Store.migrate`` at every start. The audit has no update or delete here, and database triggers
refuse both. Calls are synchronous: the service runs them in a thread.

Rows come back as frozen dataclasses, never as live database objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as DBInterfaceError

from hub_ext.service.store.tables import audit, governed_models, promotions

__all__ = [
    "AuditRow",
    "GovernedModelRow",
    "NameTaken",
    "PromotionRow",
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


UNAVAILABLE = (OperationalError, DBInterfaceError)


class Store:
    """The service's database at ``url`` (any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._local = threading.local()

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (nothing to do when it is there)."""
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
                command.upgrade(config, "head")
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
    ) -> list[AuditRow]:
        """Newest first."""
        query = select(audit)
        for column, value in (("team", team), ("model", model), ("promotion_id", promotion_id)):
            if value is not None:
                query = query.where(audit.c[column] == value)
        query = query.order_by(audit.c.id.desc()).limit(limit)
        with self._connection() as connection:
            return [_row(AuditRow, m) for m in connection.execute(query).mappings()]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()
