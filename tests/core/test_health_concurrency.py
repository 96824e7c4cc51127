"""Overlapping checks record every result: two `check --all` runs, threads, late arrivals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.models import MailboxCheck
from mailbox_core.schemas import HealthPublic
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, ROOT, mailbox_data
from tests.support import netfence

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def add_mailboxes(service: MailboxService, count: int, port: int = 9) -> list[int]:
    """IMAPS mailboxes on 127.0.0.1:port (SSL, so no plaintext rule applies), in one go."""
    rows = [
        mailbox_data(
            "password",
            name=f"Refused {n}",
            mailbox_type="IMAP",
            host="127.0.0.1",
            port=port,
            ssl_enabled="Yes",
        )
        for n in range(count)
    ]
    return [m.id for m in service.import_mailboxes(rows, actor=ACTOR)]


def check(mailbox_id: int, minute: float, ok: bool) -> MailboxCheck:
    return MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=T0 + timedelta(minutes=minute),
        ok=ok,
        failed_step=None if ok else "TCP",
        message=f"{'OK' if ok else 'Failed'} at minute {minute}",
        latency_ms=minute,
    )


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC, PostgreSQL aware datetimes."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def summary(health: HealthPublic) -> tuple[Any, ...]:
    return (
        health.last_ok,
        health.last_message,
        utc(health.last_check_at),
        utc(health.last_success_at),
        health.consecutive_failures,
        utc(health.failing_since),
    )


def in_time_order(checks: Iterable[MailboxCheck]) -> tuple[Any, ...]:
    """The health a single run recording these checks one by one, oldest first, ends with."""
    ordered = sorted(checks, key=lambda c: c.started_at)
    successes = [c.started_at for c in ordered if c.ok]
    last_success = successes[-1] if successes else None
    streak = [
        c for c in ordered if not c.ok and (last_success is None or c.started_at > last_success)
    ]
    last = ordered[-1]
    since = streak[0].started_at if streak else None
    return (last.ok, last.message, last.started_at, last_success, len(streak), since)


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# ---------------------------------------------------------------- two processes


MAILBOXES = 200


def cli_env(engine: Engine, key: str, tmp_path: Path) -> dict[str, str]:
    secrets = tmp_path / "secrets.toml"  # empty: local mode, whatever ~/.streamlit holds
    secrets.write_text("")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    environment.update(
        MAILBOX_DATABASE_URL=engine.url.render_as_string(hide_password=False),
        MAILBOX_ENCRYPTION_KEYS=key,
        MAILBOX_DATA_DIR=str(tmp_path / "data"),
        MAILBOX_SECRETS_FILE=str(secrets),
        MAILBOX_EGRESS="off",
        MAILBOX_CHECK_TIMEOUT="60",
        MAILBOX_CHECK_CONCURRENCY=str(MAILBOXES),
    )
    return netfence.subprocess_env(environment)


def start_check_all(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailbox_core", "check", "--all"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Gate:
    """A listener on 127.0.0.1 that holds every connection until released, then drops them.

    Refused connections fail too fast for two runs to overlap reliably; holding them
    until both runs have every check in flight makes both record at the same moment.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=4 * MAILBOXES)
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with self.lock:
                if self.released.is_set():
                    connection.close()
                else:
                    self.held.append(connection)

    def wait_for(self, count: int, timeout: float, runs: list[subprocess.Popen[str]]) -> bool:
        """True once ``count`` connections are held; False if time ran out or a run ended."""
        deadline = time.monotonic() + timeout
        while len(self.held) < count:
            if time.monotonic() > deadline or any(run.poll() is not None for run in runs):
                return False
            time.sleep(0.01)
        return True

    def release(self) -> None:
        with self.lock:
            self.released.set()
            for connection in self.held:
                connection.close()

    def close(self) -> None:
        self.release()
        self.closed.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.close()


def test_two_check_all_runs_on_never_checked_mailboxes_record_every_check(
    engine: Engine, service: MailboxService, key: str, tmp_path: Path, gate: Gate
) -> None:
    ids = add_mailboxes(service, MAILBOXES, port=gate.port)
    env = cli_env(engine, key, tmp_path)
    began = time.monotonic()
    runs = [start_check_all(env) for _ in range(2)]  # both started before waiting on either
    overlapped = gate.wait_for(2 * MAILBOXES, timeout=60, runs=runs)
    in_flight = time.monotonic()
    gate.release()  # every TLS handshake of both runs fails now
    outputs = [run.communicate(timeout=120) for run in runs]
    done = time.monotonic()
    assert overlapped, f"{len(gate.held)} of {2 * MAILBOXES} checks were in flight: {outputs}"
    print(
        f"two check --all runs of {MAILBOXES} mailboxes: all in flight after "
        f"{in_flight - began:.2f} s, recorded {done - in_flight:.2f} s after release"
    )
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert "Traceback" not in err and "IntegrityError" not in err, err
        assert run.returncode == 1, err
        assert out.strip().endswith(f"{MAILBOXES} checked, 0 OK, {MAILBOXES} failed."), out
    assert count_rows(engine, "mailbox_check") == 2 * MAILBOXES
    health = service.health()
    assert sorted(health) == ids
    assert {h.consecutive_failures for h in health.values()} == {2}
    assert all(h.failing_since is not None and not h.last_ok for h in health.values())


