"""OAuth grant health in the database: fold a check's token facts into ``mailbox_grant``,
read it back, and find the Gmail grants to warn about (unused for five months, once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, or_, select, update
from sqlmodel import Session, SQLModel

from mailbox_core.grant import UNUSED_WARN_AFTER, GrantFacts, GrantPublic
from mailbox_core.monitoring import alerts, rules
from mailbox_core.monitoring.store import MAILBOX, MONITOR, insert

GRANT: Table = SQLModel.metadata.tables["mailbox_grant"]
_COLUMNS = [c.name for c in GRANT.columns]


def fold(session: Session, mailbox_id: int, facts: Sequence[tuple[datetime, GrantFacts]]) -> None:
    """Fold checks' token facts (oldest first) into the mailbox's grant row."""
    found = session.connection().execute(select(GRANT).where(GRANT.c.mailbox_id == mailbox_id))
    existing = found.mappings().first()
    row: dict[str, Any] = {c: None for c in _COLUMNS} | dict(existing or {})
    row["mailbox_id"] = mailbox_id
    for at, fact in facts:
        _apply(row, at, fact)
    statement = insert(session, GRANT)
    changes = {c: statement.excluded[c] for c in _COLUMNS if c != "mailbox_id"}
    statement = statement.on_conflict_do_update(index_elements=[GRANT.c.mailbox_id], set_=changes)
    session.connection().execute(statement, [row])


def replaced(
    session: Session,
    mailbox_id: int,
    *,
    connected_at: datetime | None = None,
    subject: str | None = None,
) -> None:
    """A new refresh token was saved: what was known of the old grant goes with it.

    Connected (Connect account): the provider issued the grant then, to the account its
    ID token named, so that is its last use (the unused-grant warning counts from it,
    checked or not) and its subject. Typed: nothing is known of it until a check.
    """
    session.connection().execute(delete(GRANT).where(GRANT.c.mailbox_id == mailbox_id))
    if connected_at is None:
        return
    row: dict[str, Any] = {c: None for c in _COLUMNS} | {
        "mailbox_id": mailbox_id,
        "last_used_at": connected_at,
        "subject": subject[:254] if subject else None,
        "subject_seen_at": connected_at if subject else None,
    }
    session.connection().execute(GRANT.insert(), [row])


def _apply(row: dict[str, Any], at: datetime, fact: GrantFacts) -> None:
    if fact.failed:
        row.update(
            failure=fact.problem.value if fact.problem else None,
            failure_message=fact.message,
            failure_hint=fact.hint,
            failure_at=at,
        )
        return
    use = fact.use
    if use is None:
        return
    row.update(failure=None, failure_message=None, failure_hint=None, failure_at=None)
    if use.refresh_token_used:
        row["last_used_at"] = at
    if use.rotated:
        row["rotated_at"] = at
    if use.subject:
        row.update(subject=use.subject[:254], subject_seen_at=at)


def read(
    session: Session, *, now: datetime, ids: Sequence[int] | None = None
) -> dict[int, GrantPublic]:
    """The grants of OAuth mailboxes (of ``ids``, or all) as people read them, by ID."""
    m, g = MAILBOX.c, GRANT.c
    query = (
        select(m.id, m.oauth_provider, m.account, GRANT)
        .select_from(MAILBOX.outerjoin(GRANT, g.mailbox_id == m.id))
        .where(m.oauth_enabled, m.oauth_provider.in_(["Gmail", "Office365"]))
        .order_by(m.id)
    )
    if ids is not None:
        query = query.where(m.id.in_(list(ids)))
    rows = session.connection().execute(query).mappings()
    return {int(row["id"]): _public(row, now) for row in rows}


def _public(row: Any, now: datetime) -> GrantPublic:
    def at(name: str) -> datetime | None:
        return None if row[name] is None else rules.aware(row[name])

    return GrantPublic(
        provider=str(row["oauth_provider"]),
        account=str(row["account"]),
        last_used_at=at("last_used_at"),
        rotated_at=at("rotated_at"),
        subject=row["subject"],
        failure=row["failure"],
        failure_message=row["failure_message"],
        failure_hint=row["failure_hint"],
        failure_at=at("failure_at"),
        now=now,
    )


def unused_alerts(
    session: Session, *, now: datetime, public_url: str, ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Alert rows for Gmail grants unused for UNUSED_WARN_AFTER, each once per last use.

    Only mailboxes that still hold a refresh token and are not quiet (snoozed, or in their
    maintenance window: the warning waits for the first sweep after it); marks them warned.
    """
    m, g, s = MAILBOX.c, GRANT.c, MONITOR.c
    query = (
        select(m.id, m.name, g.last_used_at, s.window_start, s.window_end, s.window_tz)
        .select_from(
            GRANT.join(MAILBOX, m.id == g.mailbox_id).outerjoin(MONITOR, s.mailbox_id == m.id)
        )
        .where(
            m.oauth_enabled,
            m.oauth_provider == "Gmail",
            m.refresh_token_encrypted.is_not(None),
            g.last_used_at <= now - UNUSED_WARN_AFTER,
            or_(g.unused_warned_for.is_(None), g.unused_warned_for < g.last_used_at),
            or_(s.snoozed_until.is_(None), s.snoozed_until <= now),
        )
        .order_by(m.id)
    )
    if ids is not None:
        query = query.where(m.id.in_(list(ids)))
    due = session.connection().execute(query).all()
    rows = []
    for mailbox_id, name, last_used, start, end, zone in due:
        if rules.in_window(start, end, zone, now):
            continue  # not marked: the sweep after the window sends it
        session.connection().execute(
            update(GRANT).where(g.mailbox_id == mailbox_id).values(unused_warned_for=last_used)
        )
        who = alerts.Who(mailbox_id, name, public_url)
        text = alerts.grant_unused(who, rules.aware(last_used), now)
        rows.append(alerts.alert_row(who, rules.AlertKind.GRANT_UNUSED, text, now))
    return rows
