"""The anchor of the form figure in bench/list_page.py: New Mailbox's widgets, nothing else.

The same widgets in the same rows (Advanced's check interval, quota warnings and backlog
threshold of issues 13 and 15 included), on a page file under st.navigation (as the app's pages
are), with the Port following the Mailbox Type; no sign-in gate, no settings, no core, no
database. Run by AppTest; never part of the app.
"""

import streamlit as st

st.navigation([st.Page("bare_form_page.py", title="New Mailbox", default=True)]).run()
