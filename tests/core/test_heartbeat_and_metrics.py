"""Is the checker alive? The heartbeat (banner text and metric, with an injectable clock),
the heartbeat URL once per sweep, and the Prometheus endpoint against the database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from mailbox_core.monitoring import sweep
from mailbox_core.monitoring.metrics import Metrics
from tests.conftest import ACTOR, ROOT
from tests.support import netfence
from tests.support.dovecot import USERS, free_port
from tests.support.monitoring import Clock, monitor_env, open_monitored, plain_imap
from tests.support.receivers import HttpReceiver

ALICE = USERS["alice@example.com"]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    http = HttpReceiver()
    yield http
    http.stop()


def samples(text_: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_no_sweep_for_three_ticks_shows_the_banner_and_the_metric(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    clock = Clock()
    env = monitor_env(tmp_path, MAILBOX_HEARTBEAT_URL=f"{receiver.url}/ping/abc")
    services = open_monitored(env, clock)
    metrics = Metrics(services.monitor)
    services.mailboxes.create_mailbox(plain_imap(free_port(), "Closed", ALICE), actor=ACTOR)
    assert not services.monitor.heartbeat().stale  # a schedule is not expected yet
    clock.advance(minutes=4)
    beat = services.monitor.heartbeat()
    assert beat.stale and beat.message.startswith("Scheduled checks have never run")
    assert samples(metrics.text())[("mailbox_scheduler_stale", ())] == 1.0

    for _ in range(3):
        sweep.sweep(services)
    assert receiver.gets == ["/ping/abc"] * 3  # once per sweep
    swept = clock()
    clock.advance(seconds=180)
    assert not services.monitor.heartbeat().stale
    assert samples(metrics.text())[("mailbox_last_sweep_timestamp_seconds", ())] == (
        swept.timestamp()
    )
    clock.advance(seconds=1)
    beat = services.monitor.heartbeat()
    assert beat.stale and beat.message == (
        f"Scheduled checks have not run since {swept:%Y-%m-%d %H:%M} UTC; expected every minute."
    )
    assert samples(metrics.text())[("mailbox_scheduler_stale", ())] == 1.0


@pytest.mark.dovecot
def test_the_metrics_endpoint_parses_and_matches_the_database(
    tmp_path: Path, dovecot_server: Any
) -> None:
    clock = Clock()
    services = open_monitored(monitor_env(tmp_path), clock)
    imap = dovecot_server.ports["imap"]
    create = services.mailboxes.create_mailbox
    for n in range(3):
        create(plain_imap(imap, f"Good {n}", ALICE), actor=ACTOR)
    create(plain_imap(free_port(), "Closed", ALICE), actor=ACTOR)
    create(plain_imap(imap, "Wrong", "wrong"), actor=ACTOR)
    create(plain_imap(imap, "Off", ALICE, status="Not Active"), actor=ACTOR)
    metrics = Metrics(services.monitor)
    services.checker.observer = metrics.observe
    sweep.sweep(services)
    create(plain_imap(imap, "New", ALICE), actor=ACTOR)
    port = free_port()
    server, _thread = metrics.serve(port)
    try:
        found = samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    finally:
        server.shutdown()
    engine = services.mailboxes._engine
    with engine.connect() as connection:

        def count(sql: str) -> float:
            return float(connection.execute(text(sql)).scalar_one())

        by_state = {
            "healthy": count("SELECT count(*) FROM mailbox_health WHERE last_ok"),
            "failing": count(
                "SELECT count(*) FROM mailbox_health h JOIN mailbox_monitor s USING (mailbox_id)"
                " WHERE NOT h.last_ok AND s.pause_level = 0"
            ),
            "paused": count("SELECT count(*) FROM mailbox_monitor WHERE pause_level > 0"),
            "inactive": count("SELECT count(*) FROM mailbox WHERE status = 'Not Active'"),
            "never_checked": count(
                "SELECT count(*) FROM mailbox WHERE status = 'Active' AND id NOT IN "
                "(SELECT mailbox_id FROM mailbox_health)"
            ),
        }
        checks = count("SELECT count(*) FROM mailbox_check")
        failed = count("SELECT count(*) FROM mailbox_check WHERE NOT ok")
    assert by_state == {"healthy": 3, "failing": 1, "paused": 1, "inactive": 1, "never_checked": 1}
    for state, number in by_state.items():
        assert found[("mailbox_mailboxes", (("provider", "password"), ("state", state)))] == number
    assert found[("mailbox_paused", ())] == by_state["paused"]
    assert found[("mailbox_checks_total", (("result", "failed"),))] == failed
    assert found[("mailbox_checks_total", (("result", "ok"),))] == checks - failed
    assert found[("mailbox_check_duration_seconds_count", ())] == checks
    assert found[("mailbox_scheduler_stale", ())] == 0.0


def test_a_check_is_counted_only_once_its_state_is_recorded(tmp_path: Path) -> None:
    """A scrape between a check's end and its batch's write must not count the check
    while the mailbox still shows as never checked (CI once scraped in that gap)."""
    services = open_monitored(monitor_env(tmp_path))
    for n in range(4):
        services.mailboxes.create_mailbox(
            plain_imap(free_port(), f"Closed {n}", ALICE), actor=ACTOR
        )
    metrics = Metrics(services.monitor)
    seen: list[tuple[float, float]] = []

    def observe(result: Any) -> None:
        metrics.observe(result)
        found = samples(metrics.text())
        counted = sum(v for (name, _), v in found.items() if name == "mailbox_checks_total")
        checked = sum(
            v for (name, labels), v in found.items()
            if name == "mailbox_mailboxes" and dict(labels)["state"] != "never_checked"
        )  # fmt: skip
        seen.append((counted, checked))

    services.checker.observer = observe
    sweep.sweep(services)
    assert len(seen) == 4
    assert all(counted <= checked for counted, checked in seen), seen


@pytest.mark.dovecot
def test_check_due_loop_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, dovecot_server: Any
) -> None:
    env = monitor_env(tmp_path, MAILBOX_CHECK_TICK="1")
    services = open_monitored(env)
    for n in range(3):
        services.mailboxes.create_mailbox(
            plain_imap(dovecot_server.ports["imap"], f"Good {n}", ALICE), actor=ACTOR
        )
    port = free_port()
    loop = subprocess.Popen(
        [sys.executable, "-m", "mailbox_core", "check-due", "--loop", "--json",
         "--metrics-port", str(port)],
        cwd=ROOT, env=netfence.subprocess_env(env), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        found: dict[Any, float] = {}
        deadline = time.monotonic() + 30
        while found.get(("mailbox_checks_total", (("result", "ok"),))) != 3.0:
            assert time.monotonic() < deadline and loop.poll() is None, loop.stderr
            time.sleep(0.2)
            try:
                found = samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            except requests.ConnectionError:
                continue
        assert found[("mailbox_mailboxes", (("provider", "password"), ("state", "healthy")))] == 3
    finally:
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    assert loop.returncode == 0, err
    assert '"claimed": 3' in out and "Traceback" not in err
