"""The Mailboxes list's view — search, filters, sort, page — and the URL that shares it.

The query string is the view (``?q=acme&health=failing&sort=name&page=2``), so a filtered
list is a link to send. Widgets are not bound to the URL (``bind="query-params"``): a
bound key makes ``st.switch_page`` raise, and AppTest cannot see the frontend's URL sync.
Instead, each run reads the URL; when it differs from what this session last wrote (a
first visit, a shared link, a summary link, the browser's back button) the widgets are
set from it; after the widgets, the view they show is written back. It is written on
every run: Streamlit 1.67 does not update the address bar after a ``st.page_link`` to the
page already open, although the script gets the link's query string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import streamlit as st

from mailbox_core.listing import (
    PAGE_SIZES,
    HealthFilter,
    ListPage,
    MailboxFilter,
    MailboxQuery,
    OAuthFilter,
    SortKey,
    VitalFilter,
)
from mailbox_core.schemas import MailboxType, Status

SEARCH = "mailboxes.search"
SORT = "mailboxes.sort"
ORDER = "mailboxes.order"
SIZE = "mailboxes.size"
#: The page shown. The pager widget is keyed by PAGER_ROUND: a page set from outside
#: (the URL, page 1 after a filter change) starts a new pager with it as its default,
#: since Streamlit warns when a widget that has a default is also set through session state.
PAGE = "mailboxes.page"
PAGER_ROUND = "mailboxes.pager_round"
UNREADABLE = "mailboxes.unreadable"
TWINS = "mailboxes.twins"
#: The query string this session last showed: a different one came from outside.
SHOWN = "mailboxes.view.shown"
ANY = "Any"
ORDERS = ("Ascending", "Descending")


@dataclass(frozen=True)
class _Filter:
    """One filter: its URL parameter, its selectbox label and choices, their URL values."""

    param: str
    label: str
    choices: dict[str, StrEnum]

    def slug(self, value: StrEnum) -> str:
        return value.value.lower().replace(" ", "-")

    def parse(self, text: str | None) -> StrEnum | None:
        return next((v for v in self.choices.values() if self.slug(v) == text), None)

    def label_of(self, value: StrEnum | None) -> str:
        return next((k for k, v in self.choices.items() if v == value), ANY)


#: MailboxFilter field -> its filter.
FILTERS = {
    "status": _Filter("status", "Status", {s.value: s for s in Status}),
    "mailbox_type": _Filter("type", "Mailbox Type", {t.value: t for t in MailboxType}),
    "oauth": _Filter(
        "oauth",
        "OAuth",
        {
            "No": OAuthFilter.NONE,
            "Gmail": OAuthFilter.GMAIL,
            "Office365": OAuthFilter.OFFICE365,
            "Unknown": OAuthFilter.UNKNOWN,
        },
    ),
    "health": _Filter(
        "health",
        "Health",
        {
            "OK": HealthFilter.OK,
            "Failing": HealthFilter.FAILING,
            "Not checked": HealthFilter.NOT_CHECKED,
        },
    ),
    "vital": _Filter(
        "signs",
        "Signs",
        {
            "Near full": VitalFilter.NEAR_FULL,
            "Backlog": VitalFilter.BACKLOG,
            "Sign-in rules changed": VitalFilter.RULES_CHANGED,
            "No password sign-in": VitalFilter.NO_PASSWORD,
        },
    ),
}
SORT_LABELS = {
    SortKey.ID: "ID",
    SortKey.NAME: "Name",
    SortKey.STATE: "State",
    SortKey.LAST_CHECK: "Last check",
    SortKey.LAST_ERROR: "Last error",
    SortKey.MESSAGES: "Messages",
    SortKey.FAILING_SINCE: "Failing since",
    SortKey.MAILBOX_TYPE: "Mailbox Type",
    SortKey.HOST: "Host",
    SortKey.PORT: "Port",
    SortKey.ACCOUNT: "Account",
    SortKey.STATUS: "Status",
    SortKey.OAUTH: "OAuth",
    SortKey.SSL: "SSL Enabled",
    SortKey.STARTTLS: "STARTTLS",
    SortKey.CERTIFICATE: "Certificate",
    SortKey.COMMENTS: "Comments",
}


def _key(field: str) -> str:
    return f"mailboxes.{field}"


# ---------------------------------------------------------------- URL <-> view


def parse(params: Mapping[str, str]) -> MailboxQuery:
    """The view a query string asks for; anything unknown or malformed is left at its default."""
    where = MailboxFilter(
        search=params.get("q", "").strip()[:200],
        unreadable=params.get("unreadable") == "1",
        twins=params.get("twins") == "1",
        **{field: spec.parse(params.get(spec.param)) for field, spec in FILTERS.items()},  # type: ignore[arg-type]
    )
    sort = next((k for k in SortKey if k.value == params.get("sort")), SortKey.ID)
    return MailboxQuery(
        filter=where,
        sort=sort,
        descending=params.get("order") == "desc",
        page=_number(params.get("page"), 1),
        page_size=size if (size := _number(params.get("size"), 0)) in PAGE_SIZES else PAGE_SIZES[0],
    )


def to_params(query: MailboxQuery) -> dict[str, str]:
    """The query string of a view; what is at its default is left out (short links)."""
    where = query.filter
    params: dict[str, str] = {}
    if where.search:
        params["q"] = where.search
    for field, spec in FILTERS.items():
        if (value := getattr(where, field)) is not None:
            params[spec.param] = spec.slug(value)
    if where.unreadable:
        params["unreadable"] = "1"
    if where.twins:
        params["twins"] = "1"
    if query.sort is not SortKey.ID:
        params["sort"] = query.sort.value
    if query.descending:
        params["order"] = "desc"
    if query.page_size != PAGE_SIZES[0]:
        params["size"] = str(query.page_size)
    if query.page != 1:
        params["page"] = str(query.page)
    return params


def _number(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and len(text) < 10 else default


# ---------------------------------------------------------------- widgets


def _seed(query: MailboxQuery) -> None:
    state = st.session_state
    state[SEARCH] = query.filter.search
    for field, spec in FILTERS.items():
        state[_key(field)] = spec.label_of(getattr(query.filter, field))
    state[UNREADABLE] = query.filter.unreadable
    state[TWINS] = query.filter.twins
    state[SORT] = SORT_LABELS[query.sort]
    state[ORDER] = ORDERS[query.descending]
    state[SIZE] = query.page_size
    _set_page(query.page)


def _set_page(page: int) -> None:
    st.session_state[PAGE] = page
    st.session_state[PAGER_ROUND] = st.session_state.get(PAGER_ROUND, 0) + 1


def _pager_key() -> str:
    return f"mailboxes.pager.{st.session_state.get(PAGER_ROUND, 0)}"


def _first_page() -> None:
    _set_page(1)


def prepare() -> MailboxQuery:
    """The view to show: the URL's, when it changed since this session wrote it, else the
    widgets' (whose callbacks have already run)."""
    params = st.query_params.to_dict()
    if params != st.session_state.get(SHOWN) or SEARCH not in st.session_state:
        _seed(parse(params))
    return current()


