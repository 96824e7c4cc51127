"""Find, filter, sort and page the lists (mailboxes, activity) in SQL, on SQLite and PostgreSQL.

A page holds only the rows it shows: one query of display columns joined with health,
and counts from SQL aggregates. Nothing here builds a model per row or decrypts a
secret: which secrets the configured keys cannot open is counted from the key ID stored
beside each secret (``crypto.key_id``). The page draws the rows; this module only
returns them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    FromClause,
    RowMapping,
    Select,
    and_,
    case,
    func,
    not_,
    or_,
    select,
    union,
)
from sqlmodel import Session, SQLModel

from mailbox_core import models  # noqa: F401  (registers the tables read below)
from mailbox_core.schemas import MailboxType, OAuthProvider, Status, comparable_name
from mailbox_core.tally import read as read_tally
from mailbox_core.twins import twin_of

_MAILBOX = SQLModel.metadata.tables["mailbox"]
_HEALTH = SQLModel.metadata.tables["mailbox_health"]
_MONITOR = SQLModel.metadata.tables["mailbox_monitor"]
_AUDIT = SQLModel.metadata.tables["audit_event"]
#: Each secret's ciphertext column and the column naming the key that made it.
SECRET_COLUMNS = (
    ("password_encrypted", "password_key_id"),
    ("client_secret_encrypted", "client_secret_key_id"),
    ("refresh_token_encrypted", "refresh_token_key_id"),
)
#: The key ID of a secret stored before key IDs existed, until a configured key opens it.
UNKNOWN_KEY = "?"
#: Between the fields of ``search_text``; a search term never holds it (see ``_term``).
SEPARATOR = "\x1f"
PAGE_SIZES = (50, 100, 500)


def search_text(name: str, host: str, account: str, comments: str | None) -> str:
    """What the list's search matches: Name, Host, Account and Comments, casefolded."""
    fields = (comparable_name(name), host.casefold(), account.casefold(), comments or "")
    return SEPARATOR.join(f.casefold() for f in fields)


def _term(search: str) -> str:
    # The Name rule's notion of case and invisible characters, without control characters.
    return "".join(ch for ch in comparable_name(search) if ch.isprintable())


class State(StrEnum):
    """The badge beside a mailbox's name. Declared in the order a sort by state shows."""

    FAILING = "Failing"
    NOT_CHECKED = "Not checked"
    OK = "OK"
    INACTIVE = "Inactive"


_STATE_BY_RANK = tuple(State)


class HealthFilter(StrEnum):
    """The last check's verdict, whatever the mailbox's status."""

    OK = "ok"
    FAILING = "failing"
    NOT_CHECKED = "not-checked"


class VitalFilter(StrEnum):
    """A vital sign's badge (issue 15): the latest values the monitor keeps, indexed."""

    NEAR_FULL = "near-full"  # past one of the mailbox's quota warnings
    BACKLOG = "backlog"  # the oldest unseen message is older than its threshold
    RULES_CHANGED = "rules-changed"  # the server's sign-in offer changed (not acknowledged)
    NO_PASSWORD = "no-password"  # the server no longer offers the password sign-in it uses


class OAuthFilter(StrEnum):
    NONE = "none"
    UNKNOWN = "unknown"
    GMAIL = "gmail"
    OFFICE365 = "office365"


class SortKey(StrEnum):
    """Every column of the list can order it; the values are what a link says."""

    ID = "id"
    NAME = "name"
    STATE = "state"
    LAST_CHECK = "last-check"
    LAST_ERROR = "last-error"
    MESSAGES = "messages"
    FAILING_SINCE = "failing-since"
    MAILBOX_TYPE = "type"
    HOST = "host"
    PORT = "port"
    ACCOUNT = "account"
    STATUS = "status"
    OAUTH = "oauth"
    SSL = "ssl"
    STARTTLS = "starttls"
    CERTIFICATE = "certificate"
    COMMENTS = "comments"


@dataclass(frozen=True)
class MailboxFilter:
    """Which mailboxes a view shows (every field combines with AND)."""

    search: str = ""
    status: Status | None = None
    mailbox_type: MailboxType | None = None
    oauth: OAuthFilter | None = None
    health: HealthFilter | None = None
    vital: VitalFilter | None = None
    unreadable: bool = False  # only mailboxes with a secret the configured keys cannot open
    twins: bool = False  # only mailboxes registered twice ("Same mailbox twice")

    @property
    def empty(self) -> bool:
        return self == MailboxFilter()


