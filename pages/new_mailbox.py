"""New Mailbox: the form; OK saves through the core and returns to the list."""

from functools import partial

import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError
from ui import access, connect, form, runtime
from ui.navigation import MAILBOXES_PAGE, flash, require_entrypoint
from ui.results import show_probe

require_entrypoint()
actor = access.require(Permission.CREATE)

PREFIX = "new_mailbox"

if st.session_state.pop(form.key(PREFIX, "done"), False):
    st.switch_page(MAILBOXES_PAGE)

st.title("New Mailbox")
try:
    service = runtime.service()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

form.init_state(PREFIX)
form.render(PREFIX)

errors = st.session_state.get(form.key(PREFIX, "errors"))
if errors:
    st.error(f"Nothing was saved. Please correct: {', '.join(form.LABELS[f] for f in errors)}.")
if failure := st.session_state.get(form.key(PREFIX, "failure")):
    st.error(failure)


test_values = partial(
    runtime.checker().test_values, actor=actor, connected=connect.reference(PREFIX)
)
connect.section(PREFIX, test=test_values)


def _saved(message: str) -> None:
    flash(message)
    st.session_state[form.key(PREFIX, "done")] = True


def _cancel() -> None:
    form.clear_form(PREFIX)
    st.session_state[form.key(PREFIX, "done")] = True


ok, test, cancel, _ = st.columns([1, 2, 1, 4])
ok.button("OK", type="primary", on_click=form.submit_create, args=(PREFIX, service, actor, _saved))
test.button(
    "Test connection",
    icon=":material/cable:",
    on_click=form.submit_test,
    args=(PREFIX, test_values),
)

cancel.button("Cancel", on_click=_cancel)

if probe := st.session_state.get(form.key(PREFIX, "probe")):
    show_probe(probe, "Connection test")