def forget() -> None:
    """Drop the view's widget values on a run that shows no list (another page, or no
    mailbox yet). Values set through session state outlive their widgets, and Streamlit's
    widgets read the whole session state each time one is drawn. Nothing is lost: the
    list takes its view from the URL again (``prepare``); ``last_shown`` stays.
    """
    state = st.session_state
    if SEARCH not in state:  # nothing to drop: prepare seeds every key, SEARCH included
        return
    pagers = [k for k in state if str(k).startswith("mailboxes.pager.")]
    for name in (SEARCH, SORT, ORDER, SIZE, UNREADABLE, TWINS, PAGE, PAGER_ROUND, *pagers):
        state.pop(name, None)
    for field in FILTERS:
        state.pop(_key(field), None)


def controls() -> None:
    """Draw search, filters, sort and page size (after ``prepare``)."""
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        st.text_input(
            "Search",
            key=SEARCH,
            placeholder="Name, host, account or comments",
            on_change=_first_page,
            width=300,
        )
        for field, spec in FILTERS.items():
            options = [ANY, *spec.choices]
            st.selectbox(spec.label, options, key=_key(field), on_change=_first_page, width=135)
        st.selectbox(
            "Sort by", list(SORT_LABELS.values()), key=SORT, on_change=_first_page, width=150
        )
        st.selectbox("Order", ORDERS, key=ORDER, on_change=_first_page, width=130)
        st.selectbox("Per page", PAGE_SIZES, key=SIZE, on_change=_first_page, width=100)
        st.checkbox(
            "Same mailbox twice",
            key=TWINS,
            on_change=_first_page,
            help="Only mailboxes whose server and account another mailbox has too.",
        )


def current() -> MailboxQuery:
    """The view the widgets show (the page as last chosen)."""
    state = st.session_state
    choices = {
        field: spec.choices.get(state.get(_key(field), ANY)) for field, spec in FILTERS.items()
    }
    where = MailboxFilter(
        search=str(state.get(SEARCH) or "").strip(),
        unreadable=bool(state.get(UNREADABLE)),
        twins=bool(state.get(TWINS)),
        **choices,  # type: ignore[arg-type]
    )
    sort = next((k for k, label in SORT_LABELS.items() if label == state.get(SORT)), SortKey.ID)
    return MailboxQuery(
        filter=where,
        sort=sort,
        descending=state.get(ORDER) == ORDERS[1],
        page=int(state.get(_pager_key()) or state.get(PAGE) or 1),
        page_size=int(state.get(SIZE) or PAGE_SIZES[0]),
    )


def pager(query: MailboxQuery, page: ListPage) -> None:
    """Page N of M under the table, then the URL is set to the view shown."""
    st.session_state[PAGE] = page.page  # the core moved a page past the end to the last
    if page.pages > 1:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.pagination(page.pages, default=page.page, key=_pager_key())
            st.caption(f"Page {page.page:,} of {page.pages:,}")
    publish(replace(query, page=page.page))


def publish(query: MailboxQuery) -> None:
    """Write the view into the URL (and remember it, to tell later changes from outside)."""
    params = to_params(query)
    st.query_params.from_dict(params)
    st.session_state[SHOWN] = params


def link_params(**where: object) -> dict[str, str]:
    """The query string of a fresh view with just this filter (for the summary's links)."""
    return to_params(MailboxQuery(filter=MailboxFilter(**where)))  # type: ignore[arg-type]


def last_shown() -> dict[str, str]:
    """The query string of the list as this session last showed it (for a way back)."""
    shown: dict[str, str] = st.session_state.get(SHOWN) or {}
    return dict(shown)