@dataclass(frozen=True)
class MailboxQuery:
    """A view of the list: a filter, an order and a page."""

    filter: MailboxFilter = field(default_factory=MailboxFilter)
    sort: SortKey = SortKey.ID
    descending: bool = False
    page: int = 1
    page_size: int = PAGE_SIZES[0]


class ListRow(NamedTuple):
    """One row of the list: display columns only (never a secret or a ciphertext)."""

    id: int
    name: str
    state_rank: int
    mailbox_type: str
    host: str
    port: int
    account: str
    status: str
    oauth: str
    ssl_enabled: bool
    starttls: bool
    allow_self_signed: bool
    comments: str | None
    last_check_at: datetime | None
    last_ok: bool | None
    last_failed_step: str | None
    last_message: str | None
    last_message_count: int | None
    failing_since: datetime | None
    # Vital signs (None: not known): the badges beside the state.
    quota_ratio: float | None = None
    quota_level: int | None = None
    unseen: int | None = None
    oldest_unseen_at: datetime | None = None
    backlog_over: bool | None = None
    offer_changed_at: datetime | None = None
    signin_lost: bool | None = None
    # The scheduler paused this mailbox's checks until then, and why (issue 13).
    paused_until: datetime | None = None
    pause_reason: str | None = None
    # What expires: the OAuth client secret (a date) and the server's TLS certificate.
    client_expires: date | None = None  # the client secret's expiry date (not a secret)
    cert_not_after: datetime | None = None
    #: The lowest ID of another mailbox with the same server and account (mailbox_core.twins).
    twin_of: int | None = None

    @property
    def state(self) -> State:
        return _STATE_BY_RANK[self.state_rank]


@dataclass(frozen=True)
class ListSummary:
    """Counts over every mailbox, for the summary above the list."""

    total: int
    active: int
    healthy: int  # active, last check passed
    failing: int  # active, last check failed
    not_checked: int  # active, never checked
    unreadable: int  # with a secret the configured keys cannot open
    #: How many mailboxes show each vital sign's badge; only the signs some mailbox shows.
    signs: dict[VitalFilter, int] = field(default_factory=dict)
    #: The tally behind the counts is due for folding (tally.Tally.due_for_compacting).
    compact_due: bool = field(default=False, compare=False)

    @property
    def inactive(self) -> int:
        return self.total - self.active


@dataclass(frozen=True)
class ListPage:
    """The rows of one page, and how many mailboxes the filter matches in all."""

    rows: list[ListRow]
    matching: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.page_size))


@dataclass(frozen=True)
class ListView:
    """What the Mailboxes page shows: the summary and one page of the view."""

    summary: ListSummary
    page: ListPage


# ---------------------------------------------------------------- SQL pieces

