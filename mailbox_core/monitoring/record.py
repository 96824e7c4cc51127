"""Where health is recorded, the monitor decides: next check, pause or backoff, alerts,
expiry warnings and certificate facts, in the same transaction as the check itself.

``MailboxService.record_checks`` calls ``after_checks`` right after the health upsert, so
``check --all``, Check all, ``check-due`` and the worker all decide the same way. The
health rows are locked by that upsert until commit (in ascending mailbox order), so two
recorders of one mailbox take turns here too; the monitor rows are read after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from mailbox_core.config import MonitorSettings
from mailbox_core.grant import GrantFacts
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import alerts, grants, rules
from mailbox_core.monitoring.store import ALERT, HEALTH, MAILBOX, MONITOR, dialect, insert
from mailbox_core.probe import Certificate, Offer


class Origin(StrEnum):
    """Who asked for a check: the rules differ (a person's single test always runs)."""

    SCHEDULED = "scheduled"  # check-due, the worker
    SWEEP = "sweep"  # Check all, check --all
    EXPLICIT = "explicit"  # a person's Test connection / Retry now of one mailbox


@dataclass(frozen=True)
class CheckRecord:
    """A check to record, with what the monitor needs beyond the history row."""

    check: MailboxCheck
    origin: Origin = Origin.SWEEP
    owner: str | None = None  # the lease it ran under
    hint: str = ""
    certificate: Certificate | None = None
    offer: Offer | None = None  # what the server offered for signing in (the check's own)
    since: datetime | None = None  # arrivals were counted from then (after an outage)
    grant: GrantFacts | None = None  # what the token endpoint showed (OAuth mailboxes)


_COLUMNS = [c.name for c in MONITOR.columns]
_DEFAULTS: dict[str, Any] = {
    c.name: getattr(c.default, "arg", None) if c.default is not None else None
    for c in MONITOR.columns
}


def after_checks(
    session: Session,
    records: Sequence[CheckRecord],
    *,
    settings: MonitorSettings,
    now: datetime,
    jitter: Callable[[], float],
) -> None:
    """Fold recorded checks into the monitor's state; decide (and store) alerts."""
    by_mailbox: defaultdict[int, list[CheckRecord]] = defaultdict(list)
    for record in records:
        by_mailbox[record.check.mailbox_id].append(record)
    ids = sorted(by_mailbox)
    mailboxes = _rows(session, MAILBOX, MAILBOX.c.id, ids)
    health = _rows(session, HEALTH, HEALTH.c.mailbox_id, ids)
    monitors = _rows(session, MONITOR, MONITOR.c.mailbox_id, ids, lock=True)
    states, raised = [], []
    for mailbox_id in ids:
        if mailbox_id not in mailboxes or mailbox_id not in health:
            continue  # deleted meanwhile: add_checks skipped it too
        state = dict(monitors.get(mailbox_id) or {**_DEFAULTS, "mailbox_id": mailbox_id})
        decide = _Decision(state, mailboxes[mailbox_id], health[mailbox_id], settings, now)
        for record in sorted(by_mailbox[mailbox_id], key=lambda r: _aware(r.check.started_at)):
            decide.schedule(record, jitter())
        decide.decide_alerts()
        decide.grant(session, by_mailbox[mailbox_id])
        states.append(state)
        raised += decide.raised
    _upsert(session, states)
    if raised:
        session.connection().execute(ALERT.insert(), raised)


class _Decision:
    """The rules applied to one mailbox's monitor row (``state``, changed in place)."""

    def __init__(
        self,
        state: dict[str, Any],
        mailbox: dict[str, Any],
        health: dict[str, Any],
        settings: MonitorSettings,
        now: datetime,
    ) -> None:
        self.state, self.mailbox, self.health = state, mailbox, health
        self.settings, self.now = settings, now
        self.raised: list[dict[str, Any]] = []
        self.fault = rules.Fault.NONE
        self.latest: CheckRecord | None = None

    def schedule(self, record: CheckRecord, jitter: float) -> None:
        check, state = record.check, self.state
        self.fault = rules.fault_of(check.ok, check.problem, check.message)
        self.latest = record
        current = rules.Schedule(
            next_check_at=state["next_check_at"],
            backoff_level=state["backoff_level"] or 0,
            pause_level=state["pause_level"] or 0,
            paused_until=state["paused_until"],
            pause_reason=state["pause_reason"],
        )
        if record.origin is Origin.EXPLICIT:
            # A person's Test / Retry now ends the pause; its own result decides what next.
            current = rules.Schedule(current.next_check_at, current.backoff_level)
        after = rules.after_check(
            current,
            at=_aware(check.started_at),
            interval_minutes=self.mailbox["check_interval"] or 5,
            fault=self.fault,
            reason=f"{check.message}"[:500],
            jitter=jitter,
        )
        state.update(
            next_check_at=after.next_check_at,
            backoff_level=after.backoff_level,
            pause_level=after.pause_level,
            paused_until=after.paused_until,
            pause_reason=after.pause_reason,
        )
        if self.fault is rules.Fault.NONE or check.failed_step == "Mailbox":
            state["signin_ok"] = True
        elif self.fault is rules.Fault.ACCOUNT:
            state["signin_ok"] = False
        if record.owner is not None and state["lease_owner"] == record.owner:
            state["lease_owner"] = state["lease_until"] = None
        if record.certificate is not None:
            self._certificate(record.certificate)
        self._vitals(record)

    def decide_alerts(self) -> None:
        health, state, latest = self.health, self.state, self.latest
        assert latest is not None
        before = rules.AlertState(state["alert_open"], state["alert_sent"], state["alert_since"])
        since = _maybe_aware(health["failing_since"])
        after, kind = rules.alert_step(
            before,
            ok=bool(health["last_ok"]),
            failures=int(health["consecutive_failures"]),
            failing_since=since,
            fault=self.fault,
            alert_after=self.settings.alert_after,
            quiet=self.quiet,
        )
        state.update(alert_open=after.open, alert_sent=after.sent, alert_since=after.since)
        if kind is rules.AlertKind.DOWN:
            check = latest.check
            if rules.needs_reauthorising(check.problem, check.message):
                kind = rules.AlertKind.REAUTHORISE
            paused = _maybe_aware(state["paused_until"]) if state["pause_level"] else None
            self._raise(kind, alerts.down(self._who(), kind, check, latest.hint, since, paused))
        elif kind is rules.AlertKind.RECOVERED:
            down_since = _maybe_aware(before.since) or _aware(latest.check.started_at)
            self._raise(kind, alerts.recovered(self._who(), down_since, self.now))
        self._secret_expiry()

    def grant(self, session: Session, records: list[CheckRecord]) -> None:
        """OAuth grant health (issue 15): fold the checks' token facts into the mailbox's
        grant row, then warn (once) about a Gmail refresh token unused for five months."""
        mailbox_id = self.mailbox["id"]
        ordered = sorted(records, key=lambda r: _aware(r.check.started_at))
        facts = [(_aware(r.check.started_at), r.grant) for r in ordered if r.grant is not None]
        if facts:
            grants.fold(session, mailbox_id, facts)
        gmail = self.mailbox["oauth_enabled"] and self.mailbox["oauth_provider"] == "Gmail"
        if gmail and not self.quiet:  # one indexed query, only where the rule applies
            url = self.settings.public_url
            self.raised += grants.unused_alerts(
                session, now=self.now, public_url=url, ids=[mailbox_id]
            )

    @property
    def quiet(self) -> bool:
        snoozed = self.state["snoozed_until"]
        if snoozed is not None and _aware(snoozed) > self.now:
            return True
        state = self.state
        return rules.in_window(
            state["window_start"], state["window_end"], state["window_tz"], self.now
        )

    def _vitals(self, record: CheckRecord) -> None:
        """Vital signs: the latest values, one alert per threshold crossed, the offer.

        A failed check read nothing, so what is known stays; a late check older than the
        values already kept changes nothing either.
        """
        check, state = record.check, self.state
        at = _aware(check.started_at)
        if check.offer is not None:
            self._offer(check.offer, record.offer, at, check.ok)
        if record.since is not None and check.arrived_since is not None:
            state.update(
                outage_arrived=check.arrived_since, outage_from=record.since, outage_until=at
            )
        kept = _maybe_aware(state["vitals_at"])
        if not check.ok or (kept is not None and kept > at):
            return
        state.update(
            vitals_at=at,
            quota_ratio=check.quota_ratio,
            unseen=check.unseen,
            oldest_unseen_at=check.oldest_unseen_at,
        )
        self._quota(check)
        self._backlog(check, at)

    def _quota(self, check: MailboxCheck) -> None:
        state = self.state
        thresholds = rules.parse_thresholds(self.mailbox["quota_warnings"])
        level = rules.quota_level(check.quota_ratio, thresholds)
        state["quota_level"] = level
        if check.quota_ratio is None:
            return  # unknown is not "back to normal"
        alerted, kind = rules.quota_step(state["quota_alerted"], level, quiet=self.quiet)
        state["quota_alerted"] = alerted
        if kind is rules.AlertKind.QUOTA:
            assert level is not None
            self._raise(kind, alerts.quota(self._who(), check, level))
        elif kind is rules.AlertKind.QUOTA_NORMAL:
            self._raise(kind, alerts.quota_normal(self._who(), check.quota_ratio))

    def _backlog(self, check: MailboxCheck, at: datetime) -> None:
        if check.unseen is None:
            return  # not known (POP3): neither over nor normal
        state, minutes = self.state, self.mailbox["backlog_minutes"]
        age = rules.backlog_age(check.oldest_unseen_at, check.unseen, at)
        over = minutes is not None and age is not None and age >= timedelta(minutes=minutes)
        state["backlog_over"] = over
        alerted, kind = rules.backlog_step(bool(state["backlog_alerted"]), over, quiet=self.quiet)
        state["backlog_alerted"] = alerted
        if kind is rules.AlertKind.BACKLOG:
            assert age is not None and minutes is not None
            self._raise(kind, alerts.backlog(self._who(), age, check.unseen, minutes))
        elif kind is rules.AlertKind.BACKLOG_NORMAL:
            self._raise(kind, alerts.backlog_normal(self._who(), check.unseen))

    def _offer(self, summary: str, offer: Offer | None, at: datetime, ok: bool) -> None:
        """A changed offer is an event (sent, or recorded while quiet); the badge stays
        until someone acknowledges it or a later check signs in under the new rules."""
        state, old = self.state, self.state["offer"]
        if offer is not None:
            state["password_offered"] = offer.password
        changed_at = _maybe_aware(state["offer_changed_at"])
        if old is not None and old != summary:
            state.update(offer_before=old, offer_changed_at=at)
            lost = rules.signs_in_with_password(
                bool(self.mailbox["oauth_enabled"]), self.mailbox["oauth_provider"]
            ) and (offer is not None and not offer.password)
            self._raise(
                rules.AlertKind.SIGNIN_RULES,
                alerts.signin_rules(self._who(), self._where(), old, summary, lost),
                status="recorded" if self.quiet else "pending",
            )
        elif ok and changed_at is not None and at > changed_at:
            state["offer_changed_at"] = None
        state["offer"] = summary

    def _certificate(self, cert: Certificate) -> None:
        state = self.state
        old = state["cert_issuer"]
        if old and old != cert.issuer:
            self._raise(
                rules.AlertKind.CERT_ISSUER,
                alerts.issuer_changed(self._who(), self._where(), old, cert.issuer),
                status="recorded",
            )
        if state["cert_warned_for"] is None or _aware(state["cert_warned_for"]) != cert.not_after:
            state["cert_warned"] = None  # a new certificate: its warnings start afresh
        state.update(cert_not_after=cert.not_after, cert_issuer=cert.issuer, cert_seen_at=self.now)
        days = rules.days_until(cert.not_after, self.now)
        due = rules.expiry_warning(days, rules.CERT_THRESHOLDS, state["cert_warned"])
        if due is not None and not self.quiet:
            state.update(cert_warned=due, cert_warned_for=cert.not_after)
            self._raise(
                rules.AlertKind.CERT_EXPIRY,
                alerts.cert_expiry(self._who(), self._where(), cert, days),
            )

    def _secret_expiry(self) -> None:
        expires: date | None = self.mailbox["client_secret_expires"]
        state = self.state
        if expires is None:
            return
        if state["secret_warned_for"] != expires:
            state["secret_warned"] = None
        days = rules.days_until(expires, self.now)
        due = rules.expiry_warning(days, rules.SECRET_THRESHOLDS, state["secret_warned"])
        if due is not None and not self.quiet:
            state.update(secret_warned=due, secret_warned_for=expires)
            self._raise(
                rules.AlertKind.SECRET_EXPIRY, alerts.secret_expiry(self._who(), expires, days)
            )

    def _who(self) -> alerts.Who:
        return alerts.Who(self.mailbox["id"], self.mailbox["name"], self.settings.public_url)

    def _where(self) -> str:
        return f"{self.mailbox['host']} port {self.mailbox['port']}"

    def _raise(self, kind: rules.AlertKind, message: alerts.Text, status: str = "pending") -> None:
        self.raised.append(alerts.alert_row(self._who(), kind, message, self.now, status))


def _rows(
    session: Session, table: Any, key: Any, ids: list[int], lock: bool = False
) -> dict[int, dict[str, Any]]:
    query = select(table).where(key.in_(ids)).order_by(key)
    if lock and dialect(session) == "postgresql":
        query = query.with_for_update()
    return {
        row._mapping[key.name]: dict(row._mapping) for row in session.connection().execute(query)
    }


def _upsert(session: Session, states: list[dict[str, Any]]) -> None:
    if not states:
        return
    statement = insert(session, MONITOR)
    changes = {name: statement.excluded[name] for name in _COLUMNS if name != "mailbox_id"}
    statement = statement.on_conflict_do_update(index_elements=[MONITOR.c.mailbox_id], set_=changes)
    session.connection().execute(statement, [{c: s[c] for c in _COLUMNS} for s in states])


def _aware(moment: datetime) -> datetime:
    return rules.aware(moment)


def _maybe_aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else rules.aware(moment)
