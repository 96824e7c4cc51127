"""The page after a restart with the key file gone: a message saying what to restore."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import open_services
from mailbox_core.config import load_settings
from tests.app.conftest import ENTRYPOINT
from tests.conftest import ACTOR, mailbox_data


def test_the_mailboxes_page_says_to_restore_a_missing_key_file(data_dir: Path) -> None:
    # Saved through the core, not the app: the app's cached secret box would hold the key
    # in memory, as a running server does; what matters is the next start.
    settings = load_settings()
    open_services(settings).mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    backup = data_dir.parent / "secret.key.backup"
    settings.key_file.rename(backup)

    at = AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Mailboxes"]
    assert [e.value for e in at.error] == [
        f"The key file {settings.key_file} is missing, but the database "
        f"{settings.database_url} holds encrypted secrets of 1 mailbox: restore the key file "
        "from your backup (or set MAILBOX_ENCRYPTION_KEYS to the keys they were saved with). "
        "No new key was created."
    ]
    assert not at.dataframe
    assert not settings.key_file.exists()

    backup.rename(settings.key_file)  # the failure was not cached: restoring is enough
    at.run()
    assert not at.error
    assert at.dataframe[0].value.loc[0, "Name"] == "Support POP3"
