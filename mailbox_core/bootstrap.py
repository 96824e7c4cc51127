"""Wiring shared by the app and the command line: settings → engine → services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from mailbox_core import repository
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import Settings
from mailbox_core.connect import ConnectService
from mailbox_core.db import describe, init_db, make_engine
from mailbox_core.errors import ConfigurationError, MailboxCoreError, StorageError
from mailbox_core.monitoring import Monitor
from mailbox_core.oauth import TokenClient, operator_apps
from mailbox_core.probe import default_resolver
from mailbox_core.service import MailboxService


@dataclass(frozen=True)
class Services:
    """The long-lived objects of one configuration (safe to share between threads)."""

    mailboxes: MailboxService
    checker: MailboxChecker
    monitor: Monitor
    connect: ConnectService


def open_services(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Services:
    """Open the database (creating tables), the secret box, the monitor and the checker.

    ``clock`` replaces the monitor's idea of now (tests of schedules and expiry).
    """
    engine = make_engine(settings.database_url)
    try:
        init_db(engine)
        box = settings.secret_box(
            before_new_key=partial(_refuse_new_key, engine, settings.key_file)
        )
    except MailboxCoreError:
        engine.dispose()  # the app retries on every rerun: leave no pool behind
        raise
    monitor = Monitor(engine, settings.monitor, clock=clock)
    mailboxes = MailboxService(
        engine,
        box,
        monitor,
        operator_apps=operator_apps(settings.checks),
        resolver=default_resolver if settings.checks.twin_dns else None,
        egress=settings.checks.egress,
    )
    mailboxes.identify_keys()  # secrets stored before key IDs, once (the list counts by ID)
    tokens = TokenClient.from_settings(settings.checks)  # one token cache for both
    connect = ConnectService(engine, box, settings.connect, tokens)
    checker = MailboxChecker(
        mailboxes, settings.checks, monitor=monitor, tokens=tokens, connect=connect
    )
    return Services(mailboxes=mailboxes, checker=checker, monitor=monitor, connect=connect)


def _refuse_new_key(engine: Engine, key_file: Path) -> None:
    """Refuse to replace a missing key file while the database holds secrets made with it.

    A new key could not open them, and whatever is saved under it is lost once the old
    key file is restored from a backup (SPEC §4: nothing is overwritten or lost).
    """
    try:
        with Session(engine) as session:
            holders = repository.count_mailboxes_with_secrets(session)
    except SQLAlchemyError as exc:
        raise StorageError(f"The database at {describe(engine)} could not be read.") from exc
    if holders:
        mailboxes = "1 mailbox" if holders == 1 else f"{holders} mailboxes"
        raise ConfigurationError(
            f"The key file {key_file} is missing, but the database {describe(engine)} holds "
            f"encrypted secrets of {mailboxes}: restore the key file from your backup (or set "
            "MAILBOX_ENCRYPTION_KEYS to the keys they were saved with). No new key was created."
        )
