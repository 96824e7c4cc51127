"""History for people: a mailbox's checks over time, its uptime, failing over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, func, select
from sqlmodel import Session

from mailbox_core.monitoring.rules import aware
from mailbox_core.monitoring.store import CHECK, SWEEP

#: Uptime spans the Edit page shows.
SPANS = {"24 h": timedelta(hours=24), "7 d": timedelta(days=7), "30 d": timedelta(days=30)}


@dataclass(frozen=True)
class Point:
    at: datetime
    ok: bool
    latency_ms: float


def uptime(session: Session, *, mailbox_id: int, now: datetime) -> dict[str, float | None]:
    """Share of passed checks per span (None where the span holds no check), one query."""
    c = CHECK.c
    columns = []
    for span in SPANS.values():
        inside = c.started_at >= now - span
        columns.append(func.sum(case((inside, 1), else_=0)))
        columns.append(func.sum(case((inside & c.ok, 1), else_=0)))
    query = select(*columns).where(
        c.mailbox_id == mailbox_id, c.started_at >= now - max(SPANS.values())
    )
    row = session.connection().execute(query).one()
    shares: dict[str, float | None] = {}
    for number, name in enumerate(SPANS):
        total, passed = row[2 * number] or 0, row[2 * number + 1] or 0
        shares[name] = passed / total if total else None
    return shares


def points(session: Session, *, mailbox_id: int, since: datetime, limit: int = 5000) -> list[Point]:
    """A mailbox's checks since ``since``, oldest first (at most ``limit``, the newest)."""
    c = CHECK.c
    query = (
        select(c.started_at, c.ok, c.latency_ms)
        .where(c.mailbox_id == mailbox_id, c.started_at >= since)
        .order_by(c.started_at.desc())
        .limit(limit)
    )
    rows = session.connection().execute(query).all()
    return [Point(aware(r[0]), bool(r[1]), float(r[2])) for r in reversed(rows)]


@dataclass(frozen=True)
class VitalPoint:
    """One passed check's vital signs (None: not known): the quota and backlog charts."""

    at: datetime
    quota_ratio: float | None
    messages: int | None
    unseen: int | None
    oldest_unseen_minutes: float | None


def vital_points(
    session: Session, *, mailbox_id: int, since: datetime, limit: int = 5000
) -> list[VitalPoint]:
    """A mailbox's vital signs since ``since``, oldest first (passed checks only)."""
    c = CHECK.c
    query = (
        select(c.started_at, c.quota_ratio, c.message_count, c.unseen, c.oldest_unseen_at)
        .where(c.mailbox_id == mailbox_id, c.started_at >= since, c.ok)
        .order_by(c.started_at.desc())
        .limit(limit)
    )
    rows = session.connection().execute(query).all()
    return [_vital_point(*row) for row in reversed(rows)]


def _vital_point(
    at: datetime, ratio: float | None, messages: int | None, unseen: int | None, oldest: Any
) -> VitalPoint:
    moment = aware(at)
    waited = None
    if oldest is not None and unseen:
        waited = max(0.0, (moment - aware(oldest)).total_seconds() / 60)
    return VitalPoint(moment, ratio, messages, unseen, waited)


def failing_over_time(session: Session, *, since: datetime) -> list[tuple[datetime, int]]:
    """Failing active mailboxes at the end of each sweep since ``since``."""
    s = SWEEP.c
    query = (
        select(s.finished_at, func.cast(s.failing, Integer))
        .where(s.finished_at >= since, s.failing.is_not(None))
        .order_by(s.finished_at)
    )
    return [(aware(r[0]), int(r[1])) for r in session.connection().execute(query)]


def last_check_id(session: Session) -> int:
    """The newest recorded check's ID (its primary key: one index lookup); 0 when none."""
    return int(session.connection().execute(select(func.max(CHECK.c.id))).scalar() or 0)
