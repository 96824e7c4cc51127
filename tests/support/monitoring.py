"""Helpers for the scheduled-checks tests: an injectable clock, settings, mailboxes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings


class Clock:
    """The monitor's now, moved by the test."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def monitor_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A local-mode environment on a fresh SQLite file (or MAILBOX_DATABASE_URL given)."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    env.update(
        MAILBOX_DATA_DIR=str(tmp_path / "data"),
        MAILBOX_SECRETS_FILE=str(secrets),
        MAILBOX_EGRESS="off",
        MAILBOX_CHECK_TIMEOUT="5",
    )
    env.update(settings)
    return env


def open_monitored(env: dict[str, str], clock: Clock | None = None) -> Services:
    return open_services(load_settings(env, {}), clock=clock)


def plain_imap(port: int, name: str, password: str, **extra: Any) -> dict[str, Any]:
    """An IMAP mailbox of alice@ without TLS (so a proxy can count its sign-ins)."""
    return {
        "name": name,
        "mailbox_type": "IMAP",
        "host": "127.0.0.1",
        "port": port,
        "ssl_enabled": "No",
        "starttls": "No",
        "allow_plaintext_password": True,
        "account": "alice@example.com",
        "password": password,
        **extra,
    }
