"""`check-due` and `health` as cron and on-call run them: exit codes, --limit, --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACTOR, run_cli
from tests.support.dovecot import USERS, free_port
from tests.support.monitoring import monitor_env, open_monitored, plain_imap

pytestmark = [pytest.mark.dovecot]
ALICE = USERS["alice@example.com"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return monitor_env(tmp_path)


def test_check_due_checks_what_is_due_once_and_exits_like_check(
    env: dict[str, str], dovecot_server: Any
) -> None:
    services = open_monitored(env)
    create = services.mailboxes.create_mailbox
    good = create(plain_imap(dovecot_server.ports["imap"], "Good", ALICE), actor=ACTOR).id
    bad = create(plain_imap(free_port(), "Closed", ALICE), actor=ACTOR).id
    create(plain_imap(free_port(), "Off", ALICE, status="Not Active"), actor=ACTOR)
    done = run_cli(env, "check-due", "--limit", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert [(r["id"], r["ok"]) for r in json.loads(done.stdout)] == [(good, True)]
    done = run_cli(env, "check-due")
    assert done.returncode == 1
    assert "Connection refused" in done.stdout
    assert done.stdout.strip().endswith("1 checked, 0 OK, 1 failed.")
    done = run_cli(env, "check-due")
    assert (done.returncode, done.stdout) == (0, "Nothing was due.\n")
    health = run_cli(env, "health", "--json")
    assert health.returncode == 0, health.stderr
    report = json.loads(health.stdout)
    assert report["heartbeat"]["expected"] == "every minute"
    assert report["heartbeat"]["last_sweep_at"] is not None and not report["heartbeat"]["stale"]
    rows = {r["id"]: r for r in report["mailboxes"]}
    assert (rows[good]["state"], rows[bad]["state"]) == ("healthy", "failing")
    assert rows[bad]["consecutive_failures"] == 1 and rows[bad]["next_check_at"]
    assert [r["state"] for r in report["mailboxes"]][2] == "inactive"


def test_health_shows_a_pause_and_tests_nothing(env: dict[str, str], dovecot_server: Any) -> None:
    services = open_monitored(env)
    values = plain_imap(dovecot_server.ports["imap"], "Stale", "wrong-password")
    mailbox = services.mailboxes.create_mailbox(values, actor=ACTOR)
    assert run_cli(env, "check-due").returncode == 1
    before = services.mailboxes.health_of(mailbox.id)
    done = run_cli(env, "health")
    assert done.returncode == 0
    assert "paused until" in done.stdout and "refused the password" in done.stdout
    assert services.mailboxes.health_of(mailbox.id) == before  # nothing was tested


@pytest.mark.parametrize(
    "args",
    [
        ["check-due", "--limit", "0"],
        ["check-due", "--limit", "x"],
        ["check-due", "--metrics-port", "9100"],
        ["health", "--all"],
    ],
)
def test_usage_errors_exit_two(env: dict[str, str], args: list[str]) -> None:
    assert run_cli(env, *args).returncode == 2


def test_the_worker_refuses_sqlite(env: dict[str, str]) -> None:
    done = run_cli(env, "worker")
    assert done.returncode == 2
    assert "The worker needs PostgreSQL" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_tick_is_a_configuration_error(env: dict[str, str]) -> None:
    done = run_cli({**env, "MAILBOX_CHECK_TICK": "7"}, "check-due")
    assert done.returncode == 2 and "MAILBOX_CHECK_TICK must divide a minute" in done.stderr
