"""Vital signs (issue 15): OAuth grant health, and "same mailbox twice".

``mailbox_grant`` holds what is known of each OAuth mailbox's grant (last used, rotated,
the ID token's subject, the last classified token failure, the unused warning sent). The
mailbox gets the keys the twin check compares: the Account and the Host as compared
(written out here, the same rule as ``mailbox_core.twins``), and the addresses Host
resolved to on save (left empty here: no migration resolves anything; the next save does).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        batch.add_column(
            sa.Column("account_key", sa.String(254), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("server_key", sa.String(253), nullable=False, server_default=""))
        batch.add_column(sa.Column("server_addresses", sa.String(1000), nullable=True))
    _fill_keys()
    op.create_index("ix_mailbox_twin", "mailbox", ["account_key", "server_key"])
    op.create_table(
        "mailbox_grant",
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailbox.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("last_used_at", _TIME),
        sa.Column("rotated_at", _TIME),
        sa.Column("subject", sa.String(254)),
        sa.Column("subject_seen_at", _TIME),
        sa.Column("failure", sa.String(40)),
        sa.Column("failure_message", sa.String(500)),
        sa.Column("failure_hint", sa.String(500)),
        sa.Column("failure_at", _TIME),
        sa.Column("unused_warned_for", _TIME),
    )
    op.create_index("ix_mailbox_grant_last_used_at", "mailbox_grant", ["last_used_at"])


def _fill_keys() -> None:
    mailbox = sa.table(
        "mailbox",
        sa.column("id", sa.Integer()),
        sa.column("host", sa.String()),
        sa.column("account", sa.String()),
        sa.column("account_key", sa.String()),
        sa.column("server_key", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(mailbox.c.id, mailbox.c.host, mailbox.c.account)).all()
    if not rows:
        return
    update = (
        sa.update(mailbox)
        .where(mailbox.c.id == sa.bindparam("row_id"))
        .values(account_key=sa.bindparam("b_account"), server_key=sa.bindparam("b_server"))
    )
    params = [
        {
            "row_id": row.id,
            "b_account": row.account.strip().casefold(),
            "b_server": row.host.strip().lower().removesuffix("."),
        }
        for row in rows
    ]
    bind.execute(update, params)


def downgrade() -> None:
    op.drop_index("ix_mailbox_grant_last_used_at", table_name="mailbox_grant")
    op.drop_table("mailbox_grant")
    op.drop_index("ix_mailbox_twin", table_name="mailbox")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("server_addresses")
        batch.drop_column("server_key")
        batch.drop_column("account_key")
