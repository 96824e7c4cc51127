"""Edit Mailbox: /edit_mailbox?id=N. Same form and rules as New Mailbox."""

from typing import Any

import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError, MailboxNotFound
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import SECRET_FIELDS, Status
from ui import access, connect, details, form, grant, health, listview, monitoring, runtime, twins
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
    st.switch_page(MAILBOXES_PAGE, query_params=listview.last_shown())
if st.session_state.pop(form.key(PREFIX, "duplicate"), None):
    st.switch_page(NEW_MAILBOX_PAGE)


def back_to_list() -> None:
    """A way back to the list, as it was when the user left it."""
    st.page_link(
        MAILBOXES_PAGE,
        label="Back to Mailboxes",
        query_params=listview.last_shown(),
        icon=":material/arrow_back:",
    )


try:
    mailbox_id = int(st.query_params.get("id", ""))
except ValueError:
    st.error("No mailbox chosen: open one from the Mailboxes list.")
    back_to_list()
    st.stop()
try:
    service = runtime.service()
    mailbox = service.get_mailbox(mailbox_id)
except MailboxNotFound as exc:
    st.error(f"{exc} It may have been deleted.")
    back_to_list()
    st.stop()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

if not actor.can(Permission.EDIT):
    st.title(f"Mailbox: {mailbox.name}")
    st.caption(f"ID {mailbox.id} · {mailbox.status.value} · read-only for your role")
    back_to_list()
    details.show(mailbox)
    health.section(service, mailbox.id)
    grant.section(runtime.monitor(), mailbox.id)
    monitoring.history(runtime.monitor(), mailbox.id)
    monitoring.vital_signs(runtime.monitor(), mailbox.id, actor)
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
back_to_list()
show_flash()


def _test(values: dict[str, Any]) -> ProbeResult:
    return runtime.checker().test_edit(
        mailbox.id,
        values,
        form.cleared_secrets(PREFIX),
        actor=actor,
        connected=connect.reference(PREFIX),
    )


# The actions sit above the form, so they stay in view on a short screen.
with st.container(horizontal=True, gap="small"):
    form.submit_button(
        PREFIX,
        "Save",
        on_click=form.submit_update,
        args=(PREFIX, service, mailbox.id, actor, _done),
    )
    st.button(
        "Test connection", icon=":material/cable:", on_click=form.submit_test, args=(PREFIX, _test)
    )
    st.button("Reload (discard my changes)", on_click=_load)
    st.button("Cancel", on_click=lambda: (form.clear_form(PREFIX), _done("")))
    if mailbox.status is Status.ACTIVE:
        st.button("Deactivate", on_click=_set_status, args=(Status.NOT_ACTIVE,))
    else:
        st.button("Activate", on_click=_set_status, args=(Status.ACTIVE,))
    st.button("Duplicate", on_click=_duplicate, icon=":material/content_copy:")
    if actor.can(Permission.DELETE) and st.button("Delete", icon=":material/delete:"):
        st.session_state[form.key(PREFIX, "confirm_delete")] = True
if st.session_state.get(form.key(PREFIX, "confirm_delete")):
    st.warning(
        f"Delete mailbox “{mailbox.name}” (ID {mailbox.id})? Its settings, secrets and "
        "health history are removed; the Activity page keeps a record."
    )
    with st.container(horizontal=True, gap="small"):
        st.button("Yes, delete", type="primary", on_click=_delete)
        st.button(
            "Keep it",
            on_click=lambda: st.session_state.pop(form.key(PREFIX, "confirm_delete"), None),
        )

form.problems(PREFIX)
if moved := st.session_state.get(form.key(PREFIX, "moved")):
    # The destination changed but a stored secret was left blank: keep it only on purpose.
    names = " and ".join(form.LABELS[f] for f in moved)
    st.checkbox(f"Keep the stored {names} for the new server", key=form.key(PREFIX, "keep_moved"))
if probe := st.session_state.get(form.key(PREFIX, "probe")):
    show_probe(probe, "Connection test (unsaved changes)")

values = form.render(PREFIX)
twins.preview(service, values, mailbox.id)
connect.section(PREFIX, test=_test, values=values, mailbox_id=mailbox.id)

st.divider()
health.section(service, mailbox.id)
monitor = runtime.monitor()
grant.section(monitor, mailbox.id)
monitoring.pause_panel(monitor, runtime.checker(), mailbox.id, actor)
monitoring.history(monitor, mailbox.id)
monitoring.vital_signs(monitor, mailbox.id, actor)
monitoring.alerts(monitor, mailbox.id, actor)
