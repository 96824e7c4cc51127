"""The checker never harms an account: pauses, backoff and the per-server budget, counted
by a proxy in front of the private Dovecot (what the mail server saw)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.monitoring import sweep
from mailbox_core.monitoring.budget import SKIPPED
from tests.conftest import ACTOR
from tests.support.dovecot import USERS, free_port
from tests.support.monitoring import Clock, monitor_env, open_monitored, plain_imap
from tests.support.proxy import CountingProxy

pytestmark = [pytest.mark.dovecot]
ALICE = USERS["alice@example.com"]


@pytest.fixture
def proxy(dovecot_server: Any) -> Any:
    counting = CountingProxy(dovecot_server.ports["imap"])
    yield counting
    counting.stop()


def test_a_wrong_password_signs_in_once_in_three_sweeps_and_once_more_after_a_change(
    tmp_path: Path, proxy: CountingProxy
) -> None:
    clock = Clock()
    services = open_monitored(monitor_env(tmp_path), clock)
    values = plain_imap(proxy.port, "Stale password", "not-the-password")
    mailbox = services.mailboxes.create_mailbox(values, actor=ACTOR)
    for _ in range(3):
        done = sweep.sweep(services)
        clock.advance(minutes=5)
    assert (proxy.logins, proxy.refusals) == (1, 1)
    assert done.claimed == 0  # the later sweeps found nothing due
    status = services.monitor.status_of(mailbox.id)
    assert status.paused(clock()) and status.pause_level == 1
    assert status.paused_until is not None
    assert status.paused_until - status.last_check_at == timedelta(hours=1)  # type: ignore[operator]
    assert "refused the password" in (status.pause_reason or "")

    services.mailboxes.update_mailbox(
        mailbox.id,
        {**values, "password": "still-not-it"},
        expected_version=mailbox.version,
        actor=ACTOR,
    )
    assert not services.monitor.status_of(mailbox.id).paused(clock())  # the change ended it
    for _ in range(3):
        sweep.sweep(services)
        clock.advance(minutes=5)
    assert (proxy.logins, proxy.refusals) == (2, 2)

    clock.advance(hours=1)  # the pause is over: one scheduled attempt, then twice as long
    sweep.sweep(services)
    status = services.monitor.status_of(mailbox.id)
    assert proxy.logins == 3 and status.pause_level == 2
    assert status.paused_until - status.last_check_at == timedelta(hours=2)  # type: ignore[operator]


def test_thirty_wrong_passwords_on_one_server_stay_within_the_budget(
    tmp_path: Path, proxy: CountingProxy
) -> None:
    clock = Clock()
    services = open_monitored(monitor_env(tmp_path), clock)
    rows = [plain_imap(proxy.port, f"Wrong {n}", f"wrong-{n}") for n in range(30)]
    created = services.mailboxes.import_mailboxes(rows, actor=ACTOR)
    first = sweep.sweep(services)
    assert (proxy.logins, proxy.refusals) == (10, 10)
    assert first.failed == 10 and first.skipped == 20
    assert {r.summary for r in first.results.values() if r.skipped} == {SKIPPED}
    assert services.monitor.budget.failures("127.0.0.1") == 10

    clock.advance(minutes=1)  # the skipped ones are due again; the budget is still used up
    again = sweep.sweep(services)
    assert again.claimed == 20 and again.skipped == 20
    everything = services.checker.check_many(actor=ACTOR)  # Check all shares the budget
    assert len(everything) == 30 and all(r.skipped for r in everything.values())
    assert proxy.logins == 10

    explicit = services.checker.check_mailbox(created[0].id, actor=ACTOR)  # a person's test
    assert not explicit.ok and not explicit.skipped and proxy.logins == 11

    clock.advance(minutes=11)  # the window has passed: another budget's worth, no more
    sweep.sweep(services)
    assert proxy.logins == 21
    assert services.monitor.budget.failures("127.0.0.1") == 10


def test_a_refused_port_backs_off_and_recovers_without_a_pause(
    tmp_path: Path, dovecot_server: Any
) -> None:
    clock = Clock()
    services = open_monitored(monitor_env(tmp_path), clock)
    port = free_port()  # nothing listens here yet
    mailbox = services.mailboxes.create_mailbox(plain_imap(port, "Closed", ALICE), actor=ACTOR)
    waits = []
    for _ in range(3):
        done = sweep.sweep(services)
        assert done.failed == 1
        status = services.monitor.status_of(mailbox.id)
        assert status.pause_level == 0 and not status.paused(clock())
        assert status.next_check_at is not None
        waits.append((status.next_check_at - clock()) / timedelta(minutes=1))
        clock.now = status.next_check_at
    # interval × 2^k, plus a jitter of at most 10 %
    assert all(base <= w <= base * 1.1 for w, base in zip(waits, [5, 10, 20], strict=True))

    server = CountingProxy(dovecot_server.ports["imap"], port=port)  # the server answers
    try:
        assert sweep.sweep(services).ok
    finally:
        server.stop()
    status = services.monitor.status_of(mailbox.id)
    assert status.last_ok and status.backoff_level == 0 and status.pause_level == 0
    assert server.logins == 1 and server.refusals == 0
    assert status.next_check_at is not None
    assert timedelta(minutes=5) <= status.next_check_at - clock() <= timedelta(minutes=5.5)