_M, _H, _S = _MAILBOX.c, _HEALTH.c, _MONITOR.c
_ACTIVE = _M.status == Status.ACTIVE.value
_STATE_RANK: ColumnElement[int] = case(
    (_M.status != Status.ACTIVE.value, _STATE_BY_RANK.index(State.INACTIVE)),
    (_H.mailbox_id.is_(None), _STATE_BY_RANK.index(State.NOT_CHECKED)),
    (_H.last_ok, _STATE_BY_RANK.index(State.OK)),
    else_=_STATE_BY_RANK.index(State.FAILING),
)
_USES_OAUTH = and_(_M.oauth_enabled, _M.oauth_provider.is_not(None))
_OAUTH: ColumnElement[str] = case((_USES_OAUTH, _M.oauth_provider), else_="No")
_LAST_ERROR = case((not_(_H.last_ok), _H.last_message), else_=None)
_WITH_HEALTH: FromClause = _MAILBOX.outerjoin(_HEALTH, _H.mailbox_id == _M.id).outerjoin(
    _MONITOR, _S.mailbox_id == _M.id
)
#: The mail server sees a password sign-in (monitoring.rules.signs_in_with_password).
_SIGNS_IN_WITH_PASSWORD = not_(
    and_(
        _M.oauth_enabled,
        _M.oauth_provider.in_([OAuthProvider.GMAIL.value, OAuthProvider.OFFICE365.value]),
    )
)
_SIGNIN_LOST: ColumnElement[bool] = and_(_SIGNS_IN_WITH_PASSWORD, _S.password_offered.is_(False))
#: An index lookup per row shown (ix_mailbox_twin), never a read of the whole table.
_TWIN_OF = twin_of()
_COLUMNS = (
    _M.id, _M.name, _STATE_RANK, _M.mailbox_type, _M.host, _M.port, _M.account, _M.status,
    _OAUTH, _M.ssl_enabled, _M.starttls, _M.allow_self_signed, _M.comments, _H.last_check_at,
    _H.last_ok, _H.last_failed_step, _H.last_message, _H.last_message_count, _H.failing_since,
    _S.quota_ratio, _S.quota_level, _S.unseen, _S.oldest_unseen_at, _S.backlog_over,
    _S.offer_changed_at, _SIGNIN_LOST, _S.paused_until, _S.pause_reason,
    _M.client_secret_expires, _S.cert_not_after, _TWIN_OF,
)  # fmt: skip
_SORTS: dict[SortKey, ColumnElement[Any]] = {
    SortKey.ID: _M.id,
    SortKey.NAME: _M.name_key,
    SortKey.STATE: _STATE_RANK,
    SortKey.LAST_CHECK: _H.last_check_at,
    SortKey.LAST_ERROR: _LAST_ERROR,
    SortKey.MESSAGES: _H.last_message_count,
    SortKey.FAILING_SINCE: _H.failing_since,
    SortKey.MAILBOX_TYPE: _M.mailbox_type,
    SortKey.HOST: _M.host,
    SortKey.PORT: _M.port,
    SortKey.ACCOUNT: _M.account,
    SortKey.STATUS: _M.status,
    SortKey.OAUTH: _OAUTH,
    SortKey.SSL: _M.ssl_enabled,
    SortKey.STARTTLS: _M.starttls,
    SortKey.CERTIFICATE: _M.allow_self_signed,
    SortKey.COMMENTS: _M.comments,
}
# Empty values sort last either way (SQLite and PostgreSQL disagree by default).
_NULLABLE = {
    SortKey.LAST_CHECK,
    SortKey.LAST_ERROR,
    SortKey.MESSAGES,
    SortKey.FAILING_SINCE,
    SortKey.COMMENTS,
}
_HEALTH_CONDITIONS = {
    HealthFilter.OK: _H.last_ok,
    HealthFilter.FAILING: and_(_H.mailbox_id.is_not(None), not_(_H.last_ok)),
    HealthFilter.NOT_CHECKED: _H.mailbox_id.is_(None),
}
_VITAL_CONDITIONS = {
    VitalFilter.NEAR_FULL: _S.quota_level.is_not(None),
    VitalFilter.BACKLOG: _S.backlog_over.is_(True),
    VitalFilter.RULES_CHANGED: _S.offer_changed_at.is_not(None),
    VitalFilter.NO_PASSWORD: _SIGNIN_LOST,
}
#: Where each sign's count looks: its indexed column of the monitor's table, joined with
#: the mailbox only where the condition reads it too.
_SIGN_SOURCES: dict[VitalFilter, FromClause] = {
    VitalFilter.NEAR_FULL: _MONITOR,
    VitalFilter.BACKLOG: _MONITOR,
    VitalFilter.RULES_CHANGED: _MONITOR,
    VitalFilter.NO_PASSWORD: _MONITOR.join(_MAILBOX, _M.id == _S.mailbox_id),
}
_OAUTH_CONDITIONS = {
    OAuthFilter.NONE: not_(_USES_OAUTH),
    OAuthFilter.UNKNOWN: and_(_M.oauth_enabled, _M.oauth_provider == OAuthProvider.UNKNOWN.value),
    OAuthFilter.GMAIL: and_(_M.oauth_enabled, _M.oauth_provider == OAuthProvider.GMAIL.value),
    OAuthFilter.OFFICE365: and_(
        _M.oauth_enabled, _M.oauth_provider == OAuthProvider.OFFICE365.value
    ),
}


