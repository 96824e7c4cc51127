"""Is the checker itself alive? Every sweep is recorded; the heartbeat reads them back.

When no sweep has started for three ticks (or none ever, once active mailboxes have
existed that long), the checker is "stale": the Mailboxes page shows a banner and the
metrics say so. ``MAILBOX_HEARTBEAT_URL`` is requested after every sweep, so an outside
monitor notices a dead checker even when nobody looks at the page. Sweeps also prune
history older than ``MAILBOX_CHECK_RETENTION_DAYS``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from mailbox_core import tally
from mailbox_core.monitoring import budget
from mailbox_core.monitoring.rules import aware
from mailbox_core.monitoring.store import ALERT, CHECK, MAILBOX, SWEEP

log = logging.getLogger(__name__)
STALE_AFTER_TICKS = 3


@dataclass(frozen=True)
class Heartbeat:
    """When the last sweep ran and whether that is too long ago."""

    last_sweep_at: datetime | None
    tick: float
    stale: bool
    message: str

    @property
    def expected(self) -> str:
        return every(self.tick)


def every(tick: float) -> str:
    """A tick as people say it: "every minute", "every 10 seconds", "every 5 minutes"."""
    if tick == 60:
        return "every minute"
    if tick < 60:
        return f"every {tick:g} seconds"
    return f"every {tick / 60:g} minutes"


def start(session: Session, *, runner: str, now: datetime) -> int:
    """Record that a sweep began; returns its ID."""
    statement = SWEEP.insert().values(
        runner=runner[:120], started_at=now, claimed=0, checked=0, failed=0, skipped=0
    )
    return int(session.connection().execute(statement.returning(SWEEP.c.id)).scalar_one())


_FAILING = ("Active", "failing")


def add(
    session: Session, *, sweep_id: int, now: datetime, claimed: int = 0, checked: int = 0,
    failed: int = 0, skipped: int = 0,
) -> None:  # fmt: skip
    """Add counts to a sweep (its runner, or the worker jobs it deferred) and mark it done."""
    s = SWEEP.c
    statement = (
        update(SWEEP)
        .where(s.id == sweep_id)
        .values(
            claimed=s.claimed + claimed,
            checked=s.checked + checked,
            failed=s.failed + failed,
            skipped=s.skipped + skipped,
            finished_at=now,
            failing=failing(session),
        )
    )
    session.connection().execute(statement)


def failing(session: Session) -> int:
    """Active mailboxes whose newest check failed (from the tally: no count of the tables)."""
    return tally.read(session).counts.get(_FAILING, 0)


def state(session: Session, *, now: datetime, tick: float) -> Heartbeat:
    """The checker's heartbeat as of ``now``."""
    last = session.connection().execute(select(func.max(SWEEP.c.started_at))).scalar_one()
    limit = timedelta(seconds=STALE_AFTER_TICKS * tick)
    if last is not None:
        last = aware(last)
        stale = now - last > limit
        text = (
            f"Scheduled checks have not run since {last:%Y-%m-%d %H:%M} UTC; "
            f"expected {every(tick)}."
        )
        return Heartbeat(last, tick, stale, text if stale else "")
    oldest = (
        session.connection()
        .execute(select(func.min(MAILBOX.c.created_at)).where(MAILBOX.c.status == "Active"))
        .scalar_one()
    )
    expected = oldest is not None and now - aware(oldest) > limit
    text = (
        f"Scheduled checks have never run; expected {every(tick)}. Run "
        "`python -m mailbox_core check-due` from cron, a systemd timer or a Kubernetes "
        "CronJob, or `python -m mailbox_core worker` (README)."
    )
    return Heartbeat(None, tick, expected, text if expected else "")


def ping(url: str, timeout: float = 10) -> bool:
    """Request the heartbeat URL; a failure is logged, never raised (the sweep is done)."""
    if not url:
        return False
    try:
        requests.get(url, timeout=timeout).raise_for_status()
    except requests.RequestException as exc:
        log.warning("Heartbeat URL could not be reached: %s", type(exc).__name__)
        return False
    return True


def prune(session: Session, *, now: datetime, retention_days: int) -> None:
    """Delete checks, alerts and sweeps older than the retention, and old budget rows.

    Also folds the list's tally rows (mailbox_core/tally.py), so a fleet checked for months
    with nobody looking at the list keeps a short tally.
    """
    cutoff = now - timedelta(days=retention_days)
    connection = session.connection()
    connection.execute(delete(CHECK).where(CHECK.c.started_at < cutoff))
    connection.execute(
        delete(ALERT).where(ALERT.c.created_at < cutoff, ALERT.c.status != "pending")
    )
    connection.execute(delete(SWEEP).where(SWEEP.c.started_at < cutoff))
    budget.prune(session, now=now)
    if tally.read(session).due_for_compacting:
        tally.compact(session)
