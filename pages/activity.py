"""Activity: the audit trail, paged in SQL, filtered by mailbox, actor and date."""

from datetime import date

import streamlit as st

from mailbox_core.access import Permission
from mailbox_core.errors import MailboxCoreError
from mailbox_core.listing import PAGE_SIZES, AuditFilter
from ui import access, runtime, table
from ui.navigation import require_entrypoint

require_entrypoint()
access.require(Permission.VIEW)

ANYONE = "Anyone"
MAILBOX, ACTOR, DATES, SIZE, ROUND = (
    "activity.mailbox",
    "activity.actor",
    "activity.dates",
    "activity.size",
    "activity.pager_round",
)


def _first_page() -> None:
    # A new pager (its key counts rounds) starts on page 1: a widget with a default must
    # not also be set through session state.
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1


def _days(chosen: object) -> tuple[date | None, date | None]:
    """A range while it is being picked: one day chosen means that day."""
    days = [d for d in chosen if isinstance(d, date)] if isinstance(chosen, tuple | list) else []
    if not days:
        return None, None
    return days[0], days[-1]


st.title("Activity")
st.caption("Who changed which mailbox, and how. Secret values are never recorded.")
try:
    service = runtime.service()
    actors = service.audit_actors()
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

st.session_state.setdefault(DATES, ())
with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
    st.text_input(
        "Mailbox", key=MAILBOX, placeholder="Name or ID", on_change=_first_page, width=220
    )
    st.selectbox("Who", [ANYONE, *actors], key=ACTOR, on_change=_first_page, width=240)
    st.date_input("Between (UTC)", key=DATES, on_change=_first_page, width=240)
    st.selectbox("Per page", PAGE_SIZES, key=SIZE, on_change=_first_page, width=100)

since, until = _days(st.session_state.get(DATES))
who = st.session_state.get(ACTOR)
where = AuditFilter(
    actor=None if who in (None, ANYONE) else str(who),
    since=since,
    until=until,
    mailbox=str(st.session_state.get(MAILBOX) or ""),
)
size = int(st.session_state.get(SIZE) or PAGE_SIZES[0])
pager = f"activity.page.{st.session_state.get(ROUND, 0)}"
page = int(st.session_state.get(pager) or 1)
try:
    events, matching = service.audit_page(where, page=page, page_size=size)
    pages = max(1, -(-matching // size))
    if page > pages:  # the trail shrank meanwhile: show its last page
        page = pages
        events, matching = service.audit_page(where, page=page, page_size=size)
except MailboxCoreError as exc:
    st.error(str(exc))
    st.stop()

if not matching:
    st.info(
        "Nothing has happened yet." if where == AuditFilter() else "Nothing matches these filters.",
        icon=":material/history:",
    )
    st.stop()
st.dataframe(
    table.audit_frame(events),
    hide_index=True,
    width="stretch",
    column_config={
        "When": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
        "Changes": st.column_config.TextColumn("Changes", width="large"),
    },
)
with st.container(horizontal=True, vertical_alignment="center"):
    if pages > 1:
        st.pagination(pages, default=page, key=pager)
    st.caption(f"{matching:,} events, page {page:,} of {pages:,}")
