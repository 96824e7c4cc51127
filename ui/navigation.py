"""Page paths and the one-shot message shown after an action or a page switch."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import streamlit as st

from mailbox_core.access import Actor, Permission
from mailbox_core.errors import MailboxCoreError

MAILBOXES_PAGE = "pages/mailboxes.py"
NEW_MAILBOX_PAGE = "pages/new_mailbox.py"
EDIT_MAILBOX_PAGE = "pages/edit_mailbox.py"
ACTIVITY_PAGE = "pages/activity.py"
CONNECT_CALLBACK_PAGE = "pages/connect_callback.py"  # config.CONNECT_CALLBACK_PATH
#: The URL path of each page (Streamlit derives it from the file name).
APP_URL_PATHS = tuple(
    Path(page).stem
    for page in (
        MAILBOXES_PAGE,
        NEW_MAILBOX_PAGE,
        EDIT_MAILBOX_PAGE,
        ACTIVITY_PAGE,
        CONNECT_CALLBACK_PAGE,
    )
)
FLASH_KEY = "mailboxes.flash"
#: A warning shown once beside the flash (e.g. "Same mailbox as …" after a save).
FLASH_WARNING_KEY = "mailboxes.flash_warning"
ENTRYPOINT = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def pages_for(actor: Actor) -> list[Any]:
    """The pages this actor's role may use, for st.navigation (a deep link to any other
    page then finds nothing, and each page checks the role again)."""
    pages = [st.Page(MAILBOXES_PAGE, title="Mailboxes", icon=":material/inbox:", default=True)]
    if actor.can(Permission.CREATE):
        pages.append(st.Page(NEW_MAILBOX_PAGE, title="New Mailbox", icon=":material/add_circle:"))
    pages += [
        st.Page(ACTIVITY_PAGE, title="Activity", icon=":material/history:"),
        # Reached from the list with ?id=N (a shareable link), not from the sidebar; a
        # viewer gets the mailbox's details and health there, not the form.
        st.Page(
            EDIT_MAILBOX_PAGE, title="Edit Mailbox", icon=":material/edit:", visibility="hidden"
        ),
        # Where Google or Microsoft sends the browser back (Connect account); the core
        # refuses a role that may not connect.
        st.Page(CONNECT_CALLBACK_PAGE, title="Connect account", visibility="hidden"),
    ]
    return pages


def is_list(page: Any) -> bool:
    """Whether st.navigation chose the Mailboxes list (the default page, at "/")."""
    return bool(page.url_path == "")


def forget_list() -> None:
    """On any other page: drop the list's widget values and table bookkeeping."""
    from ui import bulk, listview  # they import this module

    listview.forget()
    bulk.forget()


def require_entrypoint() -> None:
    """Make a page that Streamlit started without the entrypoint go through it.

    Streamlit 1.67 quirk: with a `pages/` folder beside the entrypoint, a new server runs
    in the legacy pages-folder mode until some run calls st.navigation. If the first
    request is a deep link (say a shared /edit_mailbox?id=3), Streamlit runs that page
    file alone: no page config, the wrong sidebar, and the server stays so until someone
    opens "/". Every page calls this first: in that mode it runs the entrypoint in this
    same run (its st.navigation switches the mode off and runs the wanted page, so the
    URL, query string and any click are kept) and stops. A rerun would not do: AppTest
    resets the mode before every run and the click would be lost.
    tests/app/test_served_app.py covers it in Chromium.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", False):
        code = _entrypoint_code(ENTRYPOINT.stat().st_mtime_ns)
        exec(code, {"__name__": "__main__", "__file__": str(ENTRYPOINT)})
        st.stop()


@functools.lru_cache(maxsize=2)
def _entrypoint_code(modified: int) -> CodeType:
    # Compiled once per version of the file (runpy compiled it on every such run, and
    # AppTest starts every run in that mode).
    return compile(ENTRYPOINT.read_text(encoding="utf-8"), str(ENTRYPOINT), "exec")


def flash(message: str, *, error: bool = False) -> None:
    """Show ``message`` once, on the next run of a page that calls ``show_flash``."""
    if message:
        st.session_state[FLASH_KEY] = (message, error)


def flash_warning(message: str) -> None:
    """Show ``message`` as a warning once, on the next run of a page that calls ``show_flash``."""
    if message:
        st.session_state[FLASH_WARNING_KEY] = message


def show_flash() -> None:
    """Render and forget the pending message (green, or red for an error), then a warning."""
    if warning := st.session_state.pop(FLASH_WARNING_KEY, None):
        st.warning(warning, icon=":material/content_copy:")
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
