"""The summary counts each vital sign's badge: ``password_offered`` gets the index the other
three signs' columns have (0008), so "No password sign-in" is an index range too.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_mailbox_monitor_password_offered", "mailbox_monitor", ["password_offered"])


def downgrade() -> None:
    op.drop_index("ix_mailbox_monitor_password_offered", table_name="mailbox_monitor")
