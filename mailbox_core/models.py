"""Table models only. Rows are built from validated Create models, never validated here."""

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Integer, String, Table
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
    # The list filters on these and sorts by them with a LIMIT (mailbox_core/listing.py).
    __table_args__ = (
        # Also the heartbeat's "oldest active mailbox" (a lookup, not a scan of the actives).
        Index("ix_mailbox_status_created", "status", "created_at"),
        Index("ix_mailbox_mailbox_type", "mailbox_type"),
        Index("ix_mailbox_host", "host"),
        Index("ix_mailbox_account", "account"),
        # "Same mailbox twice" (mailbox_core/twins.py): other rows of the same account.
        Index("ix_mailbox_twin", "account_key", "server_key"),
        # A stored secret always names its key (listing.unreadable counts by key ID).
        *(
            CheckConstraint(
                f"({secret}_encrypted IS NULL) = ({secret}_key_id IS NULL)",
                name=f"ck_mailbox_{secret}_key_id",
            )
            for secret in ("password", "client_secret", "refresh_token")
        ),
    )

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
    # Which configured key encrypted each secret (crypto.key_id; "?" while not known):
    # the list counts the secrets no configured key opens without decrypting anything.
    password_key_id: str | None = Field(default=None, max_length=16, index=True)
    client_secret_key_id: str | None = Field(default=None, max_length=16, index=True)
    refresh_token_key_id: str | None = Field(default=None, max_length=16, index=True)
    # Name, Host, Account and Comments casefolded, what the list's search matches
    # (listing.search_text): one rule on SQLite and PostgreSQL, Unicode included.
    search_text: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # Which mailbox on which server (twins.account_key / twins.server_key), and the
    # addresses Host resolved to when saved (twins.addresses_key; None: not resolved).
    account_key: str = Field(default="", max_length=254, sa_column_kwargs={"server_default": ""})
    server_key: str = Field(default="", max_length=253, sa_column_kwargs={"server_default": ""})
    server_addresses: str | None = Field(default=None, max_length=1000)
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
    #: The diagnosis code of the failure (probe.diagnosis.Problem), for the monitor's rules.
    problem: str | None = Field(default=None, max_length=40)
    # Vital signs (issue 15), None where not known (POP3, no QUOTA, a failed check): the
    # history behind the quota and backlog charts, pruned with the checks.
    quota_ratio: float | None = None
    quota_storage_used: int | None = Field(default=None, sa_type=BigInteger)  # KiB
    quota_storage_limit: int | None = Field(default=None, sa_type=BigInteger)
    quota_messages_used: int | None = None
    quota_messages_limit: int | None = None
    unseen: int | None = None
    oldest_unseen_at: datetime | None = None
    #: Messages that arrived since the mailbox started failing (asked after an outage).
    arrived_since: int | None = None
    #: What the server offered for signing in (probe.vitals.Offer.summary()).
    offer: str | None = Field(default=None, max_length=300)


class MailboxHealth(SQLModel, table=True):
    """The current health of one mailbox, updated with every recorded check."""

    __tablename__ = "mailbox_health"

    mailbox_id: int = Field(foreign_key="mailbox.id", primary_key=True, ondelete="CASCADE")
    last_check_at: datetime
    last_ok: bool = Field(index=True)
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
    actor: str = Field(max_length=254, index=True)
    # The IdP's `sub` of a signed-in actor: stable where an email can be reassigned.
    actor_subject: str | None = Field(default=None, max_length=254)
    action: str = Field(max_length=20)
    mailbox_id: int | None = Field(default=None, index=True)
    mailbox_name: str = Field(max_length=100)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class MailboxMonitor(SQLModel, table=True):
    """What the scheduler and the alerts know of one mailbox (mailbox_core/monitoring/).

    Created on first need (a claim, a recorded check, a snooze); a mailbox without a row
    was never scheduled and is due at once.
    """

    __tablename__ = "mailbox_monitor"

    mailbox_id: int = Field(foreign_key="mailbox.id", primary_key=True, ondelete="CASCADE")
    #: None: due at once (never checked, or its settings changed).
    next_check_at: datetime | None = Field(default=None, index=True)
    lease_until: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=120)
    #: The last sign-in with the current settings worked: no budget reservation needed.
    signin_ok: bool = False
    backoff_level: int = 0
    #: Refused sign-ins in a row; > 0 means scheduled sign-ins are paused until paused_until.
    pause_level: int = 0
    paused_until: datetime | None = None
    pause_reason: str | None = Field(default=None, max_length=500)
    snoozed_until: datetime | None = None
    #: A daily maintenance window: "HH:MM" to "HH:MM" in an IANA time zone.
    window_start: str | None = Field(default=None, max_length=5)
    window_end: str | None = Field(default=None, max_length=5)
    window_tz: str | None = Field(default=None, max_length=64)
    alert_open: bool = False
    alert_sent: bool = False
    alert_since: datetime | None = None
    #: Expiry warnings: the threshold (days) last alerted, and for which expiry.
    secret_warned: int | None = None
    secret_warned_for: date | None = None
    cert_not_after: datetime | None = None
    cert_issuer: str | None = Field(default=None, max_length=500)
    cert_seen_at: datetime | None = None
    cert_warned: int | None = None
    cert_warned_for: datetime | None = None
    # Vital signs (issue 15): the latest known values, where the list joins them, and what
    # their alerts last said. Kept through failed checks (they read nothing).
    vitals_at: datetime | None = None
    quota_ratio: float | None = None
    #: The highest quota threshold reached now (None: under all, or unknown): "Near full".
    quota_level: int | None = Field(default=None, index=True)
    quota_alerted: int | None = None
    unseen: int | None = None
    oldest_unseen_at: datetime | None = None
    #: The oldest unseen message is older than the mailbox's backlog threshold.
    backlog_over: bool = Field(default=False, index=True)
    backlog_alerted: bool = False
    offer: str | None = Field(default=None, max_length=300)
    offer_before: str | None = Field(default=None, max_length=300)
    #: The offer changed then; None once acknowledged or signed in under the new rules.
    offer_changed_at: datetime | None = Field(default=None, index=True)
    #: Whether the server still offers a password sign-in (None: not known yet).
    password_offered: bool | None = Field(default=None, index=True)
    #: After an outage: how many messages arrived between these two moments.
    outage_arrived: int | None = None
    outage_from: datetime | None = None
    outage_until: datetime | None = None


