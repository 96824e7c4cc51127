"""The Procrastinate worker on PostgreSQL: two workers make one sweep per tick and run
each job once; a worker killed mid-job has its job retried; SIGTERM stops a worker within
30 s without losing a job. Mailboxes are on the private Dovecot behind a slow proxy."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.db import make_engine
from tests.conftest import ACTOR, POSTGRES_URL, ROOT, need, reset_database, run_cli
from tests.support import netfence
from tests.support.dovecot import USERS
from tests.support.monitoring import monitor_env, open_monitored, plain_imap
from tests.support.proxy import CountingProxy

pytestmark = [pytest.mark.postgres, pytest.mark.dovecot]
MAILBOXES = 150
PROCRASTINATE = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


@pytest.fixture
def pg() -> Iterator[Engine]:
    need(POSTGRES_URL, "MAILBOX_TEST_POSTGRES_URL is not set (no PostgreSQL to test on)")
    engine = make_engine(str(POSTGRES_URL))
    reset_database(engine)
    forget_jobs(engine)
    yield engine
    forget_jobs(engine)
    reset_database(engine)
    engine.dispose()


def forget_jobs(engine: Engine) -> None:
    with engine.begin() as connection:
        if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            connection.execute(text(f"TRUNCATE {', '.join(PROCRASTINATE)} CASCADE"))


def rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql)))


def wait(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailbox_core", "worker", "--stalled-after", "3"],
            cwd=ROOT,
            env=netfence.subprocess_env({**env, "MAILBOX_LOG_LEVEL": "INFO"}),
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )

    def started(self) -> set[int]:
        text_ = self.log.read_text(errors="replace")
        return {int(n) for n in re.findall(r"Starting job mailbox\.check_batch\[(\d+)\]", text_)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def test_workers_share_ticks_and_jobs_and_survive_kill_and_sigterm(
    pg: Engine, key: str, tmp_path: Path, dovecot_server: Any
) -> None:
    slow = CountingProxy(dovecot_server.ports["imap"], delay=0.1)
    env = monitor_env(
        tmp_path,
        MAILBOX_DATABASE_URL=str(POSTGRES_URL),
        MAILBOX_ENCRYPTION_KEYS=key,
        MAILBOX_CHECK_TICK="5",
        MAILBOX_CHECK_LEASE="20",
        MAILBOX_CHECK_CONCURRENCY="10",
        MAILBOX_LOGIN_FAILURE_BUDGET="1000",
    )

    def handed_back() -> int:
        return int(
            rows(
                pg,
                "SELECT count(*) FROM procrastinate_events e JOIN procrastinate_jobs j "
                "ON j.id = e.job_id WHERE j.task_name = 'mailbox.check_batch' "
                "AND e.type = 'deferred_for_retry'",
            )[0][0]
        )

    upgraded = run_cli(env, "db", "upgrade")
    assert upgraded.returncode == 0 and "Procrastinate's schema" in upgraded.stdout
    services = open_monitored(env)
    alice = USERS["alice@example.com"]
    boxes = [plain_imap(slow.port, f"Box {n}", alice) for n in range(MAILBOXES)]
    services.mailboxes.import_mailboxes(boxes, actor=ACTOR)
    workers = [Worker(env, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        victim, job = wait(
            lambda: next(((w, min(w.started())) for w in workers if w.started()), None),
            "a worker to start a check job",
        )
        time.sleep(1.5)  # mid-job: some of its checks are recorded, others in flight
        os.kill(victim.process.pid, signal.SIGKILL)
        survivor = next(w for w in workers if w is not victim)
        checked = "SELECT count(DISTINCT mailbox_id) FROM mailbox_check"
        wait(lambda: rows(pg, checked)[0][0] == MAILBOXES, "every mailbox checked", 90)
        assert rows(pg, "SELECT count(*) FROM mailbox_check")[0][0] == MAILBOXES  # none twice
        started = rows(pg, f"SELECT count(*) FROM procrastinate_events WHERE job_id = {job} "
                           "AND type = 'started'")  # fmt: skip
        assert started[0][0] >= 2, "the killed worker's job was not retried"
        wait(lambda: job in survivor.started(), "the retried job on the other worker", 10)
        # Every check can be recorded while a job still adds its counts to the sweep.
        running = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = " \
                  "'mailbox.check_batch' AND status IN ('todo', 'doing')"  # fmt: skip
        wait(lambda: rows(pg, running)[0][0] == 0, "the check jobs to end", 30)
        finishes = rows(
            pg,
            "SELECT j.id, count(e.id) FROM procrastinate_jobs j LEFT JOIN procrastinate_events e "
            "ON e.job_id = j.id AND e.type = 'succeeded' WHERE j.task_name = "
            "'mailbox.check_batch' GROUP BY j.id",
        )
        assert finishes and all(n == 1 for _, n in finishes)  # each job ran to its end once
        sweeps = rows(pg, "SELECT runner, count(*) FROM monitor_sweep GROUP BY runner")
        assert len(sweeps) >= 2 and all(n == 1 for _, n in sweeps)  # one sweep per tick

        # SIGTERM mid-job: the worker stops within 30 s and the job is not lost.
        with pg.begin() as connection:
            connection.execute(text("UPDATE mailbox_monitor SET next_check_at = NULL"))
        before = survivor.started()
        wait(lambda: survivor.started() - before, "a new job on the remaining worker", 30)
        time.sleep(1)
        earlier = handed_back()
        signalled = time.monotonic()
        survivor.process.send_signal(signal.SIGTERM)
        survivor.process.wait(timeout=30)
        assert time.monotonic() - signalled < 30 and survivor.process.returncode == 0
        assert handed_back() > earlier, "the job SIGTERM stopped was not handed back for a retry"
        fresh = Worker(env, tmp_path / "worker3.log")
        workers.append(fresh)
        twice = "SELECT count(*) FROM (SELECT mailbox_id FROM mailbox_check GROUP BY mailbox_id " \
                "HAVING count(*) = 2) AS done"  # fmt: skip
        wait(lambda: rows(pg, twice)[0][0] == MAILBOXES, "every mailbox checked again", 90)
        assert rows(pg, "SELECT count(*) FROM mailbox_check")[0][0] == 2 * MAILBOXES
        fresh.process.send_signal(signal.SIGTERM)
        assert fresh.process.wait(timeout=30) == 0
    finally:
        for worker in workers:
            worker.stop()
        slow.stop()
