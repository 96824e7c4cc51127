"""Schema migrations (Alembic) and key rotation, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, inspect, text

from mailbox_core.crypto import SecretBox, generate_key
from mailbox_core.db import current_revision, head_revision, make_engine, upgrade
from mailbox_core.errors import SecretDecryptionError
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, SIGN_IN_PATHS, mailbox_data, run_cli


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM mailbox ORDER BY id"))]


def test_new_database_is_at_the_newest_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert {"mailbox", "mailbox_check", "mailbox_health", "audit_event"} <= set(
        inspect(engine).get_table_names()
    )


def test_the_migrations_build_exactly_the_models(engine: Engine) -> None:
    """Alembic's autogenerate finds nothing to add: revisions and models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    def ours(name: str | None, kind: str, parent: object) -> bool:
        # Procrastinate's own tables (the worker's, installed by `db upgrade`) are not ours.
        return not (name or "").startswith("procrastinate")

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": ours})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_keeps_rows(service: MailboxService, engine: Engine) -> None:
    service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    before = rows(engine)
    upgrade(engine)
    upgrade(engine)
    assert rows(engine) == before


def test_database_made_before_migrations_is_adopted(tmp_path: Path, key: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    # The first release ran create_all, which made exactly revision 0001's tables and
    # no alembic_version table.
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO mailbox (name, name_key, mailbox_type, host, port, account, "
                "ssl_enabled, starttls, allow_self_signed, status, oauth_enabled, created_at, "
                "updated_at) VALUES ('Old', 'old', 'POP3', 'pop.example.com', 110, 'a@b.co', "
                "0, 0, 0, 'Active', 0, '2026-01-01', '2026-01-01')"
            )
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert [r["name"] for r in rows(engine)] == ["Old"]


def test_rotation_re_encrypts_so_the_old_key_can_go(engine: Engine, key: str) -> None:
    old = MailboxService(engine, SecretBox([key]))
    for path in SIGN_IN_PATHS:
        old.create_mailbox(mailbox_data(path), actor=ACTOR)
    new_key = generate_key()
    rotating = MailboxService(engine, SecretBox([new_key, key]))
    assert rotating.rotate_keys(actor=ACTOR) == (5, 6)  # 1 + 2 + 1 + 1 + 1 secrets over the paths
    only_new = MailboxService(engine, SecretBox([new_key]))
    for mailbox in only_new.list_mailboxes():
        credentials = only_new.get_credentials(mailbox.id)
        expected = SIGN_IN_PATHS[
            next(p for p in SIGN_IN_PATHS if SIGN_IN_PATHS[p]["name"] == mailbox.name)
        ]
        assert credentials.password == expected.get("password")
        assert credentials.refresh_token == expected.get("refresh_token")
    assert only_new.undecryptable_mailboxes() == []


def test_rotation_with_an_undecryptable_row_changes_nothing(engine: Engine, key: str) -> None:
    MailboxService(engine, SecretBox([key])).create_mailbox(mailbox_data("password"), actor=ACTOR)
    stranger_key = generate_key()
    MailboxService(engine, SecretBox([stranger_key])).create_mailbox(
        mailbox_data("gmail", name="Foreign"), actor=ACTOR
    )
    before = rows(engine)
    with pytest.raises(SecretDecryptionError) as caught:
        MailboxService(engine, SecretBox([generate_key(), key])).rotate_keys(actor=ACTOR)
    assert "Foreign" in str(caught.value)
    assert rows(engine) == before


def cli(tmp_path: Path, *args: str, keys: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(tmp_path / "data")}
    if keys:
        env["MAILBOX_ENCRYPTION_KEYS"] = keys
    return run_cli(env, *args)


def test_cli_keys_and_db_commands(tmp_path: Path) -> None:
    new = cli(tmp_path, "keys", "new")
    assert new.returncode == 0
    Fernet(new.stdout.strip().encode())  # a valid key
    assert cli(tmp_path, "db", "upgrade").stdout.startswith("Database sqlite:///")
    first = generate_key()
    assert cli(tmp_path, "keys", "rotate", keys=first).returncode == 0
    second = generate_key()
    done = cli(tmp_path, "keys", "rotate", keys=f"{second},{first}")
    assert done.returncode == 0
    assert done.stdout == "Re-encrypted 0 secrets of 0 mailboxes with the first key.\n"
