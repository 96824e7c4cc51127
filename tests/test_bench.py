"""The benchmark script still runs (tiny numbers; figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT


@pytest.mark.dovecot
def test_check_all_bench_runs_and_prints_its_figures(dovecot_server: Any) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.check_all",
            "--mailboxes",
            "6",
            "--rtt-ms",
            "10",
            "--sample",
            "2",
            "--sweep",
            "2,4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in (
        "sequential stdlib",
        "best bare pool",
        "product check-all",
        "product / best bare pool",
        "IMAPS vitals :",
        "with vital signs",
        "6/6 read a quota",
        "vitals / without vitals",
        "(6/6 ok)",
    ):
        assert figure in done.stdout


@pytest.mark.postgres
def test_check_due_bench_runs_and_prints_its_figures(dovecot_server: Any) -> None:
    from tests.conftest import POSTGRES_URL, need

    need(POSTGRES_URL, "MAILBOX_TEST_POSTGRES_URL is not set (no PostgreSQL to test on)")
    done = subprocess.run(
        [sys.executable, "-m", "bench.check_due", "--mailboxes", "12", "--rtt-ms", "10",
         "--processes", "1,2", "--workers", "1", "--database-url", str(POSTGRES_URL)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("check-due × 1", "check-due × 2", "worker × 1", "checks/s", "(12/12 once)"):
        assert figure in done.stdout


def test_list_page_bench_runs_and_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.list_page", "--mailboxes", "300", "--rounds", "1",
         "--form", "--form-reruns", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in (
        "seeded 300 mailboxes",
        "first run (s)",
        "rerun after a tick (s)",
        "peak RSS, fresh process (MB)",
        "New Mailbox rerun after changing Mailbox Type",
        "rerun, as served (ms)",
        "rerun, AppTest's start (ms)",
    ):
        assert figure in done.stdout, done.stdout
