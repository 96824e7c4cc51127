"""Mailbox Manager entrypoint: page config, the sign-in gate, st.navigation over pages/."""

import streamlit as st

from ui import access
from ui.navigation import pages_for

st.set_page_config(page_title="Mailbox Manager", page_icon=":material/mail:", layout="wide")

# Nothing below the gate runs for an anonymous visitor or a user without a role, whatever
# URL was opened: the page list itself holds only what the actor's role may use.
actor = access.gate()
st.navigation(pages_for(actor)).run()
