"""Promotions, governed models and the append-only audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = "audit rows are append-only"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$""",
    """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
]


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # the tables as this revision made them (later changes are later revisions)
    op.create_table(
        "governed_models",
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False),
        sa.Column("model", sa.String(63), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.String(253), nullable=False),
        sa.UniqueConstraint("team", "model", name="uq_governed_models_team_model"),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False, index=True),
        sa.Column("model", sa.String(63), nullable=False, index=True),
        sa.Column("governed_name", sa.String(253), nullable=False),
        sa.Column("requester", sa.String(253), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("artifact_path", sa.String(1024), nullable=False),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("expires_at", _when()),
        sa.Column("version", sa.Integer),
        sa.Column("previous_version", sa.Integer),
        *(sa.Column(name, sa.JSON) for name in ("gate_results", "measured", "facts", "human")),
        sa.Column("card", sa.Text),
        sa.Column("card_sha256", sa.String(64)),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("frozen_uri", sa.String(2048)),
        sa.Column("approver", sa.String(253)),
        sa.Column("decision_comment", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _when(), nullable=False, index=True),
        sa.Column("actor", sa.String(253), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("team", sa.String(63), nullable=False, index=True),
        sa.Column("model", sa.String(63), nullable=False),
        sa.Column("promotion_id", sa.String(32)),
        sa.Column("from_version", sa.Integer),
        sa.Column("to_version", sa.Integer),
        sa.Column("gate_results", sa.JSON),
        sa.Column("approver", sa.String(253)),
        sa.Column("card_sha256", sa.String(64)),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    for table in ("audit", "promotions", "governed_models"):
        op.drop_table(table)
