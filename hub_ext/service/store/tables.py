"""The service's tables, declared once: what the migrations create and what the store reads and
writes (SQLAlchemy Core, no ORM). A change here is a new migration too."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
    # since 0002, for the hub admin page's entries (their ``model`` is "")
    Column("subject", String(NAME), index=True),
    Column("before", JSON),
    Column("after", JSON),
    Column("reason", Text),
)

quota_overrides = Table(
    "quota_overrides",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team", String(63), nullable=False, index=True),
    # None: the override is for the whole team
    Column("user", String(NAME)),
    # a team override's quota (None keeps the configured value); cpu in millicores, memory in bytes
    Column("gpus", Integer),
    Column("gpus_per_user", Integer),
    Column("cpu", BigInteger),
    Column("memory", BigInteger),
    # a user's grant: GPUs on top of their cap and of the team's total
    Column("extra_gpus", Integer),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(NAME)),
    # the quota request it came from
    Column("request_id", String(32)),
)

quota_requests = Table(
    "quota_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team", String(63), nullable=False, index=True),
    Column("user", String(NAME), nullable=False),
    # extra GPUs asked for, and for how many minutes once approved
    Column("gpus", Integer, nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    # pending, approved, rejected or withdrawn
    Column("state", String(16), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(NAME)),
    Column("comment", Text),
    Column("override_id", String(32)),
)

gpu_sessions = Table(
    "gpu_sessions",
    metadata,
    # the service's own record of who held GPUs, sampled from the cluster: one row a pod
    Column("pod_uid", String(64), primary_key=True),
    Column("team", String(63), nullable=False, index=True),
    Column("user", String(NAME), nullable=False),
    Column("server", String(NAME), nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True)),
)
