"""Mailboxes: find, filter, sort and page the list (in SQL), its health, actions on a selection."""

from collections.abc import Sequence
from typing import Literal

import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError
from mailbox_core.listing import HealthFilter, ListSummary
from mailbox_core.schemas import Status
from ui import access, bulk, checks, listview, monitoring, runtime, table, transfer
from ui.navigation import MAILBOXES_PAGE, NEW_MAILBOX_PAGE, require_entrypoint, show_flash
from ui.results import show_probe

require_entrypoint()
actor = access.require(Permission.VIEW)

st.title("Mailboxes")
show_flash()

with st.container(horizontal=True, gap="small"):
    new = actor.can(Permission.CREATE) and st.button(
        "New Mailbox", type="primary", icon=":material/add:"
    )
    run_check_all = actor.can(Permission.CHECK_ALL) and st.button(
        "Check all active mailboxes", icon=":material/network_check:"
    )
if new:
    st.switch_page(NEW_MAILBOX_PAGE)

try:
    service, checker = runtime.service(), runtime.checker()
    if run_check_all:
        checks.check_all(checker, actor)
    else:
        checks.last_report()
    query = listview.prepare()
    view = service.list_view(query)
    unreadable = service.unreadable_names() if view.summary.unreadable else []
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

monitoring.banner(runtime.monitor())
monitoring.follow_checks(runtime.monitor(), runtime.settings().monitor.list_refresh)
summary = view.summary
if unreadable:
    names = ", ".join(f"“{name}” (ID {mailbox_id})" for mailbox_id, name in unreadable)
    more = summary.unreadable - len(unreadable)
    st.error(
        f"The configured encryption keys cannot decrypt the secrets of {names}"
        f"{f' and {more:,} more' if more else ''}. Add the key they were saved with to "
        "MAILBOX_ENCRYPTION_KEYS (or restore data/secret.key). Nothing has been changed or lost."
    )
    st.page_link(
        MAILBOXES_PAGE,
        label="Show them",
        query_params=listview.link_params(unreadable=True),
        icon=":material/key_off:",
    )

if not summary.total:
    listview.forget()
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


def _summary(counts: ListSummary) -> None:
    """The counts, each a link to the list filtered to it."""
    noun = "mailbox" if counts.total == 1 else "mailboxes"
    st.caption(f"{counts.total:,} {noun}, {counts.active:,} active.")
    active = Status.ACTIVE
    shortcuts = (
        ("Active", counts.active, {"status": active}),
        ("Healthy", counts.healthy, {"status": active, "health": HealthFilter.OK}),
        ("Failing", counts.failing, {"status": active, "health": HealthFilter.FAILING}),
        ("Not checked", counts.not_checked, {"status": active, "health": HealthFilter.NOT_CHECKED}),
        ("Inactive", counts.inactive, {"status": Status.NOT_ACTIVE}),
    )
    _shortcuts(shortcuts)
    if counts.signs:  # only the signs some mailbox shows: the ones that want a look
        signs = listview.FILTERS["vital"]
        found = [(signs.label_of(sign), n, {"vital": sign}) for sign, n in counts.signs.items()]
        # As wide as their links: "Show sign-in rules changed" is cut in 170 px.
        _shortcuts(found, width="content")


def _shortcuts(
    shortcuts: Sequence[tuple[str, int, dict[str, object]]],
    width: int | Literal["content"] = 170,
) -> None:
    with st.container(horizontal=True, gap="small"):
        for label, count, where in shortcuts:
            with st.container(border=True, width=width, gap=None):
                st.metric(label, f"{count:,}")
                st.page_link(
                    MAILBOXES_PAGE,
                    label=f"Show {label[0].lower()}{label[1:]}",
                    query_params=listview.link_params(**where),
                )


_summary(summary)
with st.expander("Failing over the last 24 hours", icon=":material/show_chart:"):
    monitoring.failing_chart(runtime.monitor())
listview.controls()
if query.filter.unreadable:
    st.caption("Only mailboxes with a secret the configured keys cannot open.")
    st.page_link(MAILBOXES_PAGE, label="Show every mailbox", query_params={})

page = view.page
rows = page.rows
ids = [row.id for row in rows]
# The actions sit above the table, where its ticks are read from the session before it
# is drawn (follow_selection first makes them mean mailboxes, not positions).
bulk.follow_selection(ids)
chosen = bulk.target(ids, {r.id: r.name for r in rows}, query.filter, page.matching, actor)
bulk.action_bar(service, chosen, actor)
if (requested := bulk.pending_test()) is not None:
    try:
        checks.test_selected(checker, requested, actor)
    except MailboxCoreError as exc:
        st.error(str(exc))
    else:
        st.rerun()  # the table shows the new health
checks.show_results(show_probe)

# The frame holds display columns only: a hidden column would still reach the browser.
st.dataframe(
    table.mailbox_frame(rows, runtime.monitor().now()),
    key=bulk.TABLE_KEY,
    on_select="rerun",
    selection_mode="multi-row",
    hide_index=True,
    width="stretch",
    column_config=table.mailbox_columns(),
    placeholder=table.EMPTY,
)
first = (page.page - 1) * page.page_size + 1
st.caption(
    (
        f"Showing {first:,}–{first + len(rows) - 1:,} of {page.matching:,} matching."
        if rows
        else "No mailbox matches this view."
    )
    + " Column headers sort this page only; Sort by orders the whole list."
)
listview.pager(query, page)

st.divider()
if actor.can(Permission.EXPORT):
    transfer.export_buttons(service, query.filter, page.matching)
if actor.can(Permission.IMPORT):
    transfer.import_section(service)