def unreadable(key_ids: Sequence[str]) -> ColumnElement[bool]:
    """A mailbox holds a secret none of ``key_ids`` made (or whose key is not known yet).

    A stored secret always has a key ID (a CHECK constraint; UNKNOWN_KEY until identified),
    so "made by another key" is "key ID outside the configured ones". It is written as
    the ranges between them, which an index on each key ID column answers without
    reading the table (``NOT IN`` would read every row).
    """
    return or_(*(_outside(_M[kid], sorted(set(key_ids))) for _, kid in SECRET_COLUMNS))


def _outside(column: ColumnElement[str], ids: list[str]) -> ColumnElement[bool]:
    return or_(*_ranges(column, ids))


def _ranges(column: ColumnElement[str], ids: list[str]) -> list[ColumnElement[bool]]:
    if not ids:
        return [column.is_not(None)]
    ranges = [column < ids[0], column > ids[-1]]
    return ranges + [and_(column > low, column < high) for low, high in pairwise(ids)]


def _unreadable_ids(key_ids: Sequence[str]) -> Any:
    """The same mailboxes as ``unreadable``, as a UNION of one index range per query: a
    planner left to choose scans the table for the OR of six ranges (SQLite did)."""
    ids = sorted(set(key_ids))
    parts = [
        select(_M.id).where(condition)
        for _, kid in SECRET_COLUMNS
        for condition in _ranges(_M[kid], ids)
    ]
    return union(*parts).subquery()


