"""Same mailbox twice, on the form: before saving (host names) and after (stored addresses).

A warning, never a refusal: the save goes through, and the page says which mailbox this
one duplicates. The core compares (mailbox_core/twins.py); this module only words it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from mailbox_core.errors import MailboxCoreError
from mailbox_core.service import MailboxService
from mailbox_core.twins import Twin
from ui.navigation import flash_warning


def message(twins: list[Twin]) -> str:
    """ "Same mailbox as “X” (ID n): two pollers on one mailbox make duplicate tickets"."""
    named = ", ".join(f"“{t.name}” (ID {t.id})" for t in twins)
    return f"Same mailbox as {named}: two pollers on one mailbox make duplicate tickets"


def after_save(service: MailboxService, mailbox_id: int) -> None:
    """After a save: warn on the next page when the mailbox is registered twice."""
    try:
        found = service.twins_of(mailbox_id)
    except MailboxCoreError:
        return  # the save went through; the list still flags it
    if found:
        flash_warning(message(found))


def preview(
    service: MailboxService, values: Mapping[str, Any], mailbox_id: int | None = None
) -> None:
    """Before saving: the form's Host and Account against the saved mailboxes."""
    try:
        found = service.same_mailbox(
            host=str(values.get("host") or ""),
            account=str(values.get("account") or ""),
            mailbox_id=mailbox_id,
        )
    except MailboxCoreError:
        return
    if found:
        st.warning(message(found), icon=":material/content_copy:")
