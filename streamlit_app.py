"""Mailbox Manager entrypoint: page config, the sign-in gate, st.navigation over pages/."""

import streamlit as st

from ui import access, runtime
from ui.navigation import forget_list, is_list, pages_for

st.set_page_config(page_title="Mailbox Manager", page_icon=":material/mail:", layout="wide")

# Nothing below the gate runs for an anonymous visitor or a user without a role, whatever
# URL was opened: the page list itself holds only what the actor's role may use.
with runtime.one_run():  # settings and services read once for the gate and the page
    actor = access.gate()
    page = st.navigation(pages_for(actor))
    if not is_list(page):
        forget_list()  # the list's view lives in the URL; its widget values would only weigh
    page.run()
