"""A mailbox's health on its Edit page: the summary and its recent connection tests."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mailbox_core.errors import MailboxCoreError
from mailbox_core.service import MailboxService


def section(service: MailboxService, mailbox_id: int) -> None:
    """Last check, last success, consecutive failures, last error, then the history."""
    st.subheader("Health")
    try:
        current = service.health_of(mailbox_id)
        history = service.recent_checks(mailbox_id)
    except MailboxCoreError as exc:
        st.error(str(exc))
        return
    if current is None:
        st.caption(
            "Never checked. Use Test connection on the Mailboxes page or "
            "`python -m mailbox_core check --id N`."
        )
        return
    last, success, failures = st.columns(3)
    last.metric(
        "Last check",
        "OK" if current.last_ok else "Failed",
        help=f"{current.last_check_at:%Y-%m-%d %H:%M} UTC",
    )
    success.metric(
        "Last success",
        f"{current.last_success_at:%Y-%m-%d %H:%M}" if current.last_success_at else "never",
    )
    failures.metric("Consecutive failures", current.consecutive_failures)
    if not current.last_ok:
        st.error(f"Last error ({current.last_failed_step}): {current.last_message}")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": c.started_at,
                    "Result": "OK" if c.ok else "Failed",
                    "Step": c.failed_step or "",
                    "Message": c.message,
                    "Time (ms)": c.latency_ms,
                    "Messages": c.message_count,
                }
                for c in history
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Time (ms)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
