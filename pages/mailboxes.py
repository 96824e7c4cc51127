"""Mailboxes: every registered mailbox with its health (never a secret)."""

import pandas as pd
import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError
from mailbox_core.listing import COLUMNS, health_summary, mailbox_rows
from ui import access, bulk, checks, monitoring, runtime, transfer
from ui.navigation import NEW_MAILBOX_PAGE, require_entrypoint, show_flash
from ui.results import show_probe

require_entrypoint()
actor = access.require(Permission.VIEW)

st.title("Mailboxes")
show_flash()

new, check_all, _ = st.columns([1, 2, 3])
if actor.can(Permission.CREATE) and new.button(
    "New Mailbox", type="primary", icon=":material/add:"
):
    st.switch_page(NEW_MAILBOX_PAGE)
run_check_all = actor.can(Permission.CHECK_ALL) and check_all.button(
    "Check all active mailboxes", icon=":material/network_check:"
)

try:
    service, checker = runtime.service(), runtime.checker()
    if run_check_all:
        checks.check_all(checker, actor)
    mailboxes = service.list_mailboxes()
    health = service.health()
    unreadable = service.undecryptable_mailboxes()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

monitoring.banner(runtime.monitor())
if unreadable:
    names = ", ".join(f"“{m.name}” (ID {m.id})" for m in unreadable)
    st.error(
        f"The configured encryption keys cannot decrypt the secrets of {names}. Add the key "
        "they were saved with to MAILBOX_ENCRYPTION_KEYS (or restore data/secret.key). "
        "Nothing has been changed or lost."
    )

if not mailboxes:
    st.info(
        "No mailboxes yet. Press **New Mailbox** to register the first mailbox your "
        "helpdesk should poll, or import them below."
        if actor.can(Permission.CREATE)
        else "No mailboxes yet. An editor can register the first one.",
        icon=":material/inbox:",
    )
    if actor.can(Permission.IMPORT):
        transfer.import_section(service)
    st.stop()

counts = health_summary(mailboxes, health)
noun = "mailbox" if len(mailboxes) == 1 else "mailboxes"
st.caption(f"{len(mailboxes)} {noun}, {counts['active']} active.")
metrics, chart = st.columns([3, 2])
with metrics:
    active, healthy, failing = st.columns(3)
    active.metric("Active", counts["active"])
    healthy.metric("Healthy", counts["healthy"])
    failing.metric("Failing", counts["failing"])
with chart:
    st.bar_chart(
        pd.DataFrame({"mailboxes": counts}).drop(index="active"), height=140, horizontal=True
    )

frame = pd.DataFrame(mailbox_rows(mailboxes, health), columns=list(COLUMNS))
# The frame holds display columns only: a hidden column would still reach the browser.
event = st.dataframe(
    frame,
    key=bulk.TABLE_KEY,
    on_select="rerun",
    selection_mode="multi-row",
    hide_index=True,
    width="stretch",
    column_config={
        # Pinned: the health columns sit far right (SPEC §1 order); the row stays named.
        "ID": st.column_config.NumberColumn("ID", format="%d", width="small", pinned=True),
        "Name": st.column_config.TextColumn("Name", pinned=True),
        "Port": st.column_config.NumberColumn("Port", format="%d", width="small"),
        "Comments": st.column_config.TextColumn("Comments", width="medium"),
        "Last check": st.column_config.DatetimeColumn("Last check", format="distance"),
        "Failing since": st.column_config.DatetimeColumn("Failing since", format="distance"),
        "Messages": st.column_config.NumberColumn("Messages", format="%d"),
    },
)
by_id = {m.id: m for m in mailboxes}
selected = [by_id[int(frame.iloc[row]["ID"])] for row in event.selection.rows if row < len(frame)]
if bulk.action_bar(service, selected, actor):
    try:
        with st.spinner("Testing…"):
            checks.test_selected(checker, [m.id for m in selected], actor)
    except MailboxCoreError as exc:
        st.error(str(exc))
    else:
        st.rerun()

for mailbox_id, result in checks.stored_results().items():
    if mailbox_id in by_id:
        show_probe(result, f"{by_id[mailbox_id].name} (ID {mailbox_id})")

st.divider()
if actor.can(Permission.EXPORT):
    transfer.export_buttons(mailboxes)
if actor.can(Permission.IMPORT):
    transfer.import_section(service)