class AlertEvent(SQLModel, table=True):
    """One alert decided by the monitor, and how it was delivered (never a secret)."""

    __tablename__ = "alert_event"

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key: the alerts of a deleted mailbox stay readable, like the audit trail.
    mailbox_id: int | None = Field(default=None, index=True)
    mailbox_name: str = Field(max_length=100)
    kind: str = Field(max_length=30)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    subject: str = Field(max_length=300)
    text: str = Field(max_length=2000)
    step: str | None = Field(default=None, max_length=20)
    hint: str = Field(default="", max_length=500)
    #: pending (to send), sent, failed (gave up), recorded (no channel, or not sent by design)
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = 0
    sent_at: datetime | None = None
    delivery: str = Field(default="", max_length=500)


class MonitorSweep(SQLModel, table=True):
    """One scheduled sweep (check-due run, loop tick or worker tick): the heartbeat."""

    __tablename__ = "monitor_sweep"

    id: int | None = Field(default=None, primary_key=True)
    runner: str = Field(max_length=120)
    started_at: datetime = Field(index=True)
    finished_at: datetime | None = None
    claimed: int = 0
    checked: int = 0
    failed: int = 0
    skipped: int = 0
    #: Active mailboxes failing when the sweep ended (the list's chart of failing over time).
    failing: int | None = None


class SigninAttempt(SQLModel, table=True):
    """A failed sign-in on a mail server host, or one in flight (``pending``): the budget."""

    __tablename__ = "signin_attempt"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(max_length=253, index=True)
    mailbox_id: int = Field(index=True)
    at: datetime = Field(index=True)
    pending: bool = False


class PendingConsent(SQLModel, table=True):
    """One Connect account consent: started by a user, finished once at the callback.

    The state is kept only as its SHA-256 (it is looked up, never read back); the PKCE
    verifier, a client secret typed in the form and the refresh token that waits for its
    form to be saved are Fernet tokens like every secret. The access token is not kept.
    """

    __tablename__ = "connect_consent"

    id: int | None = Field(default=None, primary_key=True)
    state_hash: str = Field(max_length=64, unique=True, index=True)
    nonce_hash: str = Field(max_length=64)
    verifier_encrypted: str | None = None
    client_secret_encrypted: str | None = None
    # Who started it: only the same user may finish it, or use what it connected.
    actor: str = Field(max_length=254)
    actor_subject: str | None = Field(default=None, max_length=254)
    # Which form: a random reference the form keeps, and the mailbox it edits (if saved).
    form: str = Field(max_length=64, index=True)
    mailbox_id: int | None = None
    provider: str = Field(max_length=20)
    mailbox_type: str = Field(max_length=10)
    account: str = Field(max_length=254)
    client_id: str | None = Field(default=None, max_length=255)
    tenant_id: str | None = Field(default=None, max_length=255)
    scope: str = Field(max_length=500)
    redirect_uri: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    used: bool = False
    finished_at: datetime | None = None
    connected_account: str | None = Field(default=None, max_length=254)
    refresh_token_encrypted: str | None = None
    error: str | None = Field(default=None, max_length=500)
    hint: str | None = Field(default=None, max_length=500)


class MailboxGrant(SQLModel, table=True):
    """What is known of an OAuth mailbox's grant (mailbox_core/grant.py); never a token."""

    __tablename__ = "mailbox_grant"

    mailbox_id: int = Field(foreign_key="mailbox.id", primary_key=True, ondelete="CASCADE")
    #: The last token request that used the refresh token and got a token.
    last_used_at: datetime | None = Field(default=None, index=True)
    #: The last time the provider answered with a new refresh token.
    rotated_at: datetime | None = None
    #: Whom the provider's ID token named (email / preferred_username); None: not known.
    subject: str | None = Field(default=None, max_length=254)
    subject_seen_at: datetime | None = None
    #: The last token failure, classified (oauth.GrantProblem; None: another refusal).
    failure: str | None = Field(default=None, max_length=40)
    failure_message: str | None = Field(default=None, max_length=500)
    failure_hint: str | None = Field(default=None, max_length=500)
    failure_at: datetime | None = None
    #: The last_used_at the "unused for 5 months" warning was sent for (once per value).
    unused_warned_for: datetime | None = None


#: How many mailboxes hold each (status, verdict) pair, as rows of +1/-1 that database
#: triggers on ``mailbox`` and ``mailbox_health`` append in the transaction of the change
#: (migration 0010); the verdict is "ok", "failing" or "none" (never checked). The list's
#: summary adds them up (mailbox_core/tally.py), which costs the same at a million
#: mailboxes as at ten, where counting the tables grows with them. Appending never waits
#: on another writer, as one counter row per pair would; ``tally.compact`` folds the rows
#: into one per pair now and then. A plain table (no key, nothing maps it to objects).
mailbox_tally = Table(
    "mailbox_tally",
    SQLModel.metadata,
    Column("status", String(), nullable=False),
    Column("verdict", String(8), nullable=False),
    Column("n", Integer, nullable=False),
)
