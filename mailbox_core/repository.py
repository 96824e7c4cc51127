"""Small persistence functions: session first, keyword-only, precise return types."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from mailbox_core.models import AuditEvent, Mailbox, MailboxCheck, MailboxHealth


def name_key(name: str) -> str:
    """The case-insensitive form of a mailbox name used for uniqueness."""
    return name.strip().casefold()


def name_taken(session: Session, *, name: str, exclude_id: int | None = None) -> bool:
    """True when another mailbox already has this name (ignoring case)."""
    query = select(Mailbox.id).where(Mailbox.name_key == name_key(name))
    if exclude_id is not None:
        query = query.where(Mailbox.id != exclude_id)
    return session.exec(query).first() is not None


def add_mailbox(session: Session, *, mailbox: Mailbox) -> Mailbox:
    """Insert a row and return it with its database-assigned ID."""
    session.add(mailbox)
    session.flush()
    session.refresh(mailbox)
    return mailbox


def get_mailbox(session: Session, *, mailbox_id: int) -> Mailbox | None:
    return session.get(Mailbox, mailbox_id)


def list_mailboxes(session: Session) -> Sequence[Mailbox]:
    return session.exec(select(Mailbox).order_by(col(Mailbox.id))).all()


def count_mailboxes(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Mailbox)).one()


def active_mailbox_ids(session: Session) -> list[int]:
    query = select(Mailbox.id).where(Mailbox.status == "Active").order_by(col(Mailbox.id))
    return [i for i in session.exec(query).all() if i is not None]


def get_mailboxes(session: Session, *, mailbox_ids: list[int]) -> dict[int, Mailbox]:
    """Rows by ID in one query (missing IDs are absent)."""
    rows = session.exec(select(Mailbox).where(col(Mailbox.id).in_(mailbox_ids))).all()
    return {row.id: row for row in rows if row.id is not None}


def add_checks(session: Session, *, checks: list[MailboxCheck]) -> None:
    """Store checks of existing mailboxes and fold them into the health rows, set-based."""
    ids = list({c.mailbox_id for c in checks})
    existing = set(session.exec(select(Mailbox.id).where(col(Mailbox.id).in_(ids))).all())
    health = {
        h.mailbox_id: h
        for h in session.exec(
            select(MailboxHealth).where(col(MailboxHealth.mailbox_id).in_(ids))
        ).all()
    }
    for check in sorted(checks, key=lambda c: c.started_at):
        if check.mailbox_id in existing:
            health[check.mailbox_id] = _fold(health.get(check.mailbox_id), check)
            session.add(check)
    session.add_all(health.values())


def _fold(health: MailboxHealth | None, check: MailboxCheck) -> MailboxHealth:
    if health is None:
        health = MailboxHealth(
            mailbox_id=check.mailbox_id,
            last_check_at=check.started_at,
            last_ok=check.ok,
            last_message=check.message,
            last_latency_ms=check.latency_ms,
        )
    health.last_check_at = check.started_at
    health.last_ok = check.ok
    health.last_message = check.message
    health.last_failed_step = check.failed_step
    health.last_latency_ms = check.latency_ms
    health.last_message_count = check.message_count
    if check.ok:
        health.last_success_at = check.started_at
        health.consecutive_failures = 0
        health.failing_since = None
    else:
        health.consecutive_failures += 1
        health.failing_since = health.failing_since or check.started_at
    return health


def get_health(session: Session, *, mailbox_id: int) -> MailboxHealth | None:
    return session.get(MailboxHealth, mailbox_id)


def list_health(session: Session) -> Sequence[MailboxHealth]:
    return session.exec(select(MailboxHealth)).all()


def list_checks(session: Session, *, mailbox_id: int, limit: int = 20) -> Sequence[MailboxCheck]:
    query = (
        select(MailboxCheck)
        .where(MailboxCheck.mailbox_id == mailbox_id)
        .order_by(col(MailboxCheck.started_at).desc())
        .limit(limit)
    )
    return session.exec(query).all()


def add_audit(session: Session, *, event: AuditEvent) -> None:
    session.add(event)


def list_audit(session: Session, *, mailbox_id: int | None, limit: int) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    if mailbox_id is not None:
        query = query.where(AuditEvent.mailbox_id == mailbox_id)
    return session.exec(query.limit(limit)).all()
