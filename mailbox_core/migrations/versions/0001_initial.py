"""Initial schema: mailboxes, connection checks and health.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("mailbox_type", sa.String(), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(254), nullable=False),
        sa.Column("ssl_enabled", sa.Boolean(), nullable=False),
        sa.Column("starttls", sa.Boolean(), nullable=False),
        sa.Column("allow_self_signed", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("comments", sa.String(2000)),
        sa.Column("oauth_enabled", sa.Boolean(), nullable=False),
        sa.Column("oauth_provider", sa.String()),
        sa.Column("auth_method", sa.String()),
        sa.Column("client_id", sa.String(255)),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("password_encrypted", sa.String()),
        sa.Column("client_secret_encrypted", sa.String()),
        sa.Column("refresh_token_encrypted", sa.String()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_mailbox_name_key", "mailbox", ["name_key"], unique=True)
    op.create_table(
        "mailbox_check",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailbox.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("failed_step", sa.String(20)),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("message_count", sa.Integer()),
    )
    op.create_index("ix_mailbox_check_mailbox_id", "mailbox_check", ["mailbox_id"])
    op.create_index("ix_mailbox_check_started_at", "mailbox_check", ["started_at"])
    op.create_table(
        "mailbox_health",
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailbox.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("last_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ok", sa.Boolean(), nullable=False),
        sa.Column("last_message", sa.String(500), nullable=False),
        sa.Column("last_failed_step", sa.String(20)),
        sa.Column("last_latency_ms", sa.Float(), nullable=False),
        sa.Column("last_message_count", sa.Integer()),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("mailbox_health")
    op.drop_table("mailbox_check")
    op.drop_table("mailbox")
