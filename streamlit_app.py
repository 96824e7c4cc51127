"""Mailbox Manager entrypoint: page config and st.navigation over pages/."""

import streamlit as st

from ui.navigation import ACTIVITY_PAGE, EDIT_MAILBOX_PAGE, MAILBOXES_PAGE, NEW_MAILBOX_PAGE

st.set_page_config(page_title="Mailbox Manager", page_icon=":material/mail:", layout="wide")

pages = [
    st.Page(MAILBOXES_PAGE, title="Mailboxes", icon=":material/inbox:", default=True),
    st.Page(NEW_MAILBOX_PAGE, title="New Mailbox", icon=":material/add_circle:"),
    st.Page(ACTIVITY_PAGE, title="Activity", icon=":material/history:"),
    # Reached from the list with ?id=N (a shareable link), not from the sidebar.
    st.Page(EDIT_MAILBOX_PAGE, title="Edit Mailbox", icon=":material/edit:", visibility="hidden"),
]
st.navigation(pages).run()
