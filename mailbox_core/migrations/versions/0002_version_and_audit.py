"""Optimistic locking (mailbox.version) and the audit trail.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        # No foreign key: the history of a deleted mailbox stays readable.
        sa.Column("mailbox_id", sa.Integer()),
        sa.Column("mailbox_name", sa.String(100), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_mailbox_id", "audit_event", ["mailbox_id"])


def downgrade() -> None:
    op.drop_table("audit_event")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("version")
