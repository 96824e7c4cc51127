"""Connect account: consents waiting for the provider's callback (issue 14).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connect_consent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("nonce_hash", sa.String(64), nullable=False),
        sa.Column("verifier_encrypted", sa.String()),
        sa.Column("client_secret_encrypted", sa.String()),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("actor_subject", sa.String(254)),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("mailbox_id", sa.Integer()),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("mailbox_type", sa.String(10), nullable=False),
        sa.Column("account", sa.String(254), nullable=False),
        sa.Column("client_id", sa.String(255)),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("redirect_uri", sa.String(2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("connected_account", sa.String(254)),
        sa.Column("refresh_token_encrypted", sa.String()),
        sa.Column("error", sa.String(500)),
        sa.Column("hint", sa.String(500)),
    )
    op.create_index("ix_connect_consent_state_hash", "connect_consent", ["state_hash"], unique=True)
    op.create_index("ix_connect_consent_form", "connect_consent", ["form"])
    op.create_index("ix_connect_consent_created_at", "connect_consent", ["created_at"])


def downgrade() -> None:
    op.drop_table("connect_consent")
