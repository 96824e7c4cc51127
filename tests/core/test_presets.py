"""Suggested settings from the Account's domain."""

from __future__ import annotations

import pytest

from mailbox_core.presets import suggest
from mailbox_core.schemas import MailboxType


@pytest.mark.parametrize(
    ("account", "kind", "host", "port", "got_kind"),
    [
        ("JDoe@gmail.com", "IMAP", "imap.gmail.com", 993, "IMAP"),
        ("jdoe@GoogleMail.com", "POP3", "pop.gmail.com", 995, "POP3"),
        ("it@outlook.com", "IMAP", "outlook.office365.com", 993, "IMAP"),
        ("me@hotmail.com", "POP3", "outlook.office365.com", 995, "POP3"),
        ("x@yahoo.com", "IMAP", "imap.mail.yahoo.com", 993, "IMAP"),
        # iCloud has no POP3: IMAP is offered instead of a setting that cannot work.
        ("x@icloud.com", "POP3", "imap.mail.me.com", 993, "IMAP"),
    ],
)
def test_known_providers(account: str, kind: str, host: str, port: int, got_kind: str) -> None:
    found = suggest(account, kind)
    assert found is not None
    assert (found.host, found.port, found.mailbox_type) == (host, port, MailboxType(got_kind))


@pytest.mark.parametrize("account", ["support@contoso.com", "no-at-sign", "", "a@gmail.com.evil"])
def test_unknown_or_malformed_accounts_get_nothing(account: str) -> None:
    assert suggest(account, "IMAP") is None


def test_the_note_warns_about_app_passwords() -> None:
    found = suggest("a@yahoo.com", "IMAP")
    assert found is not None and "app password" in found.note
