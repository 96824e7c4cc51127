"""Page paths and the one-shot message shown after an action or a page switch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from mailbox_core.errors import MailboxCoreError

MAILBOXES_PAGE = "pages/mailboxes.py"
NEW_MAILBOX_PAGE = "pages/new_mailbox.py"
EDIT_MAILBOX_PAGE = "pages/edit_mailbox.py"
ACTIVITY_PAGE = "pages/activity.py"
FLASH_KEY = "mailboxes.flash"


def flash(message: str, *, error: bool = False) -> None:
    """Show ``message`` once, on the next run of a page that calls ``show_flash``."""
    if message:
        st.session_state[FLASH_KEY] = (message, error)


def show_flash() -> None:
    """Render and forget the pending message (green, or red for an error)."""
    pending = st.session_state.pop(FLASH_KEY, None)
    if not pending:
        return
    message, error = pending
    if error:
        st.error(message, icon=":material/error:")
    else:
        st.success(message, icon=":material/check_circle:")


def guarded(action: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a button callback: a core error becomes a red message, not a traceback."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
        except MailboxCoreError as exc:
            flash(str(exc), error=True)

    return run
