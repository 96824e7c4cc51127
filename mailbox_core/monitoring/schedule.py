"""Which mailboxes are due, and leases: a claim hands each due mailbox to one runner.

A claim is one statement. PostgreSQL: ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED
LIMIT n)``, so concurrent claimers take disjoint rows without waiting for each other.
SQLite: ``BEGIN IMMEDIATE`` first, so claimers take turns on the one write lock and each
sees the leases the previous one wrote. A lease ends when the check is recorded, or after
``MAILBOX_CHECK_LEASE`` seconds: a runner killed mid-batch loses only its lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, or_, select, update
from sqlmodel import Session

from mailbox_core.monitoring.store import HEALTH, MAILBOX, MONITOR, begin_write, dialect, insert


def _due(now: datetime, limit: int) -> Select[Any]:
    s, m = MONITOR.c, MAILBOX.c
    return (
        select(s.mailbox_id)
        .join(MAILBOX, m.id == s.mailbox_id)
        .where(
            m.status == "Active",
            or_(s.next_check_at.is_(None), s.next_check_at <= now),
            or_(s.lease_until.is_(None), s.lease_until <= now),
        )
        .order_by(s.next_check_at.asc().nulls_first(), s.mailbox_id)
        .limit(limit)
    )


def ensure_rows(session: Session) -> None:
    """Give every active mailbox a monitor row (new ones are due at once)."""
    m, s = MAILBOX.c, MONITOR.c
    missing = select(m.id).where(m.status == "Active", ~exists().where(s.mailbox_id == m.id))
    statement = insert(session, MONITOR).from_select(["mailbox_id"], missing)
    session.connection().execute(statement.on_conflict_do_nothing())


def claim(
    session: Session,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    limit: int,
    ensure: bool = True,
) -> list[int]:
    """Lease up to ``limit`` due mailboxes to ``owner`` until ``until``; returns their IDs.

    ``ensure`` first gives new mailboxes their monitor row (a scan of every mailbox, which
    the refills of one sweep can skip).
    """
    begin_write(session)
    if ensure:
        ensure_rows(session)
    s = MONITOR.c
    values = {"lease_until": until, "lease_owner": owner}
    if dialect(session) == "postgresql":
        due = _due(now, limit).with_for_update(skip_locked=True, of=MONITOR).cte("due")
        statement = update(MONITOR).where(s.mailbox_id == due.c.mailbox_id)
    else:
        statement = update(MONITOR).where(s.mailbox_id.in_(_due(now, limit).scalar_subquery()))
    rows = session.connection().execute(statement.values(values).returning(s.mailbox_id))
    return sorted(row[0] for row in rows)


def renew(session: Session, *, owner: str, ids: Sequence[int], until: datetime) -> list[int]:
    """Extend ``owner``'s leases; returns the IDs it still holds (others took the rest)."""
    if not ids:
        return []
    begin_write(session)
    s = MONITOR.c
    statement = (
        update(MONITOR)
        .where(s.mailbox_id.in_(list(ids)), s.lease_owner == owner)
        .values(lease_until=until)
        .returning(s.mailbox_id)
    )
    return sorted(row[0] for row in session.connection().execute(statement))


def release(
    session: Session, *, owner: str, ids: Sequence[int], next_check_at: datetime | None = None
) -> None:
    """Give leases back unchecked: due again at once, or at ``next_check_at``."""
    if not ids:
        return
    s = MONITOR.c
    values: dict[str, Any] = {"lease_until": None, "lease_owner": None}
    if next_check_at is not None:
        values["next_check_at"] = next_check_at
    statement = update(MONITOR).where(s.mailbox_id.in_(list(ids)), s.lease_owner == owner)
    session.connection().execute(statement.values(values))


def settings_changed(session: Session, *, mailbox_id: int) -> None:
    """A person changed the mailbox: the pause and backoff end, and it is due at once."""
    statement = (
        update(MONITOR)
        .where(MONITOR.c.mailbox_id == mailbox_id)
        .values(
            next_check_at=None,
            backoff_level=0,
            pause_level=0,
            paused_until=None,
            pause_reason=None,
            signin_ok=False,
        )
    )
    session.connection().execute(statement)


def set_fields(session: Session, *, mailbox_id: int, values: dict[str, Any]) -> None:
    """Upsert a person's choices (snooze, maintenance window) into the monitor row."""
    statement = insert(session, MONITOR).values(mailbox_id=mailbox_id, **values)
    statement = statement.on_conflict_do_update(index_elements=[MONITOR.c.mailbox_id], set_=values)
    session.connection().execute(statement)


def gate_facts(session: Session, *, ids: Sequence[int]) -> dict[int, tuple[bool, datetime | None]]:
    """Per mailbox: whether its last sign-in worked, and until when it is paused."""
    if not ids:
        return {}
    s = MONITOR.c
    query = select(s.mailbox_id, s.signin_ok, s.paused_until).where(s.mailbox_id.in_(list(ids)))
    return {row[0]: (bool(row[1]), row[2]) for row in session.connection().execute(query)}


def failing_since(session: Session, *, ids: Sequence[int]) -> dict[int, datetime]:
    """When each failing mailbox of ``ids`` started failing (the others are absent)."""
    if not ids:
        return {}
    h = HEALTH.c
    query = select(h.mailbox_id, h.failing_since).where(
        h.mailbox_id.in_(list(ids)), h.failing_since.is_not(None)
    )
    return {row[0]: row[1] for row in session.connection().execute(query)}
