"""Mailbox Manager entrypoint: page config and navigation over pages/."""

import streamlit as st

from ui.navigation import MAILBOXES_PAGE, NEW_MAILBOX_PAGE

st.set_page_config(page_title="Mailbox Manager", page_icon=":material/mail:", layout="wide")

pages = [
    st.Page(MAILBOXES_PAGE, title="Mailboxes", icon=":material/inbox:", default=True),
    st.Page(NEW_MAILBOX_PAGE, title="New Mailbox", icon=":material/add_circle:"),
]
st.navigation(pages).run()
