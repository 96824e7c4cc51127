"""The embedded key file: never silently replaced, and its faults are messages, not tracebacks."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailbox_core.bootstrap import open_services
from mailbox_core.config import Settings, load_settings
from mailbox_core.crypto import generate_key, load_or_create_key_file
from mailbox_core.db import describe
from mailbox_core.errors import ConfigurationError
from tests.conftest import ACTOR, mailbox_data, run_cli


def settings_on(engine: Engine, data_dir: Path) -> Settings:
    """Embedded-key settings (no MAILBOX_ENCRYPTION_KEYS) over ``engine``'s database."""
    url = engine.url.render_as_string(hide_password=False)
    # No lookup of the saved hosts (same mailbox twice): these tests are about the key file.
    values = {"MAILBOX_DATA_DIR": str(data_dir), "MAILBOX_DATABASE_URL": url}
    return load_settings({**values, "MAILBOX_TWIN_DNS": "off"})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test, restoring it afterwards."""
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


# ------------------------------------------------ a missing key file is not replaced


def test_a_missing_key_file_is_not_replaced_while_secrets_are_stored(
    engine: Engine, tmp_path: Path
) -> None:
    settings = settings_on(engine, tmp_path / "data")
    services = open_services(settings)
    services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    services.mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    backup = tmp_path / "secret.key.backup"
    settings.key_file.rename(backup)

    with pytest.raises(ConfigurationError) as caught:
        open_services(settings)
    assert str(caught.value) == (
        f"The key file {settings.key_file} is missing, but the database {describe(engine)} "
        "holds encrypted secrets of 2 mailboxes: restore the key file from your backup (or "
        "set MAILBOX_ENCRYPTION_KEYS to the keys they were saved with). No new key was created."
    )
    assert not settings.key_file.exists()

    backup.rename(settings.key_file)
    restored = open_services(settings).mailboxes
    assert [m.name for m in restored.list_mailboxes()] == ["Support POP3", "Gmail helpdesk"]
    assert restored.undecryptable_mailboxes() == []


def test_configured_keys_need_no_key_file_even_while_secrets_are_stored(
    engine: Engine, tmp_path: Path
) -> None:
    key = generate_key()
    settings = settings_on(engine, tmp_path / "data")
    with_keys = replace(settings, encryption_keys=(key,))
    open_services(with_keys).mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    assert open_services(with_keys).mailboxes.undecryptable_mailboxes() == []
    assert not settings.key_file.exists()


@pytest.mark.parametrize("umask_value", [0o000, 0o022, 0o077])
def test_a_fresh_database_gets_a_private_key_file_in_a_private_directory(
    tmp_path: Path, umask: Callable[[int], None], umask_value: int
) -> None:
    data_dir = tmp_path / "srv" / "data"
    umask(umask_value)
    open_services(load_settings({"MAILBOX_DATA_DIR": str(data_dir)}))
    assert mode(data_dir) == 0o700
    assert mode(data_dir.parent) == 0o700
    assert mode(data_dir / "secret.key") == 0o600
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_an_existing_data_directory_keeps_its_permissions(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o750)
    open_services(load_settings({"MAILBOX_DATA_DIR": str(data_dir)}))
    assert mode(data_dir) == 0o750
    assert mode(data_dir / "secret.key") == 0o600


def open_key_file_at_once(path: Path, starters: int) -> list[str]:
    """What each of ``starters`` threads, released together, gets from the key file."""
    barrier = threading.Barrier(starters)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            outcomes.append(load_or_create_key_file(path))
        except ConfigurationError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_processes_starting_at_once_all_read_the_one_key_created(tmp_path: Path) -> None:
    # The losers of the creation race read the winner's file: they must never find it empty.
    for attempt in range(40):
        path = tmp_path / str(attempt) / "secret.key"
        outcomes = open_key_file_at_once(path, 8)
        assert outcomes == [path.read_text().strip()] * 8, f"attempt {attempt}"
        assert [p.name for p in path.parent.iterdir()] == ["secret.key"]


def test_without_hard_links_the_key_is_still_created_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "data" / "secret.key"
    first = load_or_create_key_file(path)
    assert load_or_create_key_file(path) == first
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]


@pytest.mark.parametrize("command", [["export"], ["keys", "rotate"]])
def test_the_command_line_refuses_a_new_key_while_secrets_are_stored(
    tmp_path: Path, command: list[str]
) -> None:
    env = {"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(tmp_path / "data")}
    settings = load_settings(env)
    open_services(settings).mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    settings.key_file.rename(tmp_path / "secret.key.backup")

    done = run_cli(env, *command)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: The key file {settings.key_file} is missing, but the database "
        f"{settings.database_url} holds encrypted secrets of 1 mailbox: restore the key file "
        "from your backup (or set MAILBOX_ENCRYPTION_KEYS to the keys they were saved with). "
        "No new key was created.\n"
    )
    assert done.stdout == ""
    assert not settings.key_file.exists()


# ------------------------------------------------ key-file faults are configuration errors


def non_ascii(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + generate_key().encode() + b"\n")  # a BOM from an editor


def directory(path: Path) -> None:
    path.mkdir()


def dangling_symlink(path: Path) -> None:
    path.symlink_to(path.parent / "moved-away.key")


def not_a_key(path: Path) -> None:
    path.write_text("paste the key here\n")


def unreadable(path: Path) -> None:
    path.write_text(generate_key() + "\n")
    path.chmod(0o000)


FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "non-ASCII bytes": (non_ascii, "holds non-ASCII bytes (at byte 0)"),
    "a directory": (directory, "is a directory; it must be a file holding the key."),
    "a dangling symlink": (dangling_symlink, "moved-away.key, which does not exist."),
    "not a Fernet key": (not_a_key, "does not hold a valid Fernet key"),
    "unreadable": (unreadable, "cannot be read: Permission denied."),
}
if os.geteuid() == 0:  # root reads any file (CI runs as root): no permission fault to provoke
    del FAULTS["unreadable"]


@pytest.mark.parametrize("command", [["export"], ["keys", "rotate"], ["check", "--all"]])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_faulty_key_file_is_a_configuration_error_naming_the_file(
    tmp_path: Path, fault: str, command: list[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key_file = data_dir / "secret.key"
    make_fault, expected = FAULTS[fault]
    make_fault(key_file)

    done = run_cli({"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(data_dir)}, *command)
    assert done.returncode == 2, done.stderr
    error = done.stderr.splitlines()[-1]  # after the warning a world-readable file earns
    assert error.startswith(f"error: The key file {key_file} ")
    assert expected in error
    assert "Traceback" not in done.stderr
    assert not (data_dir / "moved-away.key").exists()  # nothing created behind a link
    assert [p.name for p in data_dir.iterdir() if not p.name.startswith("mailboxes.db")] == [
        "secret.key"
    ]


@pytest.mark.parametrize("command", [["db", "upgrade"], ["export"]])
def test_a_file_in_place_of_the_data_directory_is_a_configuration_error(
    tmp_path: Path, command: list[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("not a directory\n")

    done = run_cli({"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(data_dir)}, *command)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: The directory {data_dir} cannot be created: {data_dir} exists and is not a "
        "directory.\n"
    )
