"""The selection in the Mailboxes table and the actions on it, as far as the actor's role goes.

Streamlit 1.67 quirk: a keyed dataframe's selection is row positions, and it survives new
data, so after a delete the same positions tick other mailboxes (streamlit#17026). Two
rules keep it honest: before the table is drawn, ``follow_selection`` maps the positions
the browser sent (against the rows it showed) to mailbox IDs and ticks those IDs where
they are now; after any bulk action ``clear_selection`` sets the selection to nothing
through session state, which Streamlit sends to the browser too. tests/app/
test_served_app.py ticks, deletes and ticks again in Chromium.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from mailbox_core.access import Actor, Permission
from mailbox_core.listing import MailboxFilter
from mailbox_core.schemas import Status
from mailbox_core.service import MailboxService
from ui import form
from ui.navigation import EDIT_MAILBOX_PAGE, NEW_MAILBOX_PAGE, flash, guarded

TABLE_KEY = "mailboxes.table"
#: The IDs of the rows the table showed last, in order: what the browser's positions mean.
SHOWN_KEY = "mailboxes.table.ids"
ALL_KEY = "mailboxes.all_matching"
ALL_FOR_KEY = "mailboxes.all_matching.for"
CONFIRM_KEY = "mailboxes.confirm"
TEST_KEY = "mailboxes.test_request"
NEW_PREFIX = "new_mailbox"


def _selection(rows: list[int]) -> dict[str, Any]:
    return {"selection": {"rows": rows, "columns": [], "cells": []}}


def _ticked_positions() -> list[int]:
    state = st.session_state.get(TABLE_KEY)
    try:
        rows = state["selection"]["rows"]  # type: ignore[index]
    except (KeyError, TypeError):
        return []
    return [r for r in rows if isinstance(r, int)]


def follow_selection(ids: list[int]) -> None:
    """Before the table is drawn: ticks follow the mailboxes, never a row position."""
    shown: list[int] | None = st.session_state.get(SHOWN_KEY)
    if shown is not None and shown != ids:
        chosen = {shown[r] for r in _ticked_positions() if r < len(shown)}
        st.session_state[TABLE_KEY] = _selection([i for i, m in enumerate(ids) if m in chosen])
    st.session_state[SHOWN_KEY] = ids


def forget() -> None:
    """Drop the table's bookkeeping on a run that shows no table (see listview.forget)."""
    for name in (SHOWN_KEY, ALL_KEY, ALL_FOR_KEY, CONFIRM_KEY):
        st.session_state.pop(name, None)


def clear_selection() -> None:
    """No tick left, in the browser too; no pending confirmation, no "all matching"."""
    st.session_state[TABLE_KEY] = _selection([])
    st.session_state[ALL_KEY] = False
    st.session_state.pop(CONFIRM_KEY, None)


