"""The list at scale: search text, key IDs per secret, indexes for filters and sorts.

Revision ID: 0007
Revises: 0006

``search_text`` is filled here for existing rows (the same rule as
``mailbox_core.listing.search_text``, written out so this revision never changes with the
code). No key is available to a migration: every stored secret gets the key ID "?"
(unknown), which the service replaces the first time it opens the database with a key
that opens it (``MailboxService.identify_keys``); until then it counts as unreadable.
A CHECK constraint keeps a key ID beside every stored secret from here on.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEPARATOR = "\x1f"  # a search term never holds it, so no match spans two fields
SECRETS = ("password", "client_secret", "refresh_token")
UNKNOWN_KEY = "?"
MAILBOX_INDEXES = {
    "ix_mailbox_status": "status",
    "ix_mailbox_mailbox_type": "mailbox_type",
    "ix_mailbox_host": "host",
    "ix_mailbox_account": "account",
}


def upgrade() -> None:
    with op.batch_alter_table("mailbox") as batch:
        for secret in SECRETS:
            batch.add_column(sa.Column(f"{secret}_key_id", sa.String(16), nullable=True))
        batch.add_column(sa.Column("search_text", sa.String(), nullable=False, server_default=""))
    for secret in SECRETS:
        op.execute(
            f"UPDATE mailbox SET {secret}_key_id = '{UNKNOWN_KEY}' "
            f"WHERE {secret}_encrypted IS NOT NULL"
        )
    with op.batch_alter_table("mailbox") as batch:
        for secret in SECRETS:
            batch.create_check_constraint(
                f"ck_mailbox_{secret}_key_id",
                f"({secret}_encrypted IS NULL) = ({secret}_key_id IS NULL)",
            )
    for name, column in MAILBOX_INDEXES.items():
        op.create_index(name, "mailbox", [column])
    for secret in SECRETS:
        op.create_index(f"ix_mailbox_{secret}_key_id", "mailbox", [f"{secret}_key_id"])
    op.create_index("ix_mailbox_health_last_ok", "mailbox_health", ["last_ok"])
    op.create_index("ix_audit_event_actor", "audit_event", ["actor"])
    _fill_search_text()


def _fill_search_text() -> None:
    mailbox = sa.table(
        "mailbox",
        sa.column("id", sa.Integer()),
        sa.column("name_key", sa.String()),
        sa.column("host", sa.String()),
        sa.column("account", sa.String()),
        sa.column("comments", sa.String()),
        sa.column("search_text", sa.String()),
    )
    bind = op.get_bind()
    columns = ("id", "name_key", "host", "account", "comments")
    rows = bind.execute(sa.select(*(mailbox.c[c] for c in columns))).all()
    if not rows:
        return
    update = (
        sa.update(mailbox)
        .where(mailbox.c.id == sa.bindparam("row_id"))
        .values(search_text=sa.bindparam("text"))
    )
    params = [{"row_id": row.id, "text": _search_text(row)} for row in rows]
    bind.execute(update, params)


def _search_text(row: sa.Row[Any]) -> str:
    # name_key is the name already casefolded, without invisible characters.
    fields = (row.name_key, row.host, row.account, row.comments or "")
    return SEPARATOR.join(field.casefold() for field in fields)


def downgrade() -> None:
    op.drop_index("ix_audit_event_actor", table_name="audit_event")
    op.drop_index("ix_mailbox_health_last_ok", table_name="mailbox_health")
    for name in MAILBOX_INDEXES:
        op.drop_index(name, table_name="mailbox")
    for secret in SECRETS:
        op.drop_index(f"ix_mailbox_{secret}_key_id", table_name="mailbox")
    with op.batch_alter_table("mailbox") as batch:
        for secret in SECRETS:
            batch.drop_constraint(f"ck_mailbox_{secret}_key_id", type_="check")
        batch.drop_column("search_text")
        for secret in SECRETS:
            batch.drop_column(f"{secret}_key_id")
