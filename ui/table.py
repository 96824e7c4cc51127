"""What the lists show: the core's rows as table columns, labels and badges (display only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from mailbox_core.listing import ListRow, State
from mailbox_core.monitoring import rules
from mailbox_core.schemas import LABELS, AuditPublic

#: The Mailboxes table: the row's identity and health first, then its settings.
COLUMNS = (
    "ID", "Name", "State", "Signs", "Last check", "Last error", "Messages", "Mailbox Type", "Host",
    "Port", "Account", "Status", "OAuth", "Failing since", "SSL Enabled", "STARTTLS",
    "Certificate", "Comments", "Same mailbox",
)  # fmt: skip
STATE_COLORS = {
    State.FAILING: "#c62828",
    State.NOT_CHECKED: "#757575",
    State.OK: "#2e7d32",
    State.INACTIVE: "#9e9e9e",
}
#: Shown for a missing value instead of Streamlit's "None".
EMPTY = "—"


def mailbox_frame(rows: list[ListRow], now: datetime | None = None) -> pd.DataFrame:
    """One page of the list as the table's columns; nothing secret can reach it."""
    moment = now or datetime.now(UTC)
    records = [_record(row, moment) for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for column in ("Last check", "Failing since"):
        frame[column] = pd.to_datetime(frame[column], utc=True)  # SQLite returns naive UTC
    frame["Messages"] = frame["Messages"].astype("Int64")
    return frame


def signs(row: ListRow, now: datetime) -> list[str]:
    """The badges beside the state: "Paused", "Near full 92 %", "Backlog 3 h", …"""
    found = []
    if row.paused_until is not None and _aware(row.paused_until) > now:
        reason = (row.pause_reason or "sign-in refused")[:60]
        found.append(f"Paused ({reason})")
    for what, moment, thresholds in (
        ("Secret", row.client_expires, rules.SECRET_THRESHOLDS),
        ("Certificate", row.cert_not_after, rules.CERT_THRESHOLDS),
    ):
        if moment is not None:
            days = rules.days_until(moment, now)
            if days < 0:
                found.append(f"{what} expired")
            elif days <= max(thresholds):
                found.append(f"{what} expires in {int(days)} d")
    if row.quota_level is not None and row.quota_ratio is not None:
        found.append(f"Near full {int(row.quota_ratio * 100)} %")
    if row.backlog_over and row.oldest_unseen_at is not None:
        found.append(f"Backlog {rules.short_age(now - _aware(row.oldest_unseen_at))}")
    if row.offer_changed_at is not None:
        found.append("Sign-in rules changed")
    if row.signin_lost:
        found.append("No password sign-in")
    return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite: naive UTC


def _record(row: ListRow, now: datetime) -> tuple[Any, ...]:
    error = ""
    if row.last_ok is False:
        error = f"{row.last_failed_step or 'Check'}: {row.last_message}"
    return (
        row.id,
        row.name,
        [row.state.value],
        signs(row, now),
        row.last_check_at,
        error,
        row.last_message_count,
        row.mailbox_type,
        row.host,
        row.port,
        row.account,
        row.status,
        row.oauth,
        row.failing_since,
        "Yes" if row.ssl_enabled else "No",
        EMPTY if row.ssl_enabled else ("Yes" if row.starttls else "No"),
        "Self-signed allowed" if row.allow_self_signed else "Verified",
        row.comments or "",
        _twin(row),
    )


def _twin(row: ListRow) -> str:
    """The "Same mailbox twice" flag: another mailbox polls this server and account too."""
    return f"Same mailbox twice (as ID {row.twin_of})" if row.twin_of is not None else ""


def mailbox_columns() -> dict[str, Any]:
    """column_config for the Mailboxes table: badges, readable times, pinned identity."""
    column = st.column_config
    return {
        "ID": column.NumberColumn("ID", format="%d", width="small", pinned=True),
        "Name": column.TextColumn("Name", pinned=True),
        "State": column.MultiselectColumn(
            "State",
            options=[s.value for s in State],
            color=[STATE_COLORS[s] for s in State],
            help="OK or Failing: the last connection test; Inactive: Status is Not Active.",
            width="small",
        ),
        "Signs": column.ListColumn(
            "Signs",
            help="Paused (the scheduler stopped checking after a refused sign-in; the Edit "
            "page says until when), Secret / Certificate expires in N d (30 days ahead). "
            "Vital signs: Near full (past a quota warning), Backlog "
            "(the oldest unseen message waits longer than its threshold), Sign-in rules "
            "changed, No password sign-in. A quota or backlog the server does not report "
            "shows nothing: unknown.",
            width="medium",
        ),
        "Last check": column.DatetimeColumn(
            "Last check", format="distance", help="When the last connection test ran."
        ),
        "Last error": column.TextColumn("Last error", width="large"),
        "Messages": column.NumberColumn("Messages", format="%d", width="small"),
        "Port": column.NumberColumn("Port", format="%d", width="small"),
        "Failing since": column.DatetimeColumn("Failing since", format="distance"),
        "Comments": column.TextColumn("Comments", width="medium"),
    }


def audit_frame(events: list[AuditPublic]) -> pd.DataFrame:
    """The Activity table: one row per event, changes as "Label: old → new"."""
    rows = [
        {
            "When": e.at,
            "Who": e.actor,
            "Action": e.action,
            "Mailbox": f"{e.mailbox_name} (ID {e.mailbox_id})",
            "Changes": describe_changes(e.changes),
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=["When", "Who", "Action", "Mailbox", "Changes"])


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
    return EMPTY if value in (None, "") else str(value)
