"""Wiring shared by the app and the command line: settings → engine → services."""

from __future__ import annotations

from dataclasses import dataclass

from mailbox_core.checks import MailboxChecker
from mailbox_core.config import Settings
from mailbox_core.db import init_db, make_engine
from mailbox_core.service import MailboxService


@dataclass(frozen=True)
class Services:
    """The long-lived objects of one configuration (safe to share between threads)."""

    mailboxes: MailboxService
    checker: MailboxChecker


def open_services(settings: Settings) -> Services:
    """Open the database (creating tables), the secret box and the checker."""
    engine = make_engine(settings.database_url)
    init_db(engine)
    mailboxes = MailboxService(engine, settings.secret_box())
    return Services(mailboxes=mailboxes, checker=MailboxChecker(mailboxes, settings.checks))