def _conditions(where: MailboxFilter, key_ids: Sequence[str]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if term := _term(where.search):
        conditions.append(_M.search_text.contains(term, autoescape=True))
    if where.status is not None:
        conditions.append(_M.status == where.status.value)
    if where.mailbox_type is not None:
        conditions.append(_M.mailbox_type == where.mailbox_type.value)
    if where.oauth is not None:
        conditions.append(_OAUTH_CONDITIONS[where.oauth])
    if where.health is not None:
        conditions.append(_HEALTH_CONDITIONS[where.health])
    if where.vital is not None:
        conditions.append(_VITAL_CONDITIONS[where.vital])
    if where.unreadable:
        conditions.append(unreadable(key_ids))
    if where.twins:
        conditions.append(_TWIN_OF.is_not(None))
    return conditions


def _filtered(query: Select[Any], where: MailboxFilter, key_ids: Sequence[str]) -> Select[Any]:
    # Health is joined only when something reads it: counting a plain filter stays on mailbox.
    joined = where.health is not None or where.vital is not None
    source = _WITH_HEALTH if joined else _MAILBOX
    return query.select_from(source).where(*_conditions(where, key_ids))


def _order(query: MailboxQuery) -> list[ColumnElement[Any]]:
    expression = _SORTS[query.sort]
    ordered = expression.desc() if query.descending else expression.asc()
    if query.sort in _NULLABLE:
        ordered = ordered.nulls_last()
    # The ID breaks ties, so every row has one place and pages neither repeat nor skip.
    tie = _M.id.desc() if query.descending else _M.id.asc()
    return [ordered] if query.sort is SortKey.ID else [ordered, tie]


# ---------------------------------------------------------------- queries


def summary(session: Session, *, key_ids: Sequence[str]) -> ListSummary:
    """Counts over every mailbox, none of them a read of every row.

    Status and health come from the tally the database keeps (mailbox_core/tally.py): a
    sum over a few rows at any size. Unreadable secrets are counted through the key-ID
    indexes (the few, as a rule).
    """
    tally = read_tally(session)
    total = healthy = failing = inactive = 0
    for (status, verdict), n in tally.counts.items():
        total += n
        if status == Status.NOT_ACTIVE.value:
            inactive += n
        elif verdict == "ok":
            healthy += n
        elif verdict == "failing":
            failing += n
    active = total - inactive
    unreadable_count = session.connection().execute(
        select(func.count()).select_from(_unreadable_ids(key_ids))
    )
    return ListSummary(
        total=total,
        active=active,
        healthy=healthy,
        failing=failing,
        not_checked=active - healthy - failing,
        unreadable=int(unreadable_count.scalar_one()),
        signs=sign_counts(session),
        compact_due=tally.due_for_compacting,
    )


def sign_counts(session: Session) -> dict[VitalFilter, int]:
    """How many mailboxes show each vital sign's badge (those some mailbox shows).

    One count per sign over its indexed column of ``mailbox_monitor`` (0008, 0011): an
    index range of the mailboxes that show it, few as a rule, at any size of the list.
    """
    found = {}
    for sign, source in _SIGN_SOURCES.items():
        query = select(func.count()).select_from(source).where(_VITAL_CONDITIONS[sign])
        number = int(session.connection().execute(query).scalar_one())
        if number:
            found[sign] = number
    return found


def count_matching(session: Session, *, where: MailboxFilter, key_ids: Sequence[str]) -> int:
    """How many mailboxes the filter matches."""
    query = _filtered(select(func.count()), where, key_ids)
    return int(session.connection().execute(query).scalar_one())


def page_rows(session: Session, *, query: MailboxQuery, key_ids: Sequence[str]) -> list[ListRow]:
    """The rows of one page of the view, display columns joined with health."""
    size = max(1, min(query.page_size, max(PAGE_SIZES)))
    statement = (
        select(*_COLUMNS)
        .select_from(_WITH_HEALTH)
        .where(*_conditions(query.filter, key_ids))
        .order_by(*_order(query))
        .limit(size)
        .offset((max(query.page, 1) - 1) * size)
    )
    return [ListRow(*row) for row in session.connection().execute(statement)]


def matching_ids(session: Session, *, where: MailboxFilter, key_ids: Sequence[str]) -> list[int]:
    """The IDs of every mailbox the filter matches, in ID order."""
    query = _filtered(select(_M.id), where, key_ids).order_by(_M.id)
    return [int(i) for i in session.connection().execute(query).scalars()]


def unreadable_names(
    session: Session, *, key_ids: Sequence[str], limit: int = 5
) -> list[tuple[int, str]]:
    """ID and name of the first mailboxes whose secrets the configured keys cannot open."""
    query = select(_M.id, _M.name).where(unreadable(key_ids)).order_by(_M.id).limit(limit)
    return [(int(i), str(n)) for i, n in session.connection().execute(query)]


# ---------------------------------------------------------------- activity


@dataclass(frozen=True)
class AuditFilter:
    """Which audit events the Activity page shows (dates are UTC days, both inclusive)."""

    actor: str | None = None
    since: date | None = None
    until: date | None = None
    mailbox: str = ""  # an ID, or part of the mailbox's name (any case)


def _audit_conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    audit = _AUDIT.c
    conditions: list[ColumnElement[bool]] = []
    if where.actor:
        conditions.append(audit.actor == where.actor)
    if where.since:
        conditions.append(audit.at >= datetime.combine(where.since, time(), UTC))
    if where.until:
        conditions.append(audit.at < datetime.combine(where.until + timedelta(days=1), time(), UTC))
    mailbox = where.mailbox.strip()
    if mailbox:
        # lower() is ASCII-only on SQLite: a name's other letters match in their own case.
        named = func.lower(audit.mailbox_name).contains(mailbox.lower(), autoescape=True)
        if mailbox.isdigit() and len(mailbox) < 10:  # longer cannot be an ID (INTEGER)
            named = or_(audit.mailbox_id == int(mailbox), named)
        conditions.append(named)
    return conditions


def audit_page(
    session: Session, *, where: AuditFilter, page: int, page_size: int
) -> tuple[list[RowMapping], int]:
    """One page of audit events, newest first, and how many match in all."""
    conditions = _audit_conditions(where)
    count = select(func.count()).select_from(_AUDIT).where(*conditions)
    matching = int(session.connection().execute(count).scalar_one())
    size = max(1, min(page_size, max(PAGE_SIZES)))
    query = (
        select(_AUDIT)
        .where(*conditions)
        .order_by(_AUDIT.c.at.desc(), _AUDIT.c.id.desc())
        .limit(size)
        .offset((max(page, 1) - 1) * size)
    )
    return list(session.connection().execute(query).mappings()), matching


def audit_actors(session: Session, *, limit: int = 200) -> list[str]:
    """The people (and commands) that appear in the audit trail, alphabetically."""
    query = select(_AUDIT.c.actor).distinct().order_by(_AUDIT.c.actor).limit(limit)
    return [str(a) for a in session.connection().execute(query).scalars()]
