"""The service's tables, declared once: what the first migration creates and what the store
reads and writes (SQLAlchemy Core, no ORM)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

NAME = 253
"""Room for a DNS name, a hub user name or a governed model name."""

governed_models = Table(
    "governed_models",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("team", String(63), nullable=False),
    Column("model", String(63), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(NAME), nullable=False),
    UniqueConstraint("team", "model", name="uq_governed_models_team_model"),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team", String(63), nullable=False, index=True),
    Column("model", String(63), nullable=False, index=True),
    Column("governed_name", String(NAME), nullable=False),
    Column("requester", String(NAME), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("artifact_path", String(1024), nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("version", Integer),
    Column("previous_version", Integer),
    Column("gate_results", JSON),
    Column("measured", JSON),
    Column("facts", JSON),
    Column("human", JSON),
    Column("card", Text),
    Column("card_sha256", String(64)),
    Column("artifact_sha256", String(64)),
    Column("frozen_uri", String(2048)),
    Column("approver", String(NAME)),
    Column("decision_comment", Text),
    Column("error", Text),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(NAME), nullable=False),
    Column("action", String(64), nullable=False),
    Column("team", String(63), nullable=False, index=True),
    Column("model", String(63), nullable=False),
    Column("promotion_id", String(32)),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("gate_results", JSON),
    Column("approver", String(NAME)),
    Column("card_sha256", String(64)),
    Column("artifact_sha256", String(64)),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
)
