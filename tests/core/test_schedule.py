"""Claims and leases on SQLite and PostgreSQL: one statement, disjoint under concurrency,
expiring leases, what a recorded check and a person's change do to the schedule."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import Engine, text

from mailbox_core.crypto import SecretBox
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import CheckRecord, Monitor, Origin
from mailbox_core.monitoring.rules import aware
from mailbox_core.schemas import Status
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR
from tests.core.test_health_concurrency import add_mailboxes
from tests.support.monitoring import Clock


def monitored(engine: Engine, key: str, clock: Clock) -> MailboxService:
    return MailboxService(engine, SecretBox([key]), Monitor(engine, clock=clock))


def record(
    service: MailboxService, clock: Clock, mailbox_id: int, ok: bool, **more: object
) -> None:
    check = MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=clock(),
        ok=ok,
        failed_step=None if ok else "Sign-in",
        message="OK" if ok else "The server refused the password for x@example.com",
        latency_ms=1.0,
        problem=None if ok else "password refused",
    )
    service.record_checks([CheckRecord(check, **more)])  # type: ignore[arg-type]


def test_new_active_mailboxes_are_due_and_each_claim_takes_others(engine: Engine, key: str) -> None:
    clock = Clock()
    service = monitored(engine, key, clock)
    ids = add_mailboxes(service, 10)
    service.set_status(ids[-2:], Status.NOT_ACTIVE, actor=ACTOR)
    monitor = service.monitor
    first = monitor.claim("a", 3)
    second = monitor.claim("b", 100)
    assert first == ids[:3] and second == ids[3:8]  # oldest due first; Not Active never
    assert monitor.claim("c", 100) == []
    clock.advance(seconds=monitor.settings.lease + 1)  # both runners died
    assert monitor.claim("c", 100) == ids[:8]


def test_concurrent_claims_never_share_a_mailbox(engine: Engine, key: str) -> None:
    service = monitored(engine, key, Clock())
    ids = add_mailboxes(service, 200)
    barrier = threading.Barrier(8)

    def claimer(n: int) -> list[int]:
        barrier.wait()
        taken: list[int] = []
        while batch := service.monitor.claim(f"runner {n}", 7):
            taken += batch
            time.sleep(0.005)  # as a runner checks its batch: the others get their turn
        return taken

    with ThreadPoolExecutor(max_workers=8) as pool:
        claims = list(pool.map(claimer, range(8)))
    every = [i for claim in claims for i in claim]
    assert sorted(every) == ids  # each exactly once
    assert sum(1 for claim in claims if claim) > 1  # they really overlapped


def test_a_recorded_check_ends_its_own_lease_and_schedules_the_next(
    engine: Engine, key: str
) -> None:
    clock = Clock()
    service = monitored(engine, key, clock)
    [mailbox] = add_mailboxes(service, 1)
    [claimed] = service.monitor.claim("me", 1)
    record(service, clock, claimed, ok=True, origin=Origin.SWEEP)  # Check all: not its lease
    status = service.monitor.status_of(mailbox)
    assert status.next_check_at is not None
    assert service.monitor.claim("other", 1) == []  # still leased to "me"
    record(service, clock, claimed, ok=True, origin=Origin.SCHEDULED, owner="me")
    with engine.connect() as connection:
        owner = connection.execute(text("SELECT lease_owner FROM mailbox_monitor")).scalar()
    assert owner is None
    next_at = service.monitor.status_of(mailbox).next_check_at
    assert next_at is not None
    assert timedelta(minutes=5) <= next_at - clock() <= timedelta(minutes=5.5)
    clock.now = next_at
    assert service.monitor.claim("other", 1) == [mailbox]


def test_a_change_by_a_person_ends_the_pause_and_makes_it_due(engine: Engine, key: str) -> None:
    clock = Clock()
    service = monitored(engine, key, clock)
    [mailbox] = add_mailboxes(service, 1)
    record(service, clock, mailbox, ok=False)
    status = service.monitor.status_of(mailbox)
    assert status.paused(clock()) and status.pause_level == 1
    assert service.monitor.claim("me", 1) == []
    row = service.get_mailbox(mailbox)
    values = {**row.model_dump(), "password": "new-password", "comments": "typed again"}
    service.update_mailbox(mailbox, values, expected_version=row.version, actor=ACTOR)
    assert not service.monitor.status_of(mailbox).paused(clock())
    assert service.monitor.claim("me", 1) == [mailbox]


def test_a_paused_mailbox_is_left_alone_by_check_all_but_not_by_a_persons_test(
    engine: Engine, key: str
) -> None:
    from mailbox_core.checks import MailboxChecker

    clock = Clock()
    service = monitored(engine, key, clock)
    [mailbox] = add_mailboxes(service, 1, port=9)  # nothing answers on port 9
    record(service, clock, mailbox, ok=False)
    checker = MailboxChecker(service)
    [result] = checker.check_many(actor=ACTOR).values()
    assert result.skipped.startswith("paused after a refused sign-in until")
    assert not result.ok and service.health_of(mailbox).consecutive_failures == 1  # type: ignore[union-attr]
    explicit = checker.retry_now(mailbox, actor=ACTOR)
    assert not explicit.skipped and explicit.failed_step is not None
    assert explicit.failed_step.name == "TCP"
    status = service.monitor.status_of(mailbox)
    assert status.consecutive_failures == 2 and not status.paused(clock())  # not the account's


def test_sweeps_prune_history_past_the_retention(engine: Engine, key: str) -> None:
    clock = Clock()
    service = monitored(engine, key, clock)
    [mailbox] = add_mailboxes(service, 1)
    record(service, clock, mailbox, ok=True)
    clock.advance(days=31)
    record(service, clock, mailbox, ok=True)
    sweep_id = service.monitor.start_sweep("test")
    service.monitor.finish_sweep(sweep_id)
    checks = service.recent_checks(mailbox)
    assert [aware(c.started_at) for c in checks] == [clock()]
    uptime = service.monitor.uptime(mailbox)
    assert uptime == {"24 h": 1.0, "7 d": 1.0, "30 d": 1.0}
