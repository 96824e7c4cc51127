"""Alerts: what a message says, the operator's channels (email, webhook), and delivery.

Alerts are decided where health is recorded (``record.py``) and stored as ``pending``
rows of ``alert_event``; ``Dispatcher.dispatch`` claims the pending ones and sends them,
at the end of every run (Check all, check-due sweep, worker job). More than
``MAILBOX_ALERT_DIGEST_AFTER`` at once go out as one digest. Alerts go only through the
operator's channels, never through a monitored mailbox's own credentials; every alert
is recorded, sent or not, with how it was delivered.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import requests
from sqlalchemy import Engine, and_, or_, select, update
from sqlmodel import Session

from mailbox_core.config import MonitorSettings
from mailbox_core.errors import ConfigurationError
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring.rules import AlertKind
from mailbox_core.monitoring.store import ALERT, begin_write, dialect
from mailbox_core.probe import Certificate

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
_STUCK = timedelta(minutes=10)  # a "sending" row whose sender died is claimed again


# ---------------------------------------------------------------- what alerts say


@dataclass(frozen=True)
class Who:
    """The mailbox an alert is about, and where people open it."""

    mailbox_id: int
    name: str
    public_url: str = ""

    @property
    def title(self) -> str:
        return f"“{self.name}” (ID {self.mailbox_id})"

    @property
    def link(self) -> str:
        if not self.public_url:
            return ""
        return f"{self.public_url}/edit_mailbox?id={self.mailbox_id}"


@dataclass(frozen=True)
class Text:
    subject: str
    text: str
    step: str | None = None
    hint: str = ""


def alert_row(
    who: Who, kind: AlertKind, message: Text, now: datetime, status: str = "pending"
) -> dict[str, Any]:
    """The outbox row of an alert (``status`` "recorded" keeps it without sending it)."""
    return {
        "mailbox_id": who.mailbox_id,
        "mailbox_name": who.name,
        "kind": kind.value,
        "created_at": now,
        "subject": message.subject[:300],
        "text": message.text[:2000],
        "step": message.step,
        "hint": message.hint[:500],
        "status": status,
        "attempts": 0,
        "sent_at": None,
        "delivery": "" if status == "pending" else "recorded, not sent",
    }


def down(
    who: Who,
    kind: AlertKind,
    check: MailboxCheck,
    hint: str,
    since: datetime | None,
    paused_until: datetime | None,
) -> Text:
    step = check.failed_step or "check"
    if kind is AlertKind.REAUTHORISE:
        subject = f"Mailbox {who.title} needs to be re-authorised"
    else:
        subject = f"Mailbox {who.title} is failing"
    lines = [f"{step} failed: {check.message}"]
    if since is not None:
        lines.append(f"Failing since {_when(since)}.")
    if hint:
        lines.append(f"What to do: {hint}")
    if paused_until is not None:
        lines.append(
            f"Scheduled sign-ins are paused until {_when(paused_until)} so the account is not "
            "locked; saving new settings or pressing Retry now ends the pause."
        )
    return Text(subject, _with_link(lines, who), step, hint)


def recovered(who: Who, since: datetime, now: datetime) -> Text:
    took = duration(now - since)
    lines = [f"Mailbox {who.title} works again; it was failing for {took} (since {_when(since)})."]
    return Text(f"Mailbox {who.title} recovered after {took}", _with_link(lines, who))


def _advised(who: Who, subject: str, said: str, hint: str, step: str | None = None) -> Text:
    """An alert that says ``said``, then what to do (``hint``, also kept on its own)."""
    lines = [said]
    if hint:
        lines.append(f"What to do: {hint}")
    return Text(subject, _with_link(lines, who), step, hint)


def secret_expiry(who: Who, expires: date, days: float) -> Text:
    return _advised(
        who,
        f"Client Secret of {who.title} expires {_in_days(days)}",
        f"The Client Secret of mailbox {who.title} expires on {expires:%Y-%m-%d} "
        f"({_in_days(days)}).",
        "Create a new client secret with the identity provider, paste it into Client Secret "
        "and set Client Secret expires to its new date.",
    )


def grant_unused(who: Who, last_used: datetime, now: datetime) -> Text:
    days = (now - last_used).days
    return _advised(
        who,
        f"Refresh token of {who.title} unused for {days} days",
        f"The refresh token of mailbox {who.title} was last used on {_when(last_used)} "
        f"({days} days ago). Google revokes refresh tokens left unused for six months.",
        "Test the connection (or activate the mailbox) so the token is used; if it was "
        "revoked already, re-authorise the mailbox (Connect account).",
    )


def cert_expiry(who: Who, where: str, cert: Certificate, days: float) -> Text:
    return _advised(
        who,
        f"TLS certificate of {where} {_expires(days)}",
        f"The TLS certificate of {where} (mailbox {who.title}) expires on "
        f"{_when(cert.not_after)} ({_in_days(days)}); issuer: {cert.issuer}.",
        "The mail server's administrator must renew the certificate.",
        step="TLS",
    )


def issuer_changed(who: Who, where: str, old: str, new: str) -> Text:
    lines = [f"The TLS certificate of {where} (mailbox {who.title}) changed issuer: {old} → {new}."]
    return Text(f"Certificate of {where} changed issuer", _with_link(lines, who), "TLS")


def quota(who: Who, check: MailboxCheck, threshold: int) -> Text:
    ratio = check.quota_ratio or 0.0
    usage = [
        f"{what} {_number(used)} of {_number(limit)}{unit}"
        for what, used, limit, unit in (
            ("storage", check.quota_storage_used, check.quota_storage_limit, " KiB"),
            ("messages", check.quota_messages_used, check.quota_messages_limit, ""),
        )
        if used is not None and limit
    ]
    return _advised(
        who,
        f"Mailbox {who.title} is near full: {percent(ratio)}",
        f"Mailbox {who.title} is {percent(ratio)} full ({'; '.join(usage) or 'quota'}), "
        f"past its {threshold} % warning.",
        "Delete or archive old mail, or ask the provider for a larger quota: a full mailbox "
        "bounces or silently drops new mail.",
    )


def quota_normal(who: Who, ratio: float) -> Text:
    lines = [f"Mailbox {who.title} is back under its quota warnings: {percent(ratio)} used."]
    return Text(f"Mailbox {who.title} quota back to normal", _with_link(lines, who))


def backlog(who: Who, age: timedelta, unseen: int, minutes: int) -> Text:
    return _advised(
        who,
        f"Mailbox {who.title} backlog: {duration(age)}",
        f"The oldest of {unseen:,} unseen message{'s' if unseen != 1 else ''} in mailbox "
        f"{who.title} has waited {duration(age)}, longer than the "
        f"{duration(timedelta(minutes=minutes))} threshold.",
        "The helpdesk may have stopped fetching this mailbox: check that its poller runs "
        "and signs in.",
    )


def backlog_normal(who: Who, unseen: int) -> Text:
    lines = [f"Mailbox {who.title} is read again: {unseen:,} unseen, none past the threshold."]
    return Text(f"Mailbox {who.title} backlog back to normal", _with_link(lines, who))


def signin_rules(who: Who, where: str, old: str, new: str, password_lost: bool) -> Text:
    lost = (
        "This server no longer accepts password sign-in: switch the mailbox to OAuth or "
        "an app password."
    )
    return _advised(
        who,
        f"Sign-in rules of {where} changed",
        f"{where} (mailbox {who.title}) changed what it offers for signing in: {old} → {new}.",
        lost if password_lost else "",
        step="Sign-in",
    )


def percent(ratio: float) -> str:
    """A quota ratio as people read it: "92 %" (never rounded up to a threshold)."""
    return f"{int(ratio * 100)} %"


def _number(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def duration(delta: timedelta) -> str:
    """A span as people say it: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _in_days(days: float) -> str:
    whole = int(days)
    if days < 0:
        return "already expired"
    return "today" if whole == 0 else "in 1 day" if whole == 1 else f"in {whole} days"


