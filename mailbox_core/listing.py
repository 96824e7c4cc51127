"""The Mailboxes list as plain rows: only displayable, non-secret columns."""

from __future__ import annotations

from typing import Any

from mailbox_core.schemas import HealthPublic, MailboxPublic, Status

#: Column order of the Mailboxes table (SPEC §1, then health).
COLUMNS = (
    "ID", "Name", "Mailbox Type", "Host", "Port", "Account", "SSL Enabled", "STARTTLS",
    "Certificate", "Status", "OAuth", "Comments", "Last check", "Result", "Messages",
    "Failing since",
)  # fmt: skip


def mailbox_rows(
    mailboxes: list[MailboxPublic], health: dict[int, HealthPublic] | None = None
) -> list[dict[str, Any]]:
    """One dict per mailbox with exactly ``COLUMNS``; nothing secret can reach it."""
    health = health or {}
    return [{**_settings_columns(m), **_health_columns(health.get(m.id))} for m in mailboxes]


def health_summary(
    mailboxes: list[MailboxPublic], health: dict[int, HealthPublic]
) -> dict[str, int]:
    """Counts for the summary: active, healthy, failing and never checked (active only)."""
    active = [m for m in mailboxes if m.status is Status.ACTIVE]
    checked = [health[m.id] for m in active if m.id in health]
    return {
        "active": len(active),
        "healthy": sum(h.last_ok for h in checked),
        "failing": sum(not h.last_ok for h in checked),
        "not checked": len(active) - len(checked),
    }


def _settings_columns(mailbox: MailboxPublic) -> dict[str, Any]:
    oauth = "No"
    if mailbox.oauth_enabled and mailbox.oauth_provider:
        oauth = mailbox.oauth_provider.value
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


def _health_columns(health: HealthPublic | None) -> dict[str, Any]:
    if health is None:
        return {"Last check": None, "Result": "Not checked", "Messages": None,
                "Failing since": None}  # fmt: skip
    return {
        "Last check": health.last_check_at,
        "Result": "OK" if health.last_ok else f"Failed: {health.last_failed_step or 'check'}",
        "Messages": health.last_message_count,
        "Failing since": health.failing_since,
    }
