"""The hub admin page: the audit's subject, change and reason; quota overrides and requests; GPU
sessions.

Revision ID: 0002
Revises: 0001

The audit gains columns in place (``ALTER TABLE ... ADD COLUMN``, never a copy of the table), so
its append-only triggers from 0001 stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AUDIT_COLUMNS = ("subject", "before", "after", "reason")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # the tables as this revision made them (later changes are later revisions)
    op.add_column("audit", sa.Column("subject", sa.String(253), nullable=True))
    op.add_column("audit", sa.Column("before", sa.JSON, nullable=True))
    op.add_column("audit", sa.Column("after", sa.JSON, nullable=True))
    op.add_column("audit", sa.Column("reason", sa.Text, nullable=True))
    op.create_index("ix_audit_subject", "audit", ["subject"])
    op.create_table(
        "quota_overrides",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False, index=True),
        sa.Column("user", sa.String(253)),
        sa.Column("gpus", sa.Integer),
        sa.Column("gpus_per_user", sa.Integer),
        sa.Column("cpu", sa.BigInteger),
        sa.Column("memory", sa.BigInteger),
        sa.Column("extra_gpus", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.String(253), nullable=False),
        sa.Column("expires_at", _when()),
        sa.Column("revoked_at", _when()),
        sa.Column("revoked_by", sa.String(253)),
        sa.Column("request_id", sa.String(32)),
    )
    op.create_table(
        "quota_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False, index=True),
        sa.Column("user", sa.String(253), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("decided_at", _when()),
        sa.Column("decided_by", sa.String(253)),
        sa.Column("comment", sa.Text),
        sa.Column("override_id", sa.String(32)),
    )
    op.create_table(
        "gpu_sessions",
        sa.Column("pod_uid", sa.String(64), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False, index=True),
        sa.Column("user", sa.String(253), nullable=False),
        sa.Column("server", sa.String(253), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("last_seen_at", _when(), nullable=False, index=True),
        sa.Column("ended_at", _when()),
    )


def downgrade() -> None:
    for table in ("gpu_sessions", "quota_requests", "quota_overrides"):
        op.drop_table(table)
    op.drop_index("ix_audit_subject", table_name="audit")
    # in place too (sqlite 3.35 and later drop a column without copying the table)
    for column in reversed(AUDIT_COLUMNS):
        op.drop_column("audit", column)