def _expires(days: float) -> str:
    return "has expired" if days < 0 else f"expires {_in_days(days)}"


def _with_link(lines: list[str], who: Who) -> str:
    if who.link:
        lines.append(f"Open: {who.link}")
    return "\n".join(lines)


# ---------------------------------------------------------------- channels


@dataclass(frozen=True)
class Message:
    """One message to send: a single alert or a digest of several."""

    subject: str
    text: str
    alerts: tuple[dict[str, Any], ...]


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> str:
        """Deliver; returns what to record (e.g. the recipients). Raises on failure."""


class EmailChannel:
    """Email over SMTP: smtp:// (plain), smtp+starttls:// or smtps:// with user:password@."""

    name = "email"

    def __init__(self, url: str, sender: str, to: Sequence[str], timeout: float = 15) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps", "smtp+starttls"} or not parts.hostname:
            raise ConfigurationError(
                "MAILBOX_ALERT_SMTP_URL must look like smtp://host:25, "
                "smtp+starttls://user:password@host:587 or smtps://user:password@host:465."
            )
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or {"smtp": 25, "smtps": 465, "smtp+starttls": 587}[parts.scheme]
        self.user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender, self.to, self.timeout = sender, list(to), timeout

    def send(self, message: Message) -> str:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = (
            self.sender,
            ", ".join(self.to),
            message.subject,
        )
        email.set_content(message.text)
        context = ssl.create_default_context()
        client: smtplib.SMTP
        # EHLO with the plain host name: smtplib's default (getfqdn) is a DNS lookup.
        me = socket.gethostname()
        if self.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=me, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, local_hostname=me, timeout=self.timeout)
        with client:
            if self.scheme == "smtp+starttls":
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self._password or "")
            client.send_message(email)
        return f"email to {', '.join(self.to)}"


