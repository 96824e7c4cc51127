"""What the monitor knows of each mailbox, for `health`, the pages and the metrics."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlmodel import Session

from mailbox_core.monitoring import rules
from mailbox_core.monitoring.store import HEALTH, MAILBOX, MONITOR

#: A mailbox's state, as the metrics and the list count it.
STATES = ("inactive", "never_checked", "paused", "failing", "healthy")


@dataclass(frozen=True)
class MonitorStatus:
    """One mailbox's health, schedule, pause, alert and expiry facts (no secrets)."""

    mailbox_id: int
    name: str
    host: str
    active: bool
    provider: str
    check_interval: int
    last_check_at: datetime | None = None
    last_ok: bool | None = None
    last_message: str = ""
    consecutive_failures: int = 0
    next_check_at: datetime | None = None
    pause_level: int = 0
    paused_until: datetime | None = None
    pause_reason: str | None = None
    backoff_level: int = 0
    snoozed_until: datetime | None = None
    window: str | None = None
    alert_open: bool = False
    cert_not_after: datetime | None = None
    cert_issuer: str | None = None
    secret_expires: date | None = None
    vitals: VitalSigns | None = None

    def paused(self, now: datetime) -> bool:
        return bool(self.pause_level and self.paused_until and self.paused_until > now)

    def snoozed(self, now: datetime) -> bool:
        return bool(self.snoozed_until and self.snoozed_until > now)

    def state(self, now: datetime) -> str:
        if not self.active:
            return "inactive"
        if self.paused(now):
            return "paused"
        if self.last_ok is None:
            return "never_checked"
        return "healthy" if self.last_ok else "failing"

    def secret_days(self, now: datetime) -> float | None:
        return None if self.secret_expires is None else rules.days_until(self.secret_expires, now)

    def cert_days(self, now: datetime) -> float | None:
        return None if self.cert_not_after is None else rules.days_until(self.cert_not_after, now)

    def notes(self, now: datetime) -> list[str]:
        """Short facts a person should see: pause, snooze, expiry warnings."""
        found = []
        if self.paused(now):
            assert self.paused_until is not None
            found.append(
                f"paused until {self.paused_until:%Y-%m-%d %H:%M} UTC: {self.pause_reason or ''}"
            )
        if self.snoozed(now):
            assert self.snoozed_until is not None
            found.append(f"alerts snoozed until {self.snoozed_until:%Y-%m-%d %H:%M} UTC")
        secret = self.secret_days(now)
        if secret is not None and secret <= max(rules.SECRET_THRESHOLDS):
            found.append(_expiry("client secret", secret))
        cert = self.cert_days(now)
        if cert is not None and cert <= max(rules.CERT_THRESHOLDS):
            found.append(_expiry("certificate", cert))
        if self.vitals is not None:
            found.extend(self.vitals.notes(now))
        return found


@dataclass(frozen=True)
class VitalSigns:
    """A mailbox's latest vital signs (issue 15); every None means "not known", never OK."""

    mailbox_type: str
    signs_in_with_password: bool
    quota_warnings: tuple[int, ...]
    backlog_minutes: int | None
    read_at: datetime | None = None
    quota_ratio: float | None = None
    quota_level: int | None = None
    unseen: int | None = None
    oldest_unseen_at: datetime | None = None
    backlog_over: bool = False
    offer: str | None = None
    offer_before: str | None = None
    offer_changed_at: datetime | None = None
    password_offered: bool | None = None
    outage_arrived: int | None = None
    outage_from: datetime | None = None
    outage_until: datetime | None = None

    @property
    def quota_state(self) -> str:
        """ "unknown" (POP3, no QUOTA, not read yet), "ok", or "near full"."""
        if self.quota_ratio is None:
            return "unknown"
        return "ok" if self.quota_level is None else "near full"

    def backlog_age(self, now: datetime) -> timedelta | None:
        """How long the oldest unseen message has waited (None: none waits, or not known)."""
        return rules.backlog_age(self.oldest_unseen_at, self.unseen, now)

    @property
    def password_gone(self) -> bool:
        """The server stopped offering the password sign-in this mailbox uses."""
        return self.signs_in_with_password and self.password_offered is False

    def notes(self, now: datetime) -> list[str]:
        """The signs past a threshold, as `health` prints them beside the state."""
        if self.read_at is None:
            return []
        found = []
        if self.quota_level is not None and self.quota_ratio is not None:
            found.append(f"near full {int(self.quota_ratio * 100)} %")
        age = self.backlog_age(now)
        if self.backlog_over and age is not None:
            found.append(f"backlog {rules.short_age(age)} (over {self.backlog_minutes} min)")
        if self.offer_changed_at is not None:
            found.append(f"sign-in rules changed {self.offer_changed_at:%Y-%m-%d %H:%M} UTC")
        if self.password_gone:
            found.append("the server no longer offers the password sign-in")
        return found


