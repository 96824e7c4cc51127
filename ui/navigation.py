"""Page paths and the one-shot confirmation shown after a page switch."""

import streamlit as st

MAILBOXES_PAGE = "pages/mailboxes.py"
NEW_MAILBOX_PAGE = "pages/new_mailbox.py"
EDIT_MAILBOX_PAGE = "pages/edit_mailbox.py"
ACTIVITY_PAGE = "pages/activity.py"
FLASH_KEY = "mailboxes.flash"


def flash(message: str) -> None:
    """Show ``message`` once on the Mailboxes page."""
    st.session_state[FLASH_KEY] = message


def pop_flash() -> str | None:
    message: str | None = st.session_state.pop(FLASH_KEY, None)
    return message or None
