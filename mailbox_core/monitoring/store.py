"""Database details the monitor's statements share: tables, SQLite's write lock, upserts."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from mailbox_core import models  # noqa: F401  (registers the tables)
from mailbox_core.errors import StorageError

MAILBOX: Table = SQLModel.metadata.tables["mailbox"]
MONITOR: Table = SQLModel.metadata.tables["mailbox_monitor"]
HEALTH: Table = SQLModel.metadata.tables["mailbox_health"]
CHECK: Table = SQLModel.metadata.tables["mailbox_check"]
ALERT: Table = SQLModel.metadata.tables["alert_event"]
SWEEP: Table = SQLModel.metadata.tables["monitor_sweep"]
ATTEMPT: Table = SQLModel.metadata.tables["signin_attempt"]


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock now (BEGIN IMMEDIATE), before the first read.

    A deferred transaction that reads first and writes later cannot get the lock once
    another process has written meanwhile (SQLITE_BUSY, which no busy timeout waits out);
    IMMEDIATE waits for the lock up front, so claims and reservations serialize. Call it
    before the session's first write. PostgreSQL needs nothing here.
    """
    if dialect(session) != "sqlite":
        return
    connection = session.connection()
    raw = connection.connection.driver_connection
    if not getattr(raw, "in_transaction", False):  # already holding it: nothing to do
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert(session: Session, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that can say ON CONFLICT, for the session's database."""
    name = dialect(session)
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise StorageError(f"Scheduled checks need SQLite or PostgreSQL, not {name}.")