def _expiry(what: str, days: float) -> str:
    if days < 0:
        return f"{what} expired"
    return f"{what} expires in {int(days)} day{'s' if int(days) != 1 else ''}"


def _query() -> Select[Any]:
    m, h, s = MAILBOX.c, HEALTH.c, MONITOR.c
    return (
        select(
            m.id,
            m.name,
            m.host,
            m.status,
            m.oauth_enabled,
            m.oauth_provider,
            m.check_interval,
            m.client_secret_expires,
            h.last_check_at,
            h.last_ok,
            h.last_message,
            h.consecutive_failures,
            s.next_check_at,
            s.pause_level,
            s.paused_until,
            s.pause_reason,
            s.backoff_level,
            s.snoozed_until,
            s.window_start,
            s.window_end,
            s.window_tz,
            s.alert_open,
            s.cert_not_after,
            s.cert_issuer,
            m.mailbox_type,
            m.quota_warnings,
            m.backlog_minutes,
            *(s[name] for name in _VITALS),
        )
        .select_from(
            MAILBOX.outerjoin(HEALTH, h.mailbox_id == m.id).outerjoin(MONITOR, s.mailbox_id == m.id)
        )
        .order_by(m.id)
    )


#: The monitor's vital-sign columns, as VitalSigns names them (``read_at``: vitals_at).
_VITALS = (
    "vitals_at", "quota_ratio", "quota_level", "unseen", "oldest_unseen_at", "backlog_over",
    "offer", "offer_before", "offer_changed_at", "password_offered", "outage_arrived",
    "outage_from", "outage_until",
)  # fmt: skip
_VITAL_TIMES = {"vitals_at", "oldest_unseen_at", "offer_changed_at", "outage_from", "outage_until"}


def statuses(session: Session, *, ids: Sequence[int] | None = None) -> list[MonitorStatus]:
    """Every mailbox's status (or those of ``ids``), by ID."""
    query = _query()
    if ids is not None:
        query = query.where(MAILBOX.c.id.in_(list(ids)))
    return [_status(dict(row._mapping)) for row in session.connection().execute(query)]


def provider(oauth_enabled: bool, oauth_provider: str | None) -> str:
    """The sign-in a metric labels a mailbox with: password, Gmail, Office365 or Unknown."""
    return (oauth_provider or "Unknown") if oauth_enabled else "password"


