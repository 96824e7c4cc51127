"""Vital signs: quota warnings and a backlog threshold per mailbox, what each check read
(quota, unseen, oldest unseen, arrivals after an outage, the sign-in offer) and the latest
values with their alert state beside the monitor's, indexed for the list's filters.

Existing mailboxes get the default quota warnings (80, 90, 95 %) and no backlog alert.

Revision ID: 0008
Revises: 0007
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
CHECK_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("quota_ratio", sa.Float()),
    ("quota_storage_used", sa.BigInteger()),
    ("quota_storage_limit", sa.BigInteger()),
    ("quota_messages_used", sa.Integer()),
    ("quota_messages_limit", sa.Integer()),
    ("unseen", sa.Integer()),
    ("oldest_unseen_at", _TIME),
    ("arrived_since", sa.Integer()),
    ("offer", sa.String(300)),
)
MONITOR_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("vitals_at", _TIME),
    ("quota_ratio", sa.Float()),
    ("quota_level", sa.Integer()),
    ("quota_alerted", sa.Integer()),
    ("unseen", sa.Integer()),
    ("oldest_unseen_at", _TIME),
    ("offer", sa.String(300)),
    ("offer_before", sa.String(300)),
    ("offer_changed_at", _TIME),
    ("password_offered", sa.Boolean()),
    ("outage_arrived", sa.Integer()),
    ("outage_from", _TIME),
    ("outage_until", _TIME),
)
MONITOR_FLAGS = ("backlog_over", "backlog_alerted")
MONITOR_INDEXES = ("quota_level", "backlog_over", "offer_changed_at")


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.add_column(
            sa.Column("quota_warnings", sa.String(40), nullable=False, server_default="80,90,95")
        )
        batch.add_column(sa.Column("backlog_minutes", sa.Integer(), nullable=True))
    with op.batch_alter_table("mailbox_check") as batch:
        for name, kind in CHECK_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("mailbox_monitor") as batch:
        for name, kind in MONITOR_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        for flag in MONITOR_FLAGS:
            batch.add_column(
                sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
            )
    for column in MONITOR_INDEXES:
        op.create_index(f"ix_mailbox_monitor_{column}", "mailbox_monitor", [column])


def downgrade() -> None:
    for column in MONITOR_INDEXES:
        op.drop_index(f"ix_mailbox_monitor_{column}", table_name="mailbox_monitor")
    with op.batch_alter_table("mailbox_monitor") as batch:
        for name in (*MONITOR_FLAGS, *(n for n, _ in reversed(MONITOR_COLUMNS))):
            batch.drop_column(name)
    with op.batch_alter_table("mailbox_check") as batch:
        for name, _ in reversed(CHECK_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("backlog_minutes")
        batch.drop_column("quota_warnings")
