"""The secret box, the key file and settings resolution."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.config import load_settings, read_secrets_file
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
    secrets = {"mailbox": {"database_url": "postgresql://db/app", "MAILBOX_DATA_DIR": "/srv/mm"}}
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


@pytest.mark.parametrize(
    "environ, secrets, mode",
    [
        ({}, {}, "off"),
        ({}, {"auth": {"redirect_uri": "https://x/oauth2callback"}}, "public"),
        ({"MAILBOX_EGRESS": "private"}, {"auth": {"cookie_secret": "x"}}, "private"),
        ({"MAILBOX_EGRESS": "off"}, {"auth": {"cookie_secret": "x"}}, "off"),
        ({}, {"mailbox": {"egress": "public"}}, "public"),
    ],
)
def test_egress_is_public_when_sign_in_is_configured_and_off_locally(
    environ: dict[str, str], secrets: dict[str, Any], mode: str
) -> None:
    settings = load_settings(environ, secrets)
    assert settings.checks.egress.mode.value == mode
    assert settings.sign_in is bool(secrets.get("auth"))


def test_egress_allow_list_and_bad_values_name_the_setting() -> None:
    settings = load_settings({"MAILBOX_EGRESS_ALLOW": "10.20.0.0/16, 127.0.0.1"})
    assert [str(n) for n in settings.checks.egress.allow] == ["10.20.0.0/16", "127.0.0.1/32"]
    with pytest.raises(ConfigurationError, match=r"^MAILBOX_EGRESS must be one of"):
        load_settings({"MAILBOX_EGRESS": "strict"})
    with pytest.raises(ConfigurationError, match=r"^MAILBOX_EGRESS_ALLOW has 'ten'"):
        load_settings({"MAILBOX_EGRESS_ALLOW": "ten"})


def test_the_command_line_reads_the_secrets_file_streamlit_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".streamlit").mkdir(parents=True)
    (work / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "secrets.toml").write_text('[mailbox]\ndata_dir = "/home-wide"\n')
    (work / ".streamlit" / "secrets.toml").write_text('[auth]\ncookie_secret = "s"\n')
    monkeypatch.chdir(work)
    merged = read_secrets_file({}, home=home)
    assert merged == {"mailbox": {"data_dir": "/home-wide"}, "auth": {"cookie_secret": "s"}}
    (work / ".streamlit" / "secrets.toml").write_text("[auth\n")
    with pytest.raises(ConfigurationError, match=r"secrets\.toml cannot be read"):
        read_secrets_file({}, home=home)
    with pytest.raises(ConfigurationError, match="MAILBOX_SECRETS_FILE points to"):
        read_secrets_file({"MAILBOX_SECRETS_FILE": str(tmp_path / "missing.toml")})