def counts(session: Session, *, now: datetime) -> dict[tuple[str, str], int]:
    """Mailboxes per (state, provider), in one grouped query."""
    m, h, s = MAILBOX.c, HEALTH.c, MONITOR.c
    paused = and_(s.pause_level > 0, s.paused_until > now)
    query = (
        select(m.status, m.oauth_enabled, m.oauth_provider, h.last_ok, paused, func.count())
        .select_from(
            MAILBOX.outerjoin(HEALTH, h.mailbox_id == m.id).outerjoin(MONITOR, s.mailbox_id == m.id)
        )
        .group_by(m.status, m.oauth_enabled, m.oauth_provider, h.last_ok, paused)
    )
    found: dict[tuple[str, str], int] = {}
    for status, oauth, name, last_ok, is_paused, number in session.connection().execute(query):
        if status != "Active":
            state = "inactive"
        elif is_paused:
            state = "paused"
        elif last_ok is None:
            state = "never_checked"
        else:
            state = "healthy" if last_ok else "failing"
        key = (state, provider(bool(oauth), name))
        found[key] = found.get(key, 0) + int(number)
    return found


@dataclass(frozen=True)
class Reading:
    """One mailbox's quota and backlog as the metrics export them (None: not known)."""

    mailbox_id: int
    quota_ratio: float | None
    backlog_seconds: float | None  # 0: nothing unseen waits


def readings(session: Session, *, now: datetime) -> Iterator[Reading]:
    """The mailboxes whose vital signs were read, by ID: four columns of one table.

    A scrape asks for these every few seconds; building every mailbox's whole status
    (``statuses``: three tables, 40 columns, two objects a row) took 3.9 s and 240 MB at
    100,000 on SQLite, this 1.4-1.9 s and 158 MB, 1.1-1.4x a bare collector over runs
    (bench/metrics_scrape.py).
    """
    s = MONITOR.c
    query = (
        select(s.mailbox_id, s.quota_ratio, s.unseen, s.oldest_unseen_at)
        .where(s.vitals_at.is_not(None))
        .order_by(s.mailbox_id)
    )
    for mailbox_id, ratio, unseen, oldest in session.connection().execute(query):
        age = rules.backlog_age(oldest, unseen, now)
        waited = None if unseen is None else (age.total_seconds() if age else 0.0)
        yield Reading(mailbox_id, ratio, waited)


def _status(row: dict[str, Any]) -> MonitorStatus:
    def at(name: str) -> datetime | None:
        value = row[name]
        return None if value is None else rules.aware(value)

    window = None
    if row["window_start"] and row["window_end"]:
        window = f"{row['window_start']}–{row['window_end']} {row['window_tz'] or 'UTC'}"
    return MonitorStatus(
        mailbox_id=row["id"],
        name=row["name"],
        host=row["host"],
        active=row["status"] == "Active",
        provider=provider(bool(row["oauth_enabled"]), row["oauth_provider"]),
        check_interval=row["check_interval"],
        last_check_at=at("last_check_at"),
        last_ok=row["last_ok"],
        last_message=row["last_message"] or "",
        consecutive_failures=row["consecutive_failures"] or 0,
        next_check_at=at("next_check_at"),
        pause_level=row["pause_level"] or 0,
        paused_until=at("paused_until"),
        pause_reason=row["pause_reason"],
        backoff_level=row["backoff_level"] or 0,
        snoozed_until=at("snoozed_until"),
        window=window,
        alert_open=bool(row["alert_open"]),
        cert_not_after=at("cert_not_after"),
        cert_issuer=row["cert_issuer"],
        secret_expires=row["client_secret_expires"],
        vitals=_vitals(row),
    )


def _vitals(row: dict[str, Any]) -> VitalSigns:
    values: dict[str, Any] = {
        name: (rules.aware(row[name]) if name in _VITAL_TIMES and row[name] else row[name])
        for name in _VITALS
    }
    values["read_at"] = values.pop("vitals_at")
    values["backlog_over"] = bool(values["backlog_over"])
    return VitalSigns(
        mailbox_type=row["mailbox_type"],
        signs_in_with_password=rules.signs_in_with_password(
            bool(row["oauth_enabled"]), row["oauth_provider"]
        ),
        quota_warnings=rules.parse_thresholds(row["quota_warnings"]),
        backlog_minutes=row["backlog_minutes"],
        **values,
    )
