"""Scheduled checks: interval and client-secret expiry per mailbox, the monitor's state,
alerts, sweeps (the heartbeat) and the failed-sign-in budget; the problem code of a check.

Procrastinate's own tables are not created here: `db upgrade` installs them on PostgreSQL
with Procrastinate's schema manager (mailbox_core/monitoring/worker.py).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.add_column(
            sa.Column("check_interval", sa.Integer(), nullable=False, server_default="5")
        )
        batch.add_column(sa.Column("client_secret_expires", sa.Date(), nullable=True))
    with op.batch_alter_table("mailbox_check") as batch:
        batch.add_column(sa.Column("problem", sa.String(40), nullable=True))
    op.create_table(
        "mailbox_monitor",
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailbox.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("next_check_at", _TIME),
        sa.Column("lease_until", _TIME),
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("signin_ok", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("backoff_level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("pause_level", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("paused_until", _TIME),
        sa.Column("pause_reason", sa.String(500)),
        sa.Column("snoozed_until", _TIME),
        sa.Column("window_start", sa.String(5)),
        sa.Column("window_end", sa.String(5)),
        sa.Column("window_tz", sa.String(64)),
        sa.Column("alert_open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("alert_sent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("alert_since", _TIME),
        sa.Column("secret_warned", sa.Integer()),
        sa.Column("secret_warned_for", sa.Date()),
        sa.Column("cert_not_after", _TIME),
        sa.Column("cert_issuer", sa.String(500)),
        sa.Column("cert_seen_at", _TIME),
        sa.Column("cert_warned", sa.Integer()),
        sa.Column("cert_warned_for", _TIME),
    )
    op.create_index("ix_mailbox_monitor_next_check_at", "mailbox_monitor", ["next_check_at"])
    op.create_table(
        "alert_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        # No foreign key: the alerts of a deleted mailbox stay readable.
        sa.Column("mailbox_id", sa.Integer()),
        sa.Column("mailbox_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("step", sa.String(20)),
        sa.Column("hint", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", _TIME),
        sa.Column("delivery", sa.String(500), nullable=False),
    )
    op.create_index("ix_alert_event_mailbox_id", "alert_event", ["mailbox_id"])
    op.create_index("ix_alert_event_created_at", "alert_event", ["created_at"])
    op.create_index("ix_alert_event_status", "alert_event", ["status"])
    op.create_table(
        "monitor_sweep",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("runner", sa.String(120), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failing", sa.Integer()),
    )
    op.create_index("ix_monitor_sweep_started_at", "monitor_sweep", ["started_at"])
    op.create_table(
        "signin_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_signin_attempt_host", "signin_attempt", ["host"])
    op.create_index("ix_signin_attempt_mailbox_id", "signin_attempt", ["mailbox_id"])
    op.create_index("ix_signin_attempt_at", "signin_attempt", ["at"])


def downgrade() -> None:
    op.drop_table("signin_attempt")
    op.drop_table("monitor_sweep")
    op.drop_table("alert_event")
    op.drop_table("mailbox_monitor")
    with op.batch_alter_table("mailbox_check") as batch:
        batch.drop_column("problem")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("client_secret_expires")
        batch.drop_column("check_interval")
