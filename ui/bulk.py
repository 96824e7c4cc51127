"""Actions on the rows selected in the Mailboxes table, as far as the actor's role goes."""

from __future__ import annotations

import streamlit as st

from mailbox_core.access import Actor, Permission
from mailbox_core.schemas import MailboxPublic, Status
from mailbox_core.service import MailboxService
from ui import form
from ui.navigation import EDIT_MAILBOX_PAGE, NEW_MAILBOX_PAGE, flash, guarded

TABLE_KEY = "mailboxes.table"
CONFIRM_KEY = "mailboxes.confirm_delete"
NEW_PREFIX = "new_mailbox"


def _forget_selection() -> None:
    # Row positions change after a bulk action: never let a stale selection act again.
    st.session_state.pop(TABLE_KEY, None)
    st.session_state.pop(CONFIRM_KEY, None)


@guarded
def _set_status(service: MailboxService, ids: list[int], status: Status, actor: Actor) -> None:
    changed = service.set_status(ids, status, actor=actor)
    flash(f"{changed} mailbox{'es' if changed != 1 else ''} set to {status.value}.")
    _forget_selection()


@guarded
def _delete(service: MailboxService, ids: list[int], actor: Actor) -> None:
    deleted = service.delete_mailboxes(ids, actor=actor)
    flash(f"Deleted {deleted} mailbox{'es' if deleted != 1 else ''}.")
    _forget_selection()


def action_bar(service: MailboxService, selected: list[MailboxPublic], actor: Actor) -> bool:
    """Buttons for the selection; returns True when Test connection was pressed."""
    ids = [m.id for m in selected]
    names = ", ".join(f"“{m.name}”" for m in selected)
    st.caption(f"Selected: {names}" if selected else "Select rows to act on them.")
    can = actor.can
    edit, copy, test, activate, deactivate, delete = st.columns([1, 1, 2, 1, 1, 1])
    # A viewer opens the same page read-only.
    label = "Edit" if can(Permission.EDIT) else "View"
    if edit.button(label, disabled=len(selected) != 1, icon=":material/edit:"):
        st.switch_page(EDIT_MAILBOX_PAGE, query_params={"id": str(ids[0])})
    if can(Permission.DUPLICATE) and copy.button(
        "Duplicate", disabled=len(selected) != 1, icon=":material/content_copy:"
    ):
        name = service.copy_name(ids[0], actor=actor)
        form.seed(NEW_PREFIX, {**form.form_values(selected[0]), "name": name})
        _forget_selection()
        st.switch_page(NEW_MAILBOX_PAGE)
    pressed_test = can(Permission.TEST) and test.button(
        "Test connection", disabled=not selected, icon=":material/cable:"
    )
    if can(Permission.SET_STATUS):
        for column, status, text in (
            (activate, Status.ACTIVE, "Activate"),
            (deactivate, Status.NOT_ACTIVE, "Deactivate"),
        ):
            column.button(
                text,
                disabled=not selected,
                on_click=_set_status,
                args=(service, ids, status, actor),
            )
    if can(Permission.DELETE):
        _delete_with_confirmation(delete, service, selected, actor)
    return bool(pressed_test)


def _delete_with_confirmation(
    column: st.delta_generator.DeltaGenerator,
    service: MailboxService,
    selected: list[MailboxPublic],
    actor: Actor,
) -> None:
    ids = [m.id for m in selected]
    if column.button("Delete", disabled=not selected, icon=":material/delete:"):
        st.session_state[CONFIRM_KEY] = ids
    if selected and st.session_state.get(CONFIRM_KEY) == ids:
        names = ", ".join(f"“{m.name}”" for m in selected)
        st.warning(
            f"Delete {len(ids)} mailbox{'es' if len(ids) != 1 else ''}: {names}? "
            "Their settings, secrets and health history are removed; the Activity "
            "page keeps a record."
        )
        yes, no, _ = st.columns([1, 1, 4])
        yes.button(
            f"Yes, delete {len(ids)}", type="primary", on_click=_delete, args=(service, ids, actor)
        )
        no.button("Keep them", on_click=lambda: st.session_state.pop(CONFIRM_KEY, None))
