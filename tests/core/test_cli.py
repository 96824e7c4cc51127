"""`python -m mailbox_core check` as cron runs it: exit codes, table and --json."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.bootstrap import open_services
from mailbox_core.config import load_settings
from tests.conftest import ACTOR, dovecot_imaps, run_cli

pytestmark = [pytest.mark.dovecot]


@pytest.fixture
def env(tmp_path: Path, dovecot_server: Any) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    environment.update(
        MAILBOX_DATA_DIR=str(tmp_path / "data"),
        MAILBOX_CA_FILE=str(dovecot_server.ca_file),
        MAILBOX_CHECK_TIMEOUT="3",
    )
    return environment


def add(
    env: dict[str, str], dovecot_server: Any, name: str, password: str, status: str = "Active"
) -> int:
    services = open_services(load_settings(env))
    values = dovecot_imaps(dovecot_server, name, password, status=status)
    return services.mailboxes.create_mailbox(values, actor=ACTOR).id


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args)


def test_all_good_exits_zero_with_json(env: dict[str, str], dovecot_server: Any) -> None:
    good = add(env, dovecot_server, "Good", "alice-Secret-1")
    add(env, dovecot_server, "Paused", "wrong", status="Not Active")
    done = run(env, "check", "--all", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["id"], r["ok"], r["message_count"]) for r in rows] == [(good, True, 3)]
    assert [s["name"] for s in rows[0]["steps"]] == [
        "DNS",
        "TCP",
        "TLS",
        "Greeting",
        "Sign-in",
        "Mailbox",
    ]
    assert "alice-Secret-1" not in done.stdout + done.stderr


def test_one_failure_exits_one_with_a_table(env: dict[str, str], dovecot_server: Any) -> None:
    add(env, dovecot_server, "Good", "alice-Secret-1")
    add(env, dovecot_server, "Bad", "wrong-password")
    done = run(env, "check", "--all")
    assert done.returncode == 1
    assert "The server refused the password for alice@example.com" in done.stdout
    assert done.stdout.strip().endswith("2 checked, 1 OK, 1 failed.")
    assert "wrong-password" not in done.stdout + done.stderr


def test_check_by_id_records_health(env: dict[str, str], dovecot_server: Any) -> None:
    mailbox = add(env, dovecot_server, "Good", "alice-Secret-1")
    assert run(env, "check", "--id", str(mailbox)).returncode == 0
    health = open_services(load_settings(env)).mailboxes.health()
    assert health[mailbox].last_ok is True
    assert health[mailbox].last_message_count == 3


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["check"],
        ["check", "--all", "--id", "1"],
        ["check", "--id", "x"],
        ["check", "--id", "999"],
    ],
)
def test_usage_errors_exit_two(env: dict[str, str], args: list[str]) -> None:
    assert run(env, *args).returncode == 2


def test_configuration_error_exits_two(env: dict[str, str]) -> None:
    done = run({**env, "MAILBOX_CHECK_TIMEOUT": "soon"}, "check", "--all")
    assert done.returncode == 2
    assert "MAILBOX_CHECK_TIMEOUT must be a number" in done.stderr
    assert "Traceback" not in done.stderr
