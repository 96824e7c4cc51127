"""The Mailboxes page: empty state, list, and readable failures of the outside world."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.crypto import generate_key
from tests.app.conftest import ENTRYPOINT, fill, open_new_mailbox, press_ok
from tests.conftest import ROOT, SIGN_IN_PATHS

#: Every page file with the title it shows (Edit shows its "no mailbox chosen" state).
PAGES = {
    "pages/mailboxes.py": "Mailboxes",
    "pages/new_mailbox.py": "New Mailbox",
    "pages/activity.py": "Activity",
    "pages/edit_mailbox.py": None,
    "pages/connect_callback.py": "Connect account",
}


def test_the_smoke_test_knows_every_page() -> None:
    assert sorted(PAGES) == sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))


def start(monkeypatch: pytest.MonkeyPatch, **env: str) -> AppTest:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return AppTest.from_file(ENTRYPOINT, default_timeout=30).run()


def test_empty_state_invites_the_first_mailbox(app: AppTest) -> None:
    assert [t.value for t in app.title] == ["Mailboxes"]
    assert "No mailboxes yet" in app.info[0].value
    assert not app.dataframe
    assert [b.label for b in app.button] == ["New Mailbox", "Check all active mailboxes"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(app: AppTest, page: str) -> None:
    app.switch_page(page).run()
    assert not app.exception
    if PAGES[page] is None:
        assert app.error[0].value == "No mailbox chosen: open one from the Mailboxes list."
    else:
        assert [t.value for t in app.title] == [PAGES[page]]


def test_secrets_the_keys_cannot_open_are_reported_not_lost(
    app: AppTest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_new_mailbox(app)
    fill(app, SIGN_IN_PATHS["password"])
    press_ok(app)
    before = (data_dir / "mailboxes.db").read_bytes()

    other = start(monkeypatch, MAILBOX_ENCRYPTION_KEYS=generate_key())
    assert not other.exception
    message = other.error[0].value
    assert "“Support POP3” (ID 1)" in message
    assert "MAILBOX_ENCRYPTION_KEYS" in message
    assert other.dataframe[0].value.loc[0, "Name"] == "Support POP3"
    assert (data_dir / "mailboxes.db").read_bytes() == before


@pytest.mark.parametrize("page", PAGES)
def test_unreachable_database_is_a_readable_message(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    at = start(monkeypatch, MAILBOX_DATABASE_URL="postgresql://nobody:pw-9@127.0.0.1:9/none")
    at.switch_page(page)
    at.query_params["id"] = "1"  # the Edit page reads the database only for a chosen mailbox
    at.query_params["state"] = "s"  # and the callback page only to finish a consent
    at.run()
    assert not at.exception
    message = at.error[0].value
    assert "could not" in message.lower()
    assert "127.0.0.1:9" in message
    assert "pw-9" not in message


def test_malformed_encryption_key_is_a_readable_message(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(monkeypatch, MAILBOX_ENCRYPTION_KEYS="not-a-fernet-key")
    assert not at.exception
    assert "not a valid Fernet key" in at.error[0].value
    assert "not-a-fernet-key" not in at.error[0].value


def test_settings_come_from_the_streamlit_secrets_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILBOX_DATA_DIR", raising=False)
    monkeypatch.delenv("MAILBOX_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILBOX_ENCRYPTION_KEYS", raising=False)
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.secrets["mailbox"] = {
        "data_dir": str(tmp_path / "from-secrets"),
        "encryption_keys": generate_key(),
    }
    at.run()
    assert not at.exception
    assert (tmp_path / "from-secrets" / "mailboxes.db").exists()
    assert not (tmp_path / "from-secrets" / "secret.key").exists()
