"""The secret box, the key file and settings resolution."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from mailbox_core.config import load_settings
from mailbox_core.crypto import (
    SecretBox,
    UndecryptableSecret,
    generate_key,
    load_or_create_key_file,
)
from mailbox_core.errors import ConfigurationError


def test_key_file_is_created_owner_only_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "secret.key"
    with caplog.at_level(logging.WARNING):
        first = load_or_create_key_file(path)
        second = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first == second
    assert sum("Created a new encryption key" in r.message for r in caplog.records) == 1
    assert first not in caplog.text


def test_restart_reads_the_same_key(tmp_path: Path) -> None:
    settings = load_settings({"MAILBOX_DATA_DIR": str(tmp_path)})
    token = settings.secret_box().encrypt("hunter2")
    restarted = load_settings({"MAILBOX_DATA_DIR": str(tmp_path)})
    assert restarted.secret_box().decrypt(token) == "hunter2"


def test_environment_keys_replace_the_key_file(tmp_path: Path) -> None:
    keys = f"{generate_key()},{generate_key()}"
    settings = load_settings({"MAILBOX_DATA_DIR": str(tmp_path), "MAILBOX_ENCRYPTION_KEYS": keys})
    settings.secret_box()
    assert not settings.key_file.exists()
    assert len(settings.encryption_keys) == 2


def test_keys_never_appear_in_settings_repr(tmp_path: Path) -> None:
    key = generate_key()
    settings = load_settings({"MAILBOX_ENCRYPTION_KEYS": key})
    assert key not in repr(settings)


def test_streamlit_secrets_table_is_read_after_the_environment() -> None:
    secrets = {"database_url": "postgresql://db/app", "MAILBOX_DATA_DIR": "/srv/mm"}
    settings = load_settings({}, secrets)
    assert settings.database_url == "postgresql://db/app"
    assert settings.data_dir == Path("/srv/mm")
    env_wins = load_settings({"MAILBOX_DATABASE_URL": "sqlite:///x.db"}, secrets)
    assert env_wins.database_url == "sqlite:///x.db"


def test_default_database_lives_in_the_data_dir() -> None:
    assert load_settings({}).database_url == "sqlite:///data/mailboxes.db"


@pytest.mark.parametrize("keys", ["not-a-key", f"{generate_key()},short"])
def test_malformed_key_is_a_configuration_error(keys: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SecretBox(keys.split(","))
    assert "not a valid Fernet key" in str(caught.value)
    assert keys.split(",")[-1] not in str(caught.value)


def test_encrypt_uses_first_key_and_any_key_decrypts() -> None:
    old, new = generate_key(), generate_key()
    old_token = SecretBox([old]).encrypt("pw")
    box = SecretBox([new, old])
    assert box.decrypt(old_token) == "pw"
    assert SecretBox([new]).decrypt(box.encrypt("pw2")) == "pw2"
    with pytest.raises(UndecryptableSecret):
        SecretBox([old]).decrypt(box.encrypt("pw2"))


def test_empty_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("\n")
    with pytest.raises(ConfigurationError):
        load_or_create_key_file(path)
