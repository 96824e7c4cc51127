"""The list's summary kept by triggers (issue 8): ``mailbox_tally``.

Counting the tables for the summary grows with them (a million mailboxes: 0.1 s on SQLite,
most of the page's time). Instead, triggers on ``mailbox`` and ``mailbox_health`` append
+1/-1 rows per (status, verdict) in the transaction of the change, and the summary adds
them up (mailbox_core/tally.py). The verdict of a mailbox is its health row's last_ok
("ok" / "failing"), or "none" without one.

- A mailbox is deleted BEFORE-row, while its health row is still there to read; the
  cascade that deletes the health row then finds no mailbox and adds nothing (on SQLite
  and PostgreSQL the cascaded row's triggers no longer see the parent).
- PostgreSQL: the health trigger reads the mailbox's status FOR SHARE, so a status change
  and a health change of one mailbox in two transactions wait for each other instead of
  each counting from what the other has not committed yet. The health upsert already
  holds FOR KEY SHARE on that row (repository._from_live_mailbox); a lock held by the
  transaction itself is strengthened without queueing, so this adds no deadlock.
- SQLite: ``op.batch_alter_table("mailbox")`` rebuilds the table and drops its triggers. A
  later migration that batch-alters ``mailbox`` or ``mailbox_health`` must create these
  triggers again (tests/core/test_tally.py compares the tally with a count at head).

``ix_mailbox_status`` becomes ``ix_mailbox_status_created`` (status, created_at): the same
status filters, and the heartbeat's oldest active mailbox is a lookup (at a million
mailboxes it read every active row, 0.4 s of each page view before the first sweep).

The table starts with the counts of the rows already there; the triggers exist before
the count is taken, and on PostgreSQL CREATE TRIGGER holds off writers until commit.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _verdict(mailbox_id: str) -> str:
    return (
        "COALESCE((SELECT CASE WHEN last_ok THEN 'ok' ELSE 'failing' END "
        f"FROM mailbox_health WHERE mailbox_id = {mailbox_id}), 'none')"
    )


def _of(row: str) -> str:
    return f"CASE WHEN {row}.last_ok THEN 'ok' ELSE 'failing' END"


_INTO = "INSERT INTO mailbox_tally (status, verdict, n)"

_SQLITE = [
    f"""CREATE TRIGGER mailbox_tally_insert AFTER INSERT ON mailbox BEGIN
        {_INTO} VALUES (NEW.status, {_verdict("NEW.id")}, 1);
    END""",
    f"""CREATE TRIGGER mailbox_tally_status AFTER UPDATE OF status ON mailbox
    WHEN OLD.status IS NOT NEW.status BEGIN
        {_INTO} VALUES (OLD.status, {_verdict("NEW.id")}, -1);
        {_INTO} VALUES (NEW.status, {_verdict("NEW.id")}, 1);
    END""",
    f"""CREATE TRIGGER mailbox_tally_delete BEFORE DELETE ON mailbox BEGIN
        {_INTO} VALUES (OLD.status, {_verdict("OLD.id")}, -1);
    END""",
    f"""CREATE TRIGGER mailbox_health_tally_insert AFTER INSERT ON mailbox_health BEGIN
        {_INTO}
        SELECT status, 'none', -1 FROM mailbox WHERE id = NEW.mailbox_id
        UNION ALL SELECT status, {_of("NEW")}, 1 FROM mailbox WHERE id = NEW.mailbox_id;
    END""",
    f"""CREATE TRIGGER mailbox_health_tally_update AFTER UPDATE OF last_ok, mailbox_id
    ON mailbox_health
    WHEN OLD.last_ok IS NOT NEW.last_ok OR OLD.mailbox_id IS NOT NEW.mailbox_id BEGIN
        {_INTO}
        SELECT status, {_of("OLD")}, -1 FROM mailbox WHERE id = OLD.mailbox_id
        UNION ALL SELECT status, 'none', 1 FROM mailbox
            WHERE id = OLD.mailbox_id AND OLD.mailbox_id IS NOT NEW.mailbox_id
        UNION ALL SELECT status, 'none', -1 FROM mailbox
            WHERE id = NEW.mailbox_id AND OLD.mailbox_id IS NOT NEW.mailbox_id
        UNION ALL SELECT status, {_of("NEW")}, 1 FROM mailbox WHERE id = NEW.mailbox_id;
    END""",
    f"""CREATE TRIGGER mailbox_health_tally_delete AFTER DELETE ON mailbox_health BEGIN
        {_INTO}
        SELECT status, {_of("OLD")}, -1 FROM mailbox WHERE id = OLD.mailbox_id
        UNION ALL SELECT status, 'none', 1 FROM mailbox WHERE id = OLD.mailbox_id;
    END""",
]
_SQLITE_TRIGGERS = [
    "mailbox_tally_insert",
    "mailbox_tally_status",
    "mailbox_tally_delete",
    "mailbox_health_tally_insert",
    "mailbox_health_tally_update",
    "mailbox_health_tally_delete",
]

_POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION mailbox_tally_on_mailbox() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        box integer;
        found_verdict varchar;
    BEGIN
        IF TG_OP = 'DELETE' THEN box := OLD.id; ELSE box := NEW.id; END IF;
        found_verdict := {_verdict("box")};
        IF TG_OP <> 'INSERT' THEN
            {_INTO} VALUES (OLD.status, found_verdict, -1);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            {_INTO} VALUES (NEW.status, found_verdict, 1);
            RETURN NEW;
        END IF;
        RETURN OLD;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION mailbox_tally_on_health() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        box_status varchar;
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.mailbox_id = NEW.mailbox_id THEN  -- the verdict changed
            SELECT status INTO box_status FROM mailbox WHERE id = NEW.mailbox_id FOR SHARE;
            IF FOUND THEN
                {_INTO} VALUES (box_status, {_of("OLD")}, -1), (box_status, {_of("NEW")}, 1);
            END IF;
            RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            SELECT status INTO box_status FROM mailbox WHERE id = OLD.mailbox_id FOR SHARE;
            IF FOUND THEN
                {_INTO} VALUES (box_status, {_of("OLD")}, -1), (box_status, 'none', 1);
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            SELECT status INTO box_status FROM mailbox WHERE id = NEW.mailbox_id FOR SHARE;
            IF FOUND THEN
                {_INTO} VALUES (box_status, 'none', -1), (box_status, {_of("NEW")}, 1);
            END IF;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER mailbox_tally_insert AFTER INSERT ON mailbox
    FOR EACH ROW EXECUTE FUNCTION mailbox_tally_on_mailbox()""",
    """CREATE TRIGGER mailbox_tally_status AFTER UPDATE OF status ON mailbox
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION mailbox_tally_on_mailbox()""",
    """CREATE TRIGGER mailbox_tally_delete BEFORE DELETE ON mailbox
    FOR EACH ROW EXECUTE FUNCTION mailbox_tally_on_mailbox()""",
    """CREATE TRIGGER mailbox_health_tally AFTER INSERT OR DELETE ON mailbox_health
    FOR EACH ROW EXECUTE FUNCTION mailbox_tally_on_health()""",
    """CREATE TRIGGER mailbox_health_tally_update AFTER UPDATE OF last_ok, mailbox_id
    ON mailbox_health FOR EACH ROW
    WHEN (OLD.last_ok IS DISTINCT FROM NEW.last_ok OR OLD.mailbox_id <> NEW.mailbox_id)
    EXECUTE FUNCTION mailbox_tally_on_health()""",
]
_POSTGRES_TRIGGERS = [
    ("mailbox_tally_insert", "mailbox"),
    ("mailbox_tally_status", "mailbox"),
    ("mailbox_tally_delete", "mailbox"),
    ("mailbox_health_tally", "mailbox_health"),
    ("mailbox_health_tally_update", "mailbox_health"),
]

_FILL = f"""{_INTO}
SELECT m.status,
       CASE WHEN h.mailbox_id IS NULL THEN 'none' WHEN h.last_ok THEN 'ok' ELSE 'failing' END,
       count(*)
FROM mailbox AS m LEFT OUTER JOIN mailbox_health AS h ON h.mailbox_id = m.id
GROUP BY 1, 2"""


def upgrade() -> None:
    op.create_table(
        "mailbox_tally",
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_index("ix_mailbox_status_created", "mailbox", ["status", "created_at"])
    op.drop_index("ix_mailbox_status", table_name="mailbox")
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)
    op.execute(_FILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in _POSTGRES_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS mailbox_tally_on_mailbox()")
        op.execute("DROP FUNCTION IF EXISTS mailbox_tally_on_health()")
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.drop_table("mailbox_tally")
    op.create_index("ix_mailbox_status", "mailbox", ["status"])
    op.drop_index("ix_mailbox_status_created", table_name="mailbox")
