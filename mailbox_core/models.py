"""Table models only. Rows are built from validated Create models, never validated here."""

from datetime import UTC, datetime

from sqlmodel import AutoString, Field

from mailbox_core.schemas import AuthMethod, MailboxBase, MailboxType, OAuthProvider, Status


def utcnow() -> datetime:
    return datetime.now(UTC)


class Mailbox(MailboxBase, table=True):
    """A registered mailbox. Secrets are stored only as Fernet tokens (``*_encrypted``)."""

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
