"""The monitor: one object over one engine that the service, the checker, the command
line and the pages use for everything scheduled checks add (see the package docstring)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from mailbox_core import listing, repository
from mailbox_core.access import Actor, Permission
from mailbox_core.config import MonitorSettings
from mailbox_core.errors import MailboxNotFound
from mailbox_core.grant import GrantPublic
from mailbox_core.models import AuditEvent
from mailbox_core.monitoring import grants, heartbeat, history, record, rules, schedule, status
from mailbox_core.monitoring.alerts import Channel, Dispatcher
from mailbox_core.monitoring.budget import Budget
from mailbox_core.monitoring.store import ALERT, MAILBOX, begin_write

Clock = Callable[[], datetime]
_ENSURE_EVERY = 5.0


@dataclass(frozen=True)
class AlertPublic:
    """One recorded alert, as the Edit page lists it."""

    id: int
    created_at: datetime
    kind: str
    subject: str
    text: str
    status: str
    delivery: str
    sent_at: datetime | None


class Monitor:
    """Schedule, never-harm rules, alerts, heartbeat and history over one database."""

    def __init__(
        self,
        engine: Engine,
        settings: MonitorSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        channels: list[Channel] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or MonitorSettings()
        self.clock: Clock = clock or rules.utcnow
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._ensured_at = -_ENSURE_EVERY
        self.budget = Budget(engine, self.settings.login_failure_budget, self.now)
        self.dispatcher = Dispatcher(engine, self.settings, self.now, channels)

    def now(self) -> datetime:
        return rules.aware(self.clock())

    def jitter(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    # -- where health is recorded (inside MailboxService's transaction)

    def after_checks(self, session: Session, records: Sequence[record.CheckRecord]) -> None:
        """Decide schedule, pause, backoff, alerts and warnings for recorded checks."""
        record.after_checks(
            session, records, settings=self.settings, now=self.now(), jitter=self.jitter
        )

    def settings_changed(self, session: Session, mailbox_id: int) -> None:
        """A person changed the mailbox: pause and backoff end, it is due at once."""
        schedule.settings_changed(session, mailbox_id=mailbox_id)

    # -- leases

    def claim(self, owner: str, limit: int, lease: float | None = None) -> list[int]:
        """Lease up to ``limit`` due mailboxes to ``owner`` (one statement)."""
        now = self.now()
        until = now + timedelta(seconds=lease or self.settings.lease)
        # New mailboxes get their schedule row at most every few seconds per process.
        ensure = time.monotonic() - self._ensured_at > _ENSURE_EVERY
        with self._write() as session:
            claimed = schedule.claim(
                session, owner=owner, now=now, until=until, limit=limit, ensure=ensure
            )
        if ensure:
            self._ensured_at = time.monotonic()
        return claimed

    def renew(self, owner: str, ids: Sequence[int], lease: float | None = None) -> list[int]:
        """Extend ``owner``'s leases; the IDs it still holds."""
        until = self.now() + timedelta(seconds=lease or self.settings.lease)
        with self._write() as session:
            return [
                i
                for part in _parts(ids)
                for i in schedule.renew(session, owner=owner, ids=part, until=until)
            ]

    def release(
        self, owner: str, ids: Sequence[int], next_check_at: datetime | None = None
    ) -> None:
        """Give leases back unchecked (due again, or at ``next_check_at``)."""
        with self._write() as session:
            for part in _parts(ids):
                schedule.release(session, owner=owner, ids=part, next_check_at=next_check_at)

    def gate_facts(self, ids: Sequence[int]) -> dict[int, tuple[bool, datetime | None]]:
        """Per mailbox: whether its last sign-in worked, and until when it is paused."""
        facts: dict[int, tuple[bool, datetime | None]] = {}
        with Session(self.engine) as session:
            for part in _parts(ids):  # bounded IN lists: SQLite limits bound parameters
                for k, (ok, p) in schedule.gate_facts(session, ids=part).items():
                    facts[k] = (ok, None if p is None else rules.aware(p))
        return facts

    def failing_since(self, ids: Sequence[int]) -> dict[int, datetime]:
        """When each failing mailbox started failing: a check then counts the arrivals."""
        found: dict[int, datetime] = {}
        with Session(self.engine) as session:
            for part in _parts(ids):
                for k, since in schedule.failing_since(session, ids=part).items():
                    found[k] = rules.aware(since)
        return found

    # -- a person's choices

    def snooze(self, mailbox_id: int, until: datetime | None, *, actor: Actor) -> None:
        """Silence a mailbox's alerts until ``until`` (None: end the snooze); audited."""
        actor.require(Permission.EDIT)
        value = None if until is None else rules.aware(until)
        change = {"snoozed_until": [None, None if value is None else f"{value:%Y-%m-%d %H:%M} UTC"]}
        self._choose(mailbox_id, {"snoozed_until": value}, "snoozed", change, actor)

    def set_window(
        self, mailbox_id: int, window: str | None, zone: str = "UTC", *, actor: Actor
    ) -> None:
        """A daily maintenance window ("02:00–03:00" in ``zone``), or None to remove it."""
        actor.require(Permission.EDIT)
        if window is None or not window.strip():
            values: dict[str, Any] = {"window_start": None, "window_end": None, "window_tz": None}
            shown = None
        else:
            parsed = rules.parse_window(window, zone)
            values = {
                "window_start": f"{parsed.start:%H:%M}",
                "window_end": f"{parsed.end:%H:%M}",
                "window_tz": parsed.zone,
            }
            shown = str(parsed)
        self._choose(
            mailbox_id, values, "maintenance", {"maintenance_window": [None, shown]}, actor
        )

    def acknowledge_offer(self, mailbox_id: int, *, actor: Actor) -> None:
        """Clear "Sign-in rules changed": someone looked at the new offer; audited."""
        actor.require(Permission.EDIT)
        change = {"sign_in_rules": ["changed", "acknowledged"]}
        self._choose(mailbox_id, {"offer_changed_at": None}, "acknowledged", change, actor)

    def _choose(
        self,
        mailbox_id: int,
        values: dict[str, Any],
        action: str,
        changes: dict[str, Any],
        actor: Actor,
    ) -> None:
        with self._write() as session:
            name = (
                session.connection()
                .execute(select(MAILBOX.c.name).where(MAILBOX.c.id == mailbox_id))
                .scalar_one_or_none()
            )
            if name is None:
                raise MailboxNotFound(mailbox_id)
            schedule.set_fields(session, mailbox_id=mailbox_id, values=values)
            event = AuditEvent(
                actor=actor.name[:254],
                actor_subject=actor.subject[:254] if actor.subject else None,
                action=action,
                mailbox_id=mailbox_id,
                mailbox_name=name,
                changes=changes,
            )
            repository.add_audit(session, event=event)

    # -- sweeps and the heartbeat

    def start_sweep(self, runner: str) -> int:
        with self._write() as session:
            return heartbeat.start(session, runner=runner, now=self.now())

    def finish_sweep(self, sweep_id: int, **counts: int) -> None:
        """Add a sweep's counts (and mark it done); also prunes old history."""
        with self._write() as session:
            heartbeat.add(session, sweep_id=sweep_id, now=self.now(), **counts)
        with self._write() as session:
            heartbeat.prune(session, now=self.now(), retention_days=self.settings.retention_days)

    def ping(self) -> bool:
        """Request MAILBOX_HEARTBEAT_URL (once per sweep)."""
        return heartbeat.ping(self.settings.heartbeat_url)

    def heartbeat(self) -> heartbeat.Heartbeat:
        with Session(self.engine) as session:
            return heartbeat.state(session, now=self.now(), tick=self.settings.tick)

    def dispatch(self) -> int:
        """Send pending alerts (a digest when there are many)."""
        return self.dispatcher.dispatch()

    # -- reads for people, `health` and the metrics

    def statuses(self, ids: Sequence[int] | None = None) -> list[status.MonitorStatus]:
        with Session(self.engine) as session:
            return status.statuses(session, ids=ids)

    def status_of(self, mailbox_id: int) -> status.MonitorStatus:
        found = self.statuses([mailbox_id])
        if not found:
            raise MailboxNotFound(mailbox_id)
        return found[0]

    def readings(self) -> list[status.Reading]:
        """The vital signs the metrics export (mailboxes whose vitals were read)."""
        with Session(self.engine) as session:
            return list(status.readings(session, now=self.now()))

    def sign_counts(self) -> dict[listing.VitalFilter, int]:
        """How many mailboxes show each vital sign (as the list's summary counts them)."""
        with Session(self.engine) as session:
            return listing.sign_counts(session)

    def counts(self) -> dict[tuple[str, str], int]:
        with Session(self.engine) as session:
            return status.counts(session, now=self.now())

    def alerts_of(self, mailbox_id: int, limit: int = 50) -> list[AlertPublic]:
        """The alerts recorded for one mailbox, newest first."""
        a = ALERT.c
        query = (
            select(a.id, a.created_at, a.kind, a.subject, a.text, a.status, a.delivery, a.sent_at)
            .where(a.mailbox_id == mailbox_id)
            .order_by(a.created_at.desc(), a.id.desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            rows = session.connection().execute(query).all()
        return [
            AlertPublic(
                id=r[0],
                created_at=rules.aware(r[1]),
                kind=r[2],
                subject=r[3],
                text=r[4],
                status=r[5],
                delivery=r[6],
                sent_at=None if r[7] is None else rules.aware(r[7]),
            )
            for r in rows
        ]

    def uptime(self, mailbox_id: int) -> dict[str, float | None]:
        with Session(self.engine) as session:
            return history.uptime(session, mailbox_id=mailbox_id, now=self.now())

    def points(self, mailbox_id: int, days: float = 1) -> list[history.Point]:
        since = self.now() - timedelta(days=days)
        with Session(self.engine) as session:
            return history.points(session, mailbox_id=mailbox_id, since=since)

    def vital_points(self, mailbox_id: int, days: float = 7) -> list[history.VitalPoint]:
        """Quota and backlog over time (passed checks of the last ``days``)."""
        since = self.now() - timedelta(days=days)
        with Session(self.engine) as session:
            return history.vital_points(session, mailbox_id=mailbox_id, since=since)

    def last_check_id(self) -> int:
        """Changes whenever any check is recorded: an open list asks it to redraw itself."""
        with Session(self.engine) as session:
            return history.last_check_id(session)

    def failing_over_time(self, hours: float = 24) -> list[tuple[datetime, int]]:
        since = self.now() - timedelta(hours=hours)
        with Session(self.engine) as session:
            return history.failing_over_time(session, since=since)

    def grant_of(self, mailbox_id: int) -> GrantPublic | None:
        """An OAuth mailbox's grant health (None: the mailbox does not use OAuth)."""
        return self.grants([mailbox_id]).get(mailbox_id)

    def grants(self, ids: Sequence[int] | None = None) -> dict[int, GrantPublic]:
        """The grant health of OAuth mailboxes (of ``ids``, or all), by ID; one query."""
        with Session(self.engine) as session:
            return grants.read(session, now=self.now(), ids=ids)

    def warn_unused_grants(self) -> int:
        """Queue the "unused for 5 months" alert of every Gmail grant due one (once each),
        checked or not: an inactive mailbox's token is the one that goes unused."""
        with self._write() as session:
            rows = grants.unused_alerts(
                session, now=self.now(), public_url=self.settings.public_url
            )
            if rows:
                session.connection().execute(ALERT.insert(), rows)
        return len(rows)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            begin_write(session)
            yield session
            session.commit()


def _parts(ids: Sequence[int], size: int = 5000) -> list[Sequence[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
