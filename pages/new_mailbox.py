"""New Mailbox: the form; OK saves through the core and returns to the list."""

from functools import partial

import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError
from ui import access, connect, form, listview, runtime, twins
from ui.navigation import MAILBOXES_PAGE, flash, require_entrypoint
from ui.results import show_probe

require_entrypoint()
actor = access.require(Permission.CREATE)

PREFIX = "new_mailbox"
#: The list newest first, so the mailbox just saved is its first row at any size.
NEWEST_FIRST = {"order": "desc"}

if (back := st.session_state.pop(form.key(PREFIX, "done"), None)) is not None:
    st.switch_page(MAILBOXES_PAGE, query_params=back)

st.title("New Mailbox")
try:
    service = runtime.service()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

form.init_state(PREFIX)
values = form.render(PREFIX)
twins.preview(service, values)
form.problems(PREFIX)


test_values = partial(
    runtime.checker().test_values, actor=actor, connected=connect.reference(PREFIX)
)
connect.section(PREFIX, test=test_values, values=values)


def _saved(message: str) -> None:
    flash(message)
    st.session_state[form.key(PREFIX, "done")] = NEWEST_FIRST


def _cancel() -> None:
    form.clear_form(PREFIX)
    st.session_state[form.key(PREFIX, "done")] = listview.last_shown()


with st.container(horizontal=True, gap="small"):
    form.submit_button(
        PREFIX, "OK", on_click=form.submit_create, args=(PREFIX, service, actor, _saved)
    )
    st.button(
        "Test connection",
        icon=":material/cable:",
        on_click=form.submit_test,
        args=(PREFIX, test_values),
    )
    st.button("Cancel", on_click=_cancel)

if probe := st.session_state.get(form.key(PREFIX, "probe")):
    show_probe(probe, "Connection test")