class WebhookChannel:
    """A POST of Slack- and Teams-compatible JSON: ``text`` for both, a MessageCard's title."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10) -> None:
        self.url, self.timeout = url, timeout

    def send(self, message: Message) -> str:
        payload: dict[str, Any] = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.subject,
            "title": message.subject,
            "text": f"*{message.subject}*\n{message.text}",
            "alerts": list(message.alerts),
        }
        answer = requests.post(self.url, json=payload, timeout=self.timeout)
        answer.raise_for_status()
        return f"webhook {urlsplit(self.url).hostname}"


def channels_from(settings: MonitorSettings) -> list[Channel]:
    """The operator's channels, from the settings (none configured: alerts are only recorded)."""
    found: list[Channel] = []
    if settings.smtp_url and settings.email_to:
        found.append(EmailChannel(settings.smtp_url, settings.email_from, settings.email_to))
    if settings.webhook_url:
        found.append(WebhookChannel(settings.webhook_url))
    return found


# ---------------------------------------------------------------- delivery


class Dispatcher:
    """Sends pending alerts; many at once become one digest."""

    def __init__(
        self,
        engine: Engine,
        settings: MonitorSettings,
        clock: Callable[[], datetime],
        channels: list[Channel] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.channels = channels_from(settings) if channels is None else channels

    def dispatch(self) -> int:
        """Send what is pending; returns how many alerts were handled."""
        claimed = self._claim()
        if not claimed:
            return 0
        if not self.channels:
            self._finish([a["id"] for a in claimed], "recorded", "no alert channel configured")
            return len(claimed)
        if len(claimed) > self.settings.digest_after:
            self._deliver(_digest(claimed, self.settings.public_url), claimed)
        else:
            for alert in claimed:
                self._deliver(_single(alert), [alert])
        return len(claimed)

    def _deliver(self, message: Message, alerts: list[dict[str, Any]]) -> None:
        done, problems = [], []
        for channel in self.channels:
            try:
                done.append(channel.send(message))
            except (OSError, smtplib.SMTPException, requests.RequestException) as exc:
                log.warning("Alert channel %s failed: %s", channel.name, exc)
                problems.append(f"{channel.name} failed: {type(exc).__name__}: {exc}"[:200])
        ids = [a["id"] for a in alerts]
        if done:
            digest = " (digest)" if len(alerts) > 1 else ""
            self._finish(ids, "sent", "; ".join(done + problems) + digest)
            return
        retry = [a["id"] for a in alerts if a["attempts"] < MAX_ATTEMPTS]
        self._finish(retry, "pending", "; ".join(problems))
        self._finish([i for i in ids if i not in retry], "failed", "; ".join(problems))

    def _claim(self) -> list[dict[str, Any]]:
        now = self.clock()
        a = ALERT.c
        with Session(self.engine) as session:
            begin_write(session)
            ready = or_(
                a.status == "pending", and_(a.status == "sending", a.sent_at < now - _STUCK)
            )
            due = select(a.id).where(ready).order_by(a.id).limit(1000)
            if dialect(session) == "postgresql":
                due = due.with_for_update(skip_locked=True)
            statement = (
                update(ALERT)
                .where(a.id.in_(due.scalar_subquery()))
                .values(status="sending", sent_at=now, attempts=a.attempts + 1)
                .returning(*ALERT.columns)
            )
            rows = [dict(r._mapping) for r in session.connection().execute(statement)]
            session.commit()
        return sorted(rows, key=lambda r: r["id"])

    def _finish(self, ids: list[int], status: str, delivery: str) -> None:
        if not ids:
            return
        values: dict[str, Any] = {"status": status, "delivery": delivery[:500]}
        values["sent_at"] = self.clock() if status == "sent" else None
        with Session(self.engine) as session:
            session.connection().execute(update(ALERT).where(ALERT.c.id.in_(ids)).values(values))
            session.commit()


def _public(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "mailbox_id": alert["mailbox_id"],
        "mailbox": alert["mailbox_name"],
        "kind": alert["kind"],
        "subject": alert["subject"],
        "step": alert["step"],
        "hint": alert["hint"],
    }


def _single(alert: dict[str, Any]) -> Message:
    return Message(alert["subject"], alert["text"], (_public(alert),))


def _digest(alerts: list[dict[str, Any]], public_url: str) -> Message:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert["kind"]] = counts.get(alert["kind"], 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    lines = [f"{len(alerts)} alerts at once ({summary}):", ""]
    for a in alerts:
        link = Who(a["mailbox_id"] or 0, a["mailbox_name"], public_url).link
        hint = f" — {a['hint']}" if a["hint"] else ""
        lines.append(f"- {a['subject']}{hint}" + (f" {link}" if link and a["mailbox_id"] else ""))
    return Message(
        f"Mailbox Manager: {len(alerts)} alerts ({summary})",
        "\n".join(lines),
        tuple(_public(a) for a in alerts),
    )
