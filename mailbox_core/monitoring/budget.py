"""The failed-sign-in budget: scheduled checks and Check all together make at most
``MAILBOX_LOGIN_FAILURE_BUDGET`` failed sign-ins per mail server host in 10 minutes.

Rows of ``signin_attempt`` are failed sign-ins, plus reservations (``pending``) of sign-ins
in flight whose outcome is not known yet. A mailbox whose last sign-in with its current
settings worked signs in without a reservation; any other (new, changed, refused before)
first reserves one unit: the reservation succeeds only while failures and reservations on
that host in the window stay under the budget, so N processes together never exceed it.
A reservation turns into a failure or disappears when the check ends; one left by a
runner that died counts as a failure until the window passes it (the safe side).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select, text, update
from sqlmodel import Session

from mailbox_core.monitoring.store import ATTEMPT, begin_write, dialect

WINDOW = timedelta(minutes=10)
SKIPPED = "skipped: too many failed sign-ins on this server"
WAITED = (
    "skipped: other sign-ins on this server were still in flight (failed-sign-in budget); "
    "tried again in the next sweep"
)
RESERVED, EXHAUSTED, BUSY = "reserved", "exhausted", "busy"
_CACHE_SECONDS = 2.0
_RETRY = 0.2


def host_key(host: str) -> str:
    return host.strip().lower()


class Budget:
    """One process's view of the per-host budget (thread-safe)."""

    def __init__(self, engine: Engine, limit: int, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.limit = limit
        self.clock = clock
        self._exhausted: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()
        # At most ``limit`` reservations of one host in flight from this process: the rest
        # wait here instead of asking the database and being refused.
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def exhausted(self, host: str) -> bool:
        """Whether the host's failures in the window reached the budget (cached briefly)."""
        key = host_key(host)
        with self._lock:
            cached = self._exhausted.get(key)
        if cached and time.monotonic() - cached[1] < _CACHE_SECONDS:
            return cached[0]
        with Session(self.engine) as session:
            full = self._count(session, key, failures_only=True) >= self.limit
        with self._lock:
            self._exhausted[key] = (full, time.monotonic())
        return full

    def reserve(self, host: str, mailbox_id: int, wait: float = 0.0) -> str:
        """Reserve one sign-in on ``host``: RESERVED, EXHAUSTED (failures reached the
        budget) or BUSY (in-flight sign-ins fill it for longer than ``wait`` seconds)."""
        key, until = host_key(host), time.monotonic() + wait
        slot = self._slot(key)
        while True:
            if not slot.acquire(timeout=max(0.0, until - time.monotonic())):
                return BUSY
            try:
                outcome = self._reserve(key, mailbox_id)
            except BaseException:
                slot.release()
                raise
            if outcome == RESERVED:
                return outcome
            slot.release()
            if outcome == EXHAUSTED or time.monotonic() + _RETRY > until:
                return outcome
            time.sleep(_RETRY)

    def settle(self, host: str, mailbox_id: int, *, failed: bool, reserved: bool) -> None:
        """The outcome of a sign-in: a failure stays counted, anything else frees the unit."""
        key = host_key(host)
        try:
            if failed or reserved:
                self._settle(key, mailbox_id, failed=failed, reserved=reserved)
        finally:
            if reserved:
                self._slot(key).release()
        if failed:
            with self._lock:
                self._exhausted.pop(key, None)

    def _slot(self, key: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots.setdefault(key, threading.BoundedSemaphore(self.limit))

    def _reserve(self, key: str, mailbox_id: int) -> str:
        now = self.clock()
        with Session(self.engine) as session:
            begin_write(session)
            if dialect(session) == "postgresql":
                # One host's reservations take turns; other hosts are not held up.
                session.connection().execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:host))"), {"host": key}
                )
            if self._count(session, key, failures_only=True) >= self.limit:
                return EXHAUSTED
            if self._count(session, key, failures_only=False) >= self.limit:
                return BUSY
            session.connection().execute(
                ATTEMPT.insert().values(host=key, mailbox_id=mailbox_id, at=now, pending=True)
            )
            session.commit()
            return RESERVED

    def _settle(self, key: str, mailbox_id: int, *, failed: bool, reserved: bool) -> None:
        now = self.clock()
        a = ATTEMPT.c
        with Session(self.engine) as session:
            connection = session.connection()
            pending = (a.mailbox_id == mailbox_id) & (a.host == key) & a.pending
            if reserved and failed:
                connection.execute(update(ATTEMPT).where(pending).values(pending=False, at=now))
            elif reserved:
                connection.execute(delete(ATTEMPT).where(pending))
            else:
                connection.execute(
                    ATTEMPT.insert().values(host=key, mailbox_id=mailbox_id, at=now, pending=False)
                )
            session.commit()

    def _count(self, session: Session, key: str, *, failures_only: bool) -> int:
        a = ATTEMPT.c
        query = select(func.count()).where(a.host == key, a.at > self.clock() - WINDOW)
        if failures_only:
            query = query.where(~a.pending)
        return int(session.connection().execute(query).scalar_one())

    def failures(self, host: str) -> int:
        """Failed sign-ins on ``host`` in the window (for tests and the health view)."""
        with Session(self.engine) as session:
            return self._count(session, host_key(host), failures_only=True)


def prune(session: Session, *, now: datetime) -> None:
    """Forget attempts older than the window."""
    session.connection().execute(delete(ATTEMPT).where(ATTEMPT.c.at <= now - WINDOW))


class Gate:
    """The budget as one run of checks applies it (scheduled checks and Check all)."""

    def __init__(self, budget: Budget, trusted: set[int] | None = None) -> None:
        self.budget = budget
        self.trusted: set[int] = set(trusted or ())

    def admit(self, mailbox_id: int, host: str, wait: float = 0.0) -> tuple[str, bool]:
        """Right before signing in: ("", reserved) to go ahead, or (why, False) to skip."""
        if self.budget.exhausted(host):
            return SKIPPED, False
        if mailbox_id in self.trusted:
            return "", False
        outcome = self.budget.reserve(host, mailbox_id, wait)
        if outcome == RESERVED:
            return "", True
        return (SKIPPED if outcome == EXHAUSTED else WAITED), False
