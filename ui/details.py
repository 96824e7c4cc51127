"""A mailbox's settings, read-only, for people who may look but not edit (viewers)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mailbox_core.schemas import LABELS, SECRET_FIELDS, MailboxPublic, visible_fields
from ui.form import form_values


def show(mailbox: MailboxPublic) -> None:
    """Every setting that applies to this mailbox; secrets only as set / not set."""
    values = form_values(mailbox)
    rows = []
    for field in visible_fields(values):
        if field in SECRET_FIELDS:
            shown = "set" if getattr(mailbox, f"has_{field}") else "not set"
        else:
            value = values[field]
            shown = ("Yes" if value else "No") if isinstance(value, bool) else str(value or "—")
        rows.append({"Setting": LABELS[field], "Value": shown})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