@dataclass(frozen=True)
class Target:
    """What the actions act on: the ticked rows, or every mailbox the view matches."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    where: MailboxFilter | None = None  # set: "all matching" (ids then empty)
    count: int = 0

    @property
    def everything(self) -> bool:
        return self.where is not None

    @property
    def size(self) -> int:
        return self.count if self.everything else len(self.ids)

    def describe(self) -> str:
        if self.everything:
            return f"all {_mailboxes(self.count)} this view matches"
        return ", ".join(f"“{name}”" for name in self.names)


def _mailboxes(count: int) -> str:
    return f"{count:,} mailbox" if count == 1 else f"{count:,} mailboxes"


def target(
    rows: list[int], names: dict[int, str], where: MailboxFilter, matching: int, actor: Actor
) -> Target:
    """The ticked rows (or all matching, when chosen); draws the "Select all" choice."""
    ticked = tuple(rows[r] for r in _ticked_positions() if r < len(rows))
    bulk = any(actor.can(p) for p in (Permission.SET_STATUS, Permission.DELETE, Permission.TEST))
    if not bulk or matching == 0:
        return Target(ticked, tuple(names[i] for i in ticked))
    if st.session_state.get(ALL_FOR_KEY) != where:  # a changed view unticks "all"
        st.session_state[ALL_KEY] = False
    st.session_state[ALL_FOR_KEY] = where
    everything = st.checkbox(
        f"Select all {_mailboxes(matching)} matching",
        key=ALL_KEY,
        help="Act on every mailbox this view matches, on every page (you confirm the count).",
    )
    if everything:
        return Target((), (), where, matching)
    return Target(ticked, tuple(names[i] for i in ticked))


# ---------------------------------------------------------------- the actions


@guarded
def _set_status(service: MailboxService, chosen: Target, status: Status, actor: Actor) -> None:
    if chosen.everything and chosen.where is not None:
        changed = service.set_status_matching(
            chosen.where, status, expected=chosen.count, actor=actor
        )
    else:
        changed = service.set_status(list(chosen.ids), status, actor=actor)
    flash(f"{_mailboxes(changed)} set to {status.value}.")
    clear_selection()


@guarded
def _delete(service: MailboxService, chosen: Target, actor: Actor) -> None:
    if chosen.everything and chosen.where is not None:
        deleted = service.delete_matching(chosen.where, expected=chosen.count, actor=actor)
    else:
        deleted = service.delete_mailboxes(list(chosen.ids), actor=actor)
    flash(f"Deleted {_mailboxes(deleted)}.")
    clear_selection()


def _request_test(service: MailboxService, chosen: Target) -> None:
    ids = service.matching_ids(chosen.where) if chosen.where else list(chosen.ids)
    st.session_state[TEST_KEY] = ids
    st.session_state.pop(CONFIRM_KEY, None)


def _confirm(action: str, chosen: Target) -> None:
    st.session_state[CONFIRM_KEY] = (action, chosen)


def pending_test() -> list[int] | None:
    """The mailboxes whose Test connection was asked for in this run (once)."""
    ids: list[int] | None = st.session_state.pop(TEST_KEY, None)
    return ids


def action_bar(service: MailboxService, chosen: Target, actor: Actor) -> None:
    """Caption and buttons for the target; a test asked for is left for ``pending_test``."""
    st.caption(f"Selected: {chosen.describe()}" if chosen.size else "Select rows to act on them.")
    can = actor.can
    single = not chosen.everything and len(chosen.ids) == 1
    with st.container(horizontal=True, gap="small"):
        # A viewer opens the same page read-only.
        label = "Edit" if can(Permission.EDIT) else "View"
        if st.button(label, disabled=not single, icon=":material/edit:"):
            st.switch_page(EDIT_MAILBOX_PAGE, query_params={"id": str(chosen.ids[0])})
        if can(Permission.DUPLICATE) and st.button(
            "Duplicate", disabled=not single, icon=":material/content_copy:"
        ):
            _duplicate(service, chosen.ids[0], actor)
        if can(Permission.TEST):
            _button("Test connection", "test", chosen, service, actor, ":material/cable:")
        if can(Permission.SET_STATUS):
            _button("Activate", "activate", chosen, service, actor)
            _button("Deactivate", "deactivate", chosen, service, actor)
        if can(Permission.DELETE):
            _button("Delete", "delete", chosen, service, actor, ":material/delete:")
    _confirmation(service, chosen, actor)


_VERBS = {"activate": "Activate", "deactivate": "Deactivate", "delete": "Delete", "test": "Test"}
_STATUS = {"activate": Status.ACTIVE, "deactivate": Status.NOT_ACTIVE}


def _do(action: str, service: MailboxService, chosen: Target, actor: Actor) -> Any:
    """The callback and its arguments that carry out ``action`` on ``chosen``."""
    if action == "delete":
        return _delete, (service, chosen, actor)
    if action == "test":
        return _request_test, (service, chosen)
    return _set_status, (service, chosen, _STATUS[action], actor)


def _button(
    label: str,
    action: str,
    chosen: Target,
    service: MailboxService,
    actor: Actor,
    icon: str | None = None,
) -> None:
    """Test the ticked rows, or act on one ticked row, at once; anything more is confirmed
    first, naming what it acts on (Deactivate asks nothing and would hit whoever is ticked)."""
    one = chosen.size == 1 and not chosen.everything
    at_once = (action == "test" and not chosen.everything) or (one and action != "delete")
    confirm = (_confirm, (action, chosen))
    callback, args = _do(action, service, chosen, actor) if at_once else confirm
    st.button(label, disabled=not chosen.size, icon=icon, on_click=callback, args=args)


def _confirmation(service: MailboxService, chosen: Target, actor: Actor) -> None:
    pending = st.session_state.get(CONFIRM_KEY)
    if not pending or pending[1] != chosen or not chosen.size:
        return
    action = pending[0]
    verb = _VERBS[action]
    if chosen.everything:
        text = f"{verb} {chosen.describe()}?"
    else:
        text = f"{verb} {_mailboxes(chosen.size)}: {chosen.describe()}?"
    if action == "delete":
        text += (
            " Their settings, secrets and health history are removed; the Activity page "
            "keeps a record."
        )
    st.warning(text, icon=":material/warning:")
    callback, args = _do(action, service, chosen, actor)
    with st.container(horizontal=True, gap="small"):
        st.button(
            f"Yes, {verb.lower()} {chosen.size:,}", type="primary", on_click=callback, args=args
        )
        st.button("Keep them", on_click=lambda: st.session_state.pop(CONFIRM_KEY, None))


def _duplicate(service: MailboxService, mailbox_id: int, actor: Actor) -> None:
    name = service.copy_name(mailbox_id, actor=actor)
    form.seed(NEW_PREFIX, {**form.form_values(service.get_mailbox(mailbox_id)), "name": name})
    st.session_state.pop(CONFIRM_KEY, None)  # leaving the page drops the table's ticks
    st.switch_page(NEW_MAILBOX_PAGE)
