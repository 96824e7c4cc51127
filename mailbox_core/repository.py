"""Small persistence functions: session first, keyword-only, precise return types."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from mailbox_core.models import Mailbox


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