# ---------------------------------------------------------------- threads


THREADS = 8


def record_at_once(service: MailboxService, batches: list[list[MailboxCheck]]) -> None:
    """Each batch recorded by its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(batches))

    def record(batch: list[MailboxCheck]) -> None:
        barrier.wait()
        service.record_checks(batch)

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        list(pool.map(record, batches))  # re-raises what any thread raised


def test_threads_recording_failures_at_once_count_every_one(
    engine: Engine, service: MailboxService
) -> None:
    ids = add_mailboxes(service, 50)
    record_at_once(service, [[check(i, run, ok=False) for i in ids] for run in range(THREADS)])
    assert count_rows(engine, "mailbox_check") == THREADS * len(ids)
    health = service.health()
    assert sorted(health) == ids
    assert {h.consecutive_failures for h in health.values()} == {THREADS}
    assert {utc(h.failing_since) for h in health.values()} == {T0}
    assert {h.last_message for h in health.values()} == {f"Failed at minute {THREADS - 1}"}


def test_threads_recording_mixed_results_end_as_if_recorded_in_time_order(
    service: MailboxService,
) -> None:
    ids = add_mailboxes(service, 20)
    rng = Random(3)
    minutes = list(range(THREADS * 3))
    batches: list[list[MailboxCheck]] = [[] for _ in range(THREADS)]
    every: dict[int, list[MailboxCheck]] = {i: [] for i in ids}
    for i in ids:
        rng.shuffle(minutes)  # each thread gets checks from all over the timeline
        for n, minute in enumerate(minutes):
            made = check(i, minute, ok=rng.random() < 0.3)
            batches[n % THREADS].append(made)
            every[i].append(made)
    record_at_once(service, batches)
    health = service.health()
    assert {i: summary(health[i]) for i in ids} == {i: in_time_order(every[i]) for i in ids}


# ---------------------------------------------------------------- late arrivals

# Arrival order of checks, each "F<minute>" / "S<minute>" recorded on its own, and the
# health it ends with: (last_ok, last check minute, last success minute, failures, since).
LATE = {
    "a late failure before a newer one counts and starts the streak": (
        ["F3", "F1"],
        (False, 3, None, 2, 1),
    ),
    "a late failure before the last success is not counted": (
        ["S5", "F3"],
        (True, 5, 5, 0, None),
    ),
    "a late success keeps the newer verdict and ends the streak at its time": (
        ["F1", "F3", "F4", "S2"],
        (False, 4, 2, 2, 3),
    ),
    "a late success before the last success changes nothing": (
        ["S1", "F2", "F3", "S0"],
        (False, 3, 1, 2, 2),
    ),
    "a late success after every failure resets the streak": (
        ["F1", "F2", "S3"],
        (True, 3, 3, 0, None),
    ),
}


def minute_of(code: str) -> tuple[float, bool]:
    return float(code[1:]), code[0] == "S"


def at(minute: float | None) -> datetime | None:
    return None if minute is None else T0 + timedelta(minutes=minute)


@pytest.mark.parametrize(("arrivals", "expected"), LATE.values(), ids=list(LATE))
def test_late_checks_count_without_overwriting_a_newer_verdict(
    service: MailboxService, arrivals: list[str], expected: tuple[Any, ...]
) -> None:
    [mailbox] = add_mailboxes(service, 1)
    checks = [check(mailbox, *minute_of(code)) for code in arrivals]
    for made in checks:
        service.record_checks([made])
    health = service.health_of(mailbox)
    assert health is not None
    last_ok, last_minute, success_minute, failures, since_minute = expected
    newest = max(checks, key=lambda c: c.started_at)
    assert summary(health) == (
        last_ok,
        newest.message,
        at(last_minute),
        at(success_minute),
        failures,
        at(since_minute),
    )
    assert summary(health) == in_time_order(checks)


def test_checks_of_a_deleted_mailbox_are_skipped(engine: Engine, service: MailboxService) -> None:
    kept, deleted = add_mailboxes(service, 2)
    service.delete_mailboxes([deleted], actor=ACTOR)
    service.record_checks([check(kept, 1, ok=False), check(deleted, 1, ok=False)])
    assert sorted(service.health()) == [kept]
    assert count_rows(engine, "mailbox_check") == 1


def test_deleting_mailboxes_while_checks_are_recorded_never_breaks_the_foreign_key(
    engine: Engine, service: MailboxService
) -> None:
    ids = add_mailboxes(service, 200)
    doomed, kept = ids[::2], ids[1::2]
    rounds = 12
    barrier = threading.Barrier(rounds + 1)

    def record(run: int) -> None:
        barrier.wait()
        service.record_checks([check(i, run, ok=False) for i in ids])

    def delete() -> None:
        barrier.wait()
        for i in doomed:
            service.delete_mailboxes([i], actor=ACTOR)

    with ThreadPoolExecutor(max_workers=rounds + 1) as pool:
        futures = [pool.submit(record, run) for run in range(rounds)] + [pool.submit(delete)]
        for future in futures:
            future.result()  # an IntegrityError of any thread fails here
    health = service.health()
    assert sorted(health) == kept
    assert {health[i].consecutive_failures for i in kept} == {rounds}
    assert count_rows(engine, "mailbox_check") == rounds * len(kept)
