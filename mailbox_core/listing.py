"""The Mailboxes list as plain rows: only displayable, non-secret columns."""

from __future__ import annotations

from typing import Any

from mailbox_core.schemas import LABELS, AuditPublic, HealthPublic, MailboxPublic, Status

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


def audit_rows(events: list[AuditPublic]) -> list[dict[str, Any]]:
    """The Activity table: one row per event, changes as "Label: old → new"."""
    return [
        {
            "When": e.at,
            "Who": e.actor,
            "Action": e.action,
            "Mailbox": f"{e.mailbox_name} (ID {e.mailbox_id})",
            "Changes": describe_changes(e.changes),
        }
        for e in events
    ]


def describe_changes(changes: dict[str, Any]) -> str:
    """ "Port: 110 → 995; Password: changed" (secrets are never recorded by value)."""
    parts = []
    for field, change in changes.items():
        label = LABELS.get(field, field)
        if isinstance(change, list) and len(change) == 2:
            old, new = (_shown(v) for v in change)
            parts.append(f"{label}: {new}" if change[0] is None else f"{label}: {old} → {new}")
        else:
            parts.append(f"{label}: {change}")
    return "; ".join(parts)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "—" if value in (None, "") else str(value)
