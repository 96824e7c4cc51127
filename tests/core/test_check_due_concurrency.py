"""Any number of `check-due` runs at once never test a mailbox twice: 3 processes on
PostgreSQL (2 on SQLite) over 300 due mailboxes on the private Dovecot, one killed with
SIGKILL mid-batch; its mailboxes are tested by a later run once its lease expired."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.monitoring import rules
from tests.conftest import ACTOR, ROOT
from tests.support import netfence
from tests.support.dovecot import USERS
from tests.support.monitoring import monitor_env, open_monitored, plain_imap
from tests.support.proxy import CountingProxy

pytestmark = [pytest.mark.dovecot]
MAILBOXES = 300
# Long enough that the surviving runs finish before the killed run's leases end, even on a
# loaded machine (with 10 s they outlived them there and rightly took the orphans over,
# which this test cannot tell from checking a mailbox twice); the test then waits it out.
LEASE = 30


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailbox_core", "check-due"],
        cwd=ROOT,
        env=netfence.subprocess_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def test_concurrent_check_due_runs_test_each_mailbox_once_even_when_one_is_killed(
    engine: Engine, key: str, tmp_path: Path, dovecot_server: Any
) -> None:
    runs = 3 if engine.dialect.name == "postgresql" else 2
    slow = CountingProxy(dovecot_server.ports["imap"], delay=0.05)
    env = monitor_env(
        tmp_path,
        MAILBOX_DATABASE_URL=engine.url.render_as_string(hide_password=False),
        MAILBOX_ENCRYPTION_KEYS=key,
        MAILBOX_CHECK_CONCURRENCY="16",
        MAILBOX_CHECK_TIMEOUT="5",
        MAILBOX_CHECK_LEASE=str(LEASE),
        MAILBOX_LOGIN_FAILURE_BUDGET="1000",  # about leases, not the budget
    )
    services = open_monitored(env)
    rows = [plain_imap(slow.port, f"Box {n}", USERS["alice@example.com"]) for n in range(MAILBOXES)]
    services.mailboxes.import_mailboxes(rows, actor=ACTOR)
    try:
        processes = [start(env) for _ in range(runs)]
        victim = processes[0]
        deadline = time.monotonic() + 60

        def leased() -> bool:
            return bool(
                scalar(engine, "SELECT count(*) FROM mailbox_check")
                and scalar(
                    engine,
                    "SELECT count(*) FROM mailbox_monitor WHERE lease_owner LIKE :me",
                    me=f"%:{victim.pid}:%",
                )
            )

        while True:
            assert time.monotonic() < deadline and victim.poll() is None, victim.communicate()
            if leased():
                # Stopped, then looked at again: on a loaded machine a whole batch can be
                # recorded and released between one look and the kill.
                os.kill(victim.pid, signal.SIGSTOP)
                if leased():
                    break
                os.kill(victim.pid, signal.SIGCONT)
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        for process in processes[1:]:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, out + err
        orphans = scalar(
            engine,
            "SELECT count(*) FROM mailbox_monitor WHERE lease_owner LIKE :me",
            me=f"%:{victim.pid}:%",
        )
        assert orphans > 0, "the killed run held no lease"
        assert scalar(engine, "SELECT count(*) FROM mailbox_check") == MAILBOXES - orphans
        # The others left them alone while the lease lasted; once it ends, the next run
        # (cron's next minute) takes them.
        until = scalar(
            engine,
            "SELECT max(lease_until) FROM mailbox_monitor WHERE lease_owner LIKE :me",
            me=f"%:{victim.pid}:%",
        )
        until = rules.aware(datetime.fromisoformat(until) if isinstance(until, str) else until)
        assert until > datetime.now(UTC)
        time.sleep((until - datetime.now(UTC)).total_seconds() + 0.1)
        later = start(env)
        out, err = later.communicate(timeout=120)
        assert later.returncode == 0, out + err
        assert out.strip().endswith(f"{orphans} checked, {orphans} OK, 0 failed.")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        slow.stop()
    per_mailbox = scalar(
        engine,
        "SELECT count(*) FROM (SELECT mailbox_id FROM mailbox_check GROUP BY mailbox_id "
        "HAVING count(*) = 1) AS once",
    )
    assert per_mailbox == MAILBOXES
    assert scalar(engine, "SELECT count(*) FROM mailbox_check") == MAILBOXES
    # Every run took part; the server saw at most one more sign-in per orphan (the killed
    # run's checks in flight or done but not yet recorded).
    runners = scalar(engine, "SELECT count(*) FROM monitor_sweep WHERE claimed > 0")
    assert runners == runs  # the victim's sweep never finished: +1 for `later`, -1
    assert MAILBOXES <= slow.logins <= MAILBOXES + orphans
