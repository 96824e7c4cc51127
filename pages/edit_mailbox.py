"""Edit Mailbox: /edit_mailbox?id=N. Same form and rules as New Mailbox."""

from typing import Any

import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError, MailboxNotFound
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import SECRET_FIELDS, Status
from ui import access, connect, details, form, health, monitoring, runtime
from ui.navigation import (
    MAILBOXES_PAGE,
    NEW_MAILBOX_PAGE,
    flash,
    guarded,
    require_entrypoint,
    show_flash,
)
from ui.results import show_probe

require_entrypoint()
actor = access.require(Permission.VIEW)

PREFIX = "edit_mailbox"
NEW_PREFIX = "new_mailbox"

if st.session_state.pop(form.key(PREFIX, "done"), None):
    st.switch_page(MAILBOXES_PAGE)
if st.session_state.pop(form.key(PREFIX, "duplicate"), None):
    st.switch_page(NEW_MAILBOX_PAGE)

try:
    mailbox_id = int(st.query_params.get("id", ""))
except ValueError:
    st.error("No mailbox chosen: open one from the Mailboxes list.")
    st.page_link(MAILBOXES_PAGE, label="Back to Mailboxes", icon=":material/arrow_back:")
    st.stop()
try:
    service = runtime.service()
    mailbox = service.get_mailbox(mailbox_id)
except MailboxNotFound as exc:
    st.error(f"{exc} It may have been deleted.")
    st.page_link(MAILBOXES_PAGE, label="Back to Mailboxes", icon=":material/arrow_back:")
    st.stop()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

if not actor.can(Permission.EDIT):
    st.title(f"Mailbox: {mailbox.name}")
    st.caption(f"ID {mailbox.id} · {mailbox.status.value} · read-only for your role")
    st.page_link(MAILBOXES_PAGE, label="Back to Mailboxes", icon=":material/arrow_back:")
    details.show(mailbox)
    health.section(service, mailbox.id)
    monitoring.history(runtime.monitor(), mailbox.id)
    st.stop()


def _load() -> None:
    stored = {f: getattr(mailbox, f"has_{f}") for f in SECRET_FIELDS}
    form.seed(PREFIX, form.form_values(mailbox), stored)
    st.session_state[form.key(PREFIX, "loaded")] = mailbox.id
    st.session_state[form.key(PREFIX, "version")] = mailbox.version


if st.session_state.get(form.key(PREFIX, "loaded")) != mailbox.id or form.is_fresh(PREFIX):
    _load()


def _done(message: str) -> None:
    flash(message)
    st.session_state[form.key(PREFIX, "done")] = True


@guarded
def _set_status(status: Status) -> None:
    service.set_status([mailbox.id], status, actor=actor)
    form.clear_form(PREFIX)
    _done(f"Mailbox “{mailbox.name}” is now {status.value}.")


@guarded
def _delete() -> None:
    service.delete_mailboxes([mailbox.id], actor=actor)
    form.clear_form(PREFIX)
    _done(f"Mailbox “{mailbox.name}” deleted.")


@guarded
def _duplicate() -> None:
    copy = {**form.form_values(mailbox), "name": service.copy_name(mailbox.id, actor=actor)}
    form.clear_form(PREFIX)
    form.seed(NEW_PREFIX, copy)
    st.session_state[form.key(PREFIX, "duplicate")] = True


st.title(f"Edit Mailbox: {mailbox.name}")
st.caption(
    f"ID {mailbox.id} · {mailbox.status.value} · last changed "
    f"{mailbox.updated_at:%Y-%m-%d %H:%M} UTC · version {mailbox.version}"
)
show_flash()
form.render(PREFIX)

if errors := st.session_state.get(form.key(PREFIX, "errors")):
    st.error(f"Nothing was saved. Please correct: {', '.join(form.LABELS[f] for f in errors)}.")
if failure := st.session_state.get(form.key(PREFIX, "failure")):
    st.error(failure)
if moved := st.session_state.get(form.key(PREFIX, "moved")):
    # The destination changed but a stored secret was left blank: keep it only on purpose.
    names = " and ".join(form.LABELS[f] for f in moved)
    st.checkbox(f"Keep the stored {names} for the new server", key=form.key(PREFIX, "keep_moved"))


def _test(values: dict[str, Any]) -> ProbeResult:
    return runtime.checker().test_edit(
        mailbox.id,
        values,
        form.cleared_secrets(PREFIX),
        actor=actor,
        connected=connect.reference(PREFIX),
    )


connect.section(PREFIX, test=_test, mailbox_id=mailbox.id)


save, test, reload, cancel = st.columns([1, 2, 2, 1])
save.button(
    "Save",
    type="primary",
    on_click=form.submit_update,
    args=(PREFIX, service, mailbox.id, actor, _done),
)
reload.button("Reload (discard my changes)", on_click=_load)
test.button(
    "Test connection", icon=":material/cable:", on_click=form.submit_test, args=(PREFIX, _test)
)
cancel.button("Cancel", on_click=lambda: (form.clear_form(PREFIX), _done("")))

if probe := st.session_state.get(form.key(PREFIX, "probe")):
    show_probe(probe, "Connection test (unsaved changes)")

st.divider()
health.section(service, mailbox.id)
monitor = runtime.monitor()
monitoring.pause_panel(monitor, runtime.checker(), mailbox.id, actor)
monitoring.history(monitor, mailbox.id)
monitoring.alerts(monitor, mailbox.id, actor)

st.divider()
toggle, duplicate, delete, _ = st.columns([1, 1, 1, 3])
if mailbox.status is Status.ACTIVE:
    toggle.button("Deactivate", on_click=_set_status, args=(Status.NOT_ACTIVE,))
else:
    toggle.button("Activate", on_click=_set_status, args=(Status.ACTIVE,))
duplicate.button("Duplicate", on_click=_duplicate, icon=":material/content_copy:")
if actor.can(Permission.DELETE) and delete.button("Delete", icon=":material/delete:"):
    st.session_state[form.key(PREFIX, "confirm_delete")] = True
if st.session_state.get(form.key(PREFIX, "confirm_delete")):
    st.warning(
        f"Delete mailbox “{mailbox.name}” (ID {mailbox.id})? Its settings, secrets and "
        "health history are removed; the Activity page keeps a record."
    )
    yes, no, _ = st.columns([1, 1, 4])
    yes.button("Yes, delete", type="primary", on_click=_delete)
    no.button(
        "Keep it", on_click=lambda: st.session_state.pop(form.key(PREFIX, "confirm_delete"), None)
    )
