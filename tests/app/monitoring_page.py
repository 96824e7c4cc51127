"""A test page that draws ui/monitoring's pieces for the mailbox ?id=N on their own (the
Edit and Mailboxes pages draw them among everything else)."""

import streamlit as st

from mailbox_core.access import Actor
from ui import monitoring, runtime

actor = Actor.local("tester")
monitor, checker = runtime.monitor(), runtime.checker()
mailbox_id = int(st.query_params.get("id", "1"))
monitoring.banner(monitor)
monitoring.pause_panel(monitor, checker, mailbox_id, actor)
monitoring.history(monitor, mailbox_id)
monitoring.alerts(monitor, mailbox_id, actor)
monitoring.failing_chart(monitor)
