"""Mailboxes: the list of every registered mailbox (never a secret)."""

import pandas as pd
import streamlit as st

from mailbox_core.errors import MailboxCoreError
from mailbox_core.listing import COLUMNS, mailbox_rows
from ui import runtime
from ui.navigation import NEW_MAILBOX_PAGE, pop_flash

st.title("Mailboxes")
if message := pop_flash():
    st.success(message, icon=":material/check_circle:")

if st.button("New Mailbox", type="primary", icon=":material/add:"):
    st.switch_page(NEW_MAILBOX_PAGE)

try:
    service = runtime.service()
    mailboxes = service.list_mailboxes()
    unreadable = service.undecryptable_mailboxes()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

if unreadable:
    names = ", ".join(f"“{m.name}” (ID {m.id})" for m in unreadable)
    st.error(
        f"The configured encryption keys cannot decrypt the secrets of {names}. Add the key "
        "they were saved with to MAILBOX_ENCRYPTION_KEYS (or restore data/secret.key). "
        "Nothing has been changed or lost."
    )

if not mailboxes:
    st.info(
        "No mailboxes yet. Press **New Mailbox** to register the first mailbox your "
        "helpdesk should poll.",
        icon=":material/inbox:",
    )
    st.stop()

active = sum(1 for m in mailboxes if m.status.value == "Active")
noun = "mailbox" if len(mailboxes) == 1 else "mailboxes"
st.caption(f"{len(mailboxes)} {noun}, {active} active.")
st.dataframe(
    # Build the frame from display columns only: a hidden column would still be sent.
    pd.DataFrame(mailbox_rows(mailboxes), columns=list(COLUMNS)),
    hide_index=True,
    width="stretch",
    column_config={
        "ID": st.column_config.NumberColumn("ID", format="%d", width="small"),
        "Port": st.column_config.NumberColumn("Port", format="%d", width="small"),
        "Comments": st.column_config.TextColumn("Comments", width="large"),
    },
)
