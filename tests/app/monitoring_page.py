"""A test page that draws ui/monitoring's pieces for the mailbox ?id=N, as the Edit and
Mailboxes pages will once they are wired in (the integrator's step)."""

import pandas as pd
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
badges = monitoring.list_badges(monitor)
st.dataframe(pd.DataFrame({"ID": list(badges), "Monitoring": list(badges.values())}))
monitoring.failing_chart(monitor)
