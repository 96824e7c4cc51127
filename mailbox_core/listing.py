"""The Mailboxes list as plain rows: only displayable, non-secret columns."""

from __future__ import annotations

from typing import Any

from mailbox_core.schemas import MailboxPublic

#: Column order of the Mailboxes table (SPEC §1).
COLUMNS = (
    "ID",
    "Name",
    "Mailbox Type",
    "Host",
    "Port",
    "Account",
    "SSL Enabled",
    "STARTTLS",
    "Certificate",
    "Status",
    "OAuth",
    "Comments",
)


def mailbox_rows(mailboxes: list[MailboxPublic]) -> list[dict[str, Any]]:
    """One dict per mailbox with exactly ``COLUMNS``; nothing secret can reach it."""
    return [_row(mailbox) for mailbox in mailboxes]


def _row(mailbox: MailboxPublic) -> dict[str, Any]:
    oauth = (
        mailbox.oauth_provider.value if mailbox.oauth_enabled and mailbox.oauth_provider else "No"
    )
    return {
        "ID": mailbox.id,
        "Name": mailbox.name,
        "Mailbox Type": mailbox.mailbox_type.value,
        "Host": mailbox.host,
        "Port": mailbox.port,
        "Account": mailbox.account,
        "SSL Enabled": "Yes" if mailbox.ssl_enabled else "No",
        "STARTTLS": "—" if mailbox.ssl_enabled else ("Yes" if mailbox.starttls else "No"),
        "Certificate": "Self-signed allowed" if mailbox.allow_self_signed else "Verified",
        "Status": mailbox.status.value,
        "OAuth": oauth,
        "Comments": mailbox.comments or "",
    }
