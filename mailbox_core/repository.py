"""Small persistence functions: session first, keyword-only, precise return types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    Column,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    case,
    delete,
    insert,
    not_,
    or_,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlmodel import Session, SQLModel, col, func, select

from mailbox_core.errors import StorageError
from mailbox_core.models import AuditEvent, Mailbox, MailboxCheck, MailboxHealth, PendingConsent


def name_key(name: str) -> str:
    """The form of a mailbox name used for uniqueness (case and invisible characters ignored)."""
    from mailbox_core.schemas import comparable_name  # the Name rule's notion of "invisible"

    return comparable_name(name)


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
    """Rows by ID (missing IDs are absent), a thousand IDs per query.

    SQLite (32,766) and PostgreSQL (65,535) cap the parameters of one statement, and
    Check all of every active mailbox asks for more.
    """
    found: dict[int, Mailbox] = {}
    for start in range(0, len(mailbox_ids), 1000):
        chunk = mailbox_ids[start : start + 1000]
        rows = session.exec(select(Mailbox).where(col(Mailbox.id).in_(chunk))).all()
        found.update({row.id: row for row in rows if row.id is not None})
    return found


_MAILBOX = SQLModel.metadata.tables["mailbox"]
_CHECK = SQLModel.metadata.tables["mailbox_check"]
_HEALTH = SQLModel.metadata.tables["mailbox_health"]
_CHECK_FIELDS = [c.name for c in _CHECK.columns if c.name != "id"]
# Health column -> the check value a mailbox's first check puts there.
_HEALTH_FROM = {
    "mailbox_id": "mailbox_id",
    "last_check_at": "started_at",
    "last_ok": "ok",
    "last_message": "message",
    "last_failed_step": "failed_step",
    "last_latency_ms": "latency_ms",
    "last_message_count": "message_count",
    "last_success_at": "success_at",
    "consecutive_failures": "failures",
    "failing_since": "failing_since",
}
# What the newest check said: always taken together, from one check.
_VERDICT = [
    "last_check_at",
    "last_ok",
    "last_message",
    "last_failed_step",
    "last_latency_ms",
    "last_message_count",
]


def name_keys(session: Session) -> set[str]:
    """Every name in use, as uniqueness compares them."""
    return set(session.exec(select(Mailbox.name_key)).all())


_SECRET_COLUMNS = ("password", "client_secret", "refresh_token")


def secrets_of_unknown_key(session: Session, *, unknown: str) -> list[tuple[int, str, str]]:
    """(mailbox ID, secret field, ciphertext) of every stored secret whose key is ``unknown``."""
    found: list[tuple[int, str, str]] = []
    for field in _SECRET_COLUMNS:
        token, key_id = _MAILBOX.c[f"{field}_encrypted"], _MAILBOX.c[f"{field}_key_id"]
        query = core_select(_MAILBOX.c.id, token).where(key_id == unknown)
        found += [(int(i), field, str(t)) for i, t in session.connection().execute(query)]
    return found


def set_key_id(session: Session, *, mailbox_id: int, field: str, token: str, key_id: str) -> int:
    """Record which key made a secret, if it still holds ``token``; not an edit (no version)."""
    column = _MAILBOX.c[f"{field}_encrypted"]
    statement = (
        update(_MAILBOX)
        .where(_MAILBOX.c.id == mailbox_id, column == token)
        .values({f"{field}_key_id": key_id})
    )
    return int(session.connection().execute(statement).rowcount)


def get_refresh_token(session: Session, *, mailbox_id: int) -> str | None:
    """The stored (encrypted) refresh token of a mailbox."""
    query = select(Mailbox.refresh_token_encrypted).where(Mailbox.id == mailbox_id)
    return session.exec(query).first()


def swap_refresh_token(
    session: Session, *, mailbox_id: int, expected: str, token: str, key_id: str
) -> bool:
    """Replace the encrypted refresh token if it is still ``expected`` (compare and swap).

    A Core UPDATE, not a flush: the version column is not bumped, so this is not an edit.
    """
    statement = (
        update(Mailbox)
        .where(col(Mailbox.id) == mailbox_id, col(Mailbox.refresh_token_encrypted) == expected)
        .values(refresh_token_encrypted=token, refresh_token_key_id=key_id)
    )
    return session.connection().execute(statement).rowcount == 1


def add_checks(session: Session, *, checks: list[MailboxCheck]) -> None:
    """Store checks of mailboxes that still exist and fold them into health rows, in SQL.

    Three statements, each executed for every check at once (executemany): the history
    rows, the health upserts whose SET computes from the stored row (no read, then write,
    so concurrent runs record every check), and the recount a late success needs.
    """
    if not checks:
        return
    statements = _health_statements(session.get_bind().dialect.name)
    # Ascending mailbox ID: concurrent runs lock health rows in the same order (no
    # deadlock); by start time within a mailbox, so a run's own checks fold in order.
    params = [_check_params(c) for c in sorted(checks, key=lambda c: (c.mailbox_id, c.started_at))]
    session.exec(statements.check, params=params)
    session.exec(statements.health, params=params)
    # Last, so the recount finds every check of this batch already folded in.
    successes = [p for p in params if p["new_ok"]]
    if successes:
        session.exec(statements.recount, params=successes)


class _HealthStatements(NamedTuple):
    check: Insert
    health: Insert
    recount: Update


@cache
def _health_statements(dialect: str) -> _HealthStatements:
    return _HealthStatements(_insert_check(), _upsert_health(dialect), _recount_streak())


def _check_params(check: MailboxCheck) -> dict[str, Any]:
    params = {f"new_{field}": getattr(check, field) for field in _CHECK_FIELDS}
    params["new_success_at"] = check.started_at if check.ok else None
    params["new_failures"] = 0 if check.ok else 1
    params["new_failing_since"] = None if check.ok else check.started_at
    return params


def _param(name: str, column: Column[Any]) -> BindParameter[Any]:
    return bindparam(f"new_{name}", type_=column.type)


def _from_live_mailbox(values: list[BindParameter[Any]]) -> Select[Any]:
    """SELECT the new values FROM the mailbox row, which must outlive the transaction.

    A mailbox deleted meanwhile yields no row, so its check is skipped instead of breaking
    the foreign key. On PostgreSQL, FOR KEY SHARE holds off a concurrent delete until
    commit (edits are not blocked); SQLite ignores it and needs none: its one writer holds
    the write lock from the first INSERT to commit.
    """
    mailbox_id = _param("mailbox_id", _MAILBOX.c.id)
    query = core_select(*values).where(_MAILBOX.c.id == mailbox_id)
    return query.with_for_update(read=True, key_share=True)


def _insert_check() -> Insert:
    values = [_param(field, _CHECK.c[field]) for field in _CHECK_FIELDS]
    return insert(_CHECK).from_select(_CHECK_FIELDS, _from_live_mailbox(values))


def _upsert_health(dialect: str) -> Insert:
    values = [_param(field, _HEALTH.c[name]) for name, field in _HEALTH_FROM.items()]
    statement = _dialect_insert(dialect).from_select(list(_HEALTH_FROM), _from_live_mailbox(values))
    return statement.on_conflict_do_update(
        index_elements=[_HEALTH.c.mailbox_id], set_=_fold(statement.excluded)
    )


def _dialect_insert(dialect: str) -> sqlite.Insert | postgresql.Insert:
    if dialect == "sqlite":
        return sqlite.insert(_HEALTH)
    if dialect == "postgresql":
        return postgresql.insert(_HEALTH)
    raise StorageError(f"Recording checks needs SQLite or PostgreSQL, not {dialect}.")


def _fold(new: ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]) -> dict[str, Any]:
    """SET expressions folding a check (``new``, the row it would insert) into the stored row.

    Checks of overlapping runs arrive out of order. The rule: ``consecutive_failures``
    counts the failed checks that started after the latest successful one, whatever
    order they arrive in; ``failing_since`` is the first of them. So a late check
    updates the last_* verdict only when it is the newest (a tie goes to the later
    arrival); a late failure counts when it started after the latest success and is
    ignored when a newer success ended its streak; a late success older than the newest
    check moves ``last_success_at`` and the streak is recounted from the history
    (``_recount_streak``), since only the history knows which failures followed it.
    """
    old = _HEALTH.c
    newest = new.last_check_at >= old.last_check_at
    after_success = or_(old.last_success_at.is_(None), new.last_check_at > old.last_success_at)
    ends_streak = and_(new.last_ok, newest)
    in_streak = and_(not_(new.last_ok), after_success)
    earliest = or_(old.failing_since.is_(None), new.last_check_at < old.failing_since)
    return {
        **{name: case((newest, new[name]), else_=old[name]) for name in _VERDICT},
        "last_success_at": case(
            (
                or_(old.last_success_at.is_(None), new.last_success_at > old.last_success_at),
                new.last_success_at,
            ),
            else_=old.last_success_at,
        ),
        "consecutive_failures": case(
            (ends_streak, 0),
            (in_streak, old.consecutive_failures + 1),
            else_=old.consecutive_failures,
        ),
        "failing_since": case(
            (ends_streak, None),
            (and_(in_streak, earliest), new.last_check_at),
            else_=old.failing_since,
        ),
    }


def _recount_streak() -> Update:
    """After a late success: the streak is the failed checks that started after it.

    Runs after the batch's upserts, which hold the health rows' locks until commit: every
    check folded into the row so far is visible to the recount (this batch's, or
    committed), and a check committed later still folds in on top of it. Only the row
    whose latest success is this check and whose newest check is newer matches.
    """
    health, check = _HEALTH.c, _CHECK.c
    at = _param("started_at", health.last_check_at)
    streak = and_(check.mailbox_id == health.mailbox_id, not_(check.ok))
    streak = and_(streak, check.started_at > health.last_success_at)
    return (
        update(_HEALTH)
        .where(health.mailbox_id == _param("mailbox_id", health.mailbox_id))
        .where(health.last_success_at == at, health.last_check_at > at)
        .values(
            consecutive_failures=core_select(func.count()).where(streak).scalar_subquery(),
            failing_since=core_select(func.min(check.started_at)).where(streak).scalar_subquery(),
        )
    )


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


def count_mailboxes_with_secrets(session: Session) -> int:
    """How many mailboxes hold at least one encrypted secret (a ``*_encrypted`` column)."""
    stored = [c.is_not(None) for c in _MAILBOX.columns if c.name.endswith("_encrypted")]
    query = select(func.count()).select_from(Mailbox).where(or_(*stored))
    return session.exec(query).one()


# ---------------------------------------------------------------- Connect account consents


def add_consent(session: Session, *, consent: PendingConsent) -> PendingConsent:
    session.add(consent)
    session.flush()
    return consent


def consent_by_state(session: Session, *, state_hash: str) -> PendingConsent | None:
    query = select(PendingConsent).where(PendingConsent.state_hash == state_hash)
    return session.exec(query).first()


def claim_consent(session: Session, *, consent_id: int) -> bool:
    """Mark a consent used if nobody did yet, in one statement: a replayed state loses."""
    statement = (
        update(PendingConsent)
        .where(col(PendingConsent.id) == consent_id, col(PendingConsent.used).is_(False))
        .values(used=True)
    )
    return session.connection().execute(statement).rowcount == 1


def latest_consent(
    session: Session, *, form: str, actor: str, subject: str | None
) -> PendingConsent | None:
    """The newest consent this user started from this form."""
    query = (
        select(PendingConsent)
        .where(PendingConsent.form == form, PendingConsent.actor == actor)
        .where(
            col(PendingConsent.actor_subject).is_(None)
            if subject is None
            else PendingConsent.actor_subject == subject
        )
        .order_by(col(PendingConsent.created_at).desc(), col(PendingConsent.id).desc())
    )
    return session.exec(query.limit(1)).first()


def delete_consents(session: Session, *, form: str, actor: str) -> None:
    """Forget every consent (and any refresh token it holds) of one user's form."""
    statement = delete(PendingConsent).where(
        col(PendingConsent.form) == form, col(PendingConsent.actor) == actor
    )
    session.connection().execute(statement)


def purge_consents(session: Session, *, before: datetime) -> None:
    """Delete consents started before ``before``, with whatever they still hold."""
    statement = delete(PendingConsent).where(col(PendingConsent.created_at) < before)
    session.connection().execute(statement)


def swap_held_token(session: Session, *, consent_id: int, expected: str, token: str) -> bool:
    """Replace a held (encrypted) refresh token if it is still ``expected``."""
    statement = (
        update(PendingConsent)
        .where(
            col(PendingConsent.id) == consent_id,
            col(PendingConsent.refresh_token_encrypted) == expected,
        )
        .values(refresh_token_encrypted=token)
    )
    return session.connection().execute(statement).rowcount == 1
