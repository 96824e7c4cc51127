"""Activity: the audit trail of every change, filterable by mailbox."""

import pandas as pd
import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError
from mailbox_core.listing import audit_rows
from ui import access, runtime
from ui.navigation import require_entrypoint

require_entrypoint()
access.require(Permission.VIEW)

ALL = "All mailboxes"

st.title("Activity")
st.caption("Who changed which mailbox, and how. Secret values are never recorded.")
try:
    service = runtime.service()
    events = service.list_audit(limit=2000)
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

choices = {f"{e.mailbox_name} (ID {e.mailbox_id})": e.mailbox_id for e in reversed(events)}
choice = st.selectbox("Mailbox", [ALL, *sorted(choices)], key="activity.mailbox")
if choice != ALL:
    events = [e for e in events if e.mailbox_id == choices[choice]]

if not events:
    st.info("Nothing has happened yet.", icon=":material/history:")
    st.stop()
st.dataframe(
    pd.DataFrame(audit_rows(events)),
    hide_index=True,
    width="stretch",
    column_config={
        "When": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
        "Changes": st.column_config.TextColumn("Changes", width="large"),
    },
)
