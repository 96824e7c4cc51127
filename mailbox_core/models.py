"""Table models only. Rows are built from validated Create models, never validated here."""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, Integer
from sqlmodel import AutoString, Field, SQLModel

from mailbox_core.schemas import AuthMethod, MailboxBase, MailboxType, OAuthProvider, Status


def utcnow() -> datetime:
    return datetime.now(UTC)


# The version column is shared with the mapper (version_id_col): every UPDATE then says
# "WHERE version = <the one I read>", and a concurrent save fails instead of overwriting.
_version = Column("version", Integer, nullable=False, server_default="1", default=1)


class Mailbox(MailboxBase, table=True):
    """A registered mailbox. Secrets are stored only as Fernet tokens (``*_encrypted``)."""

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _version}

    id: int | None = Field(default=None, primary_key=True)
    # Case-insensitive uniqueness of Name, enforced by the database as the last layer.
    name_key: str = Field(max_length=100, unique=True, index=True)
    # Enums are stored as their text (AutoString), not as native PostgreSQL enum types,
    # so adding a provider later is a data change, not a type migration.
    mailbox_type: MailboxType = Field(default=MailboxType.POP3, sa_type=AutoString)
    status: Status = Field(default=Status.ACTIVE, sa_type=AutoString)
    oauth_provider: OAuthProvider | None = Field(default=None, sa_type=AutoString)
    auth_method: AuthMethod | None = Field(default=None, sa_type=AutoString)
    password_encrypted: str | None = None
    client_secret_encrypted: str | None = None
    refresh_token_encrypted: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = Field(default=1, sa_column=_version)


class MailboxCheck(SQLModel, table=True):
    """One connection test of one mailbox (the history behind its health)."""

    __tablename__ = "mailbox_check"

    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int = Field(foreign_key="mailbox.id", index=True, ondelete="CASCADE")
    started_at: datetime = Field(default_factory=utcnow, index=True)
    ok: bool
    failed_step: str | None = Field(default=None, max_length=20)
    message: str = Field(max_length=500)
    latency_ms: float
    message_count: int | None = None


class MailboxHealth(SQLModel, table=True):
    """The current health of one mailbox, updated with every recorded check."""

    __tablename__ = "mailbox_health"

    mailbox_id: int = Field(foreign_key="mailbox.id", primary_key=True, ondelete="CASCADE")
    last_check_at: datetime
    last_ok: bool
    last_message: str = Field(max_length=500)
    last_failed_step: str | None = Field(default=None, max_length=20)
    last_latency_ms: float
    last_message_count: int | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """Who changed which mailbox, when, and how (never a secret value)."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=254)
    # The IdP's `sub` of a signed-in actor: stable where an email can be reassigned.
    actor_subject: str | None = Field(default=None, max_length=254)
    action: str = Field(max_length=20)
    mailbox_id: int | None = Field(default=None, index=True)
    mailbox_name: str = Field(max_length=100)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
