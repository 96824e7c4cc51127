"""The anchor of bench/list_page.py: the least a list page can do with every row.

The whole table's display columns, joined with health, read with pandas and shown in a
selectable dataframe — no paging, no filters, no summary, no sign-in gate. Run by AppTest
with BENCH_DATABASE_URL set; never part of the app.
"""

import os

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, create_engine

QUERY = """
SELECT m.id, m.name, m.mailbox_type, m.host, m.port, m.account, m.ssl_enabled, m.starttls,
       m.allow_self_signed, m.status, m.oauth_enabled, m.oauth_provider, m.comments,
       h.last_check_at, h.last_ok, h.last_failed_step, h.last_message,
       h.last_message_count, h.failing_since
FROM mailbox m LEFT JOIN mailbox_health h ON h.mailbox_id = m.id
ORDER BY m.id
"""


@st.cache_resource
def engine() -> Engine:
    return create_engine(os.environ["BENCH_DATABASE_URL"])


frame = pd.read_sql(QUERY, engine())
event = st.dataframe(
    frame, key="grid", on_select="rerun", selection_mode="multi-row", hide_index=True
)
st.caption(f"Selected rows: {list(event.selection.rows)}")
