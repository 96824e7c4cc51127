"""Per-mailbox choice to sign in without encryption (off for every existing mailbox).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        # Off for existing rows too: a password is never sent in clear without a choice.
        batch.add_column(
            sa.Column(
                "allow_plaintext_password",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("allow_plaintext_password")
